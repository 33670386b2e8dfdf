"""Where a workload may run: the selection fields shared by TrainingJob and InferenceService."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.base import SpecModel
from corral.api.meta import DNS_SUBDOMAIN, ObjectName

CapacityType = Literal["spot", "on-demand", "reserved"]
ALL_CAPACITY_TYPES: tuple[CapacityType, ...] = ("on-demand", "reserved", "spot")


class AcceleratorRequirement(SpecModel):
    """Which accelerators a workload accepts; empty means any."""

    types: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=63)]], Field(max_length=32)
    ] = Field(default_factory=list)
    """Accepted GPUPool `spec.accelerator.type` values, e.g. [H100-80GB, H200]."""
    min_memory_gib: Annotated[float, Field(ge=0, le=4096)] | None = None
    """Least device memory in GiB."""


class CapacityRequirement(SpecModel):
    """Which capacity types a workload may use and which it prefers."""

    types: Annotated[list[CapacityType], Field(min_length=1, max_length=3)] = Field(
        default_factory=lambda: list(ALL_CAPACITY_TYPES)
    )
    """Allowed capacity types."""
    prefer: CapacityType | None = None
    """Preferred capacity type among equal placements; unset prefers the cheaper price."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.prefer) || self.prefer in self.types",
                    "message": "capacity.prefer must be one of capacity.types",
                    "fieldPath": ".prefer",
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _prefer_is_allowed(self) -> CapacityRequirement:
        if len(set(self.types)) != len(self.types):
            raise ValueError("types: must not repeat a capacity type")
        if self.prefer is not None and self.prefer not in self.types:
            raise ValueError(f"prefer: {self.prefer!r} is not in types {self.types}")
        return self


class Residency(SpecModel):
    """Data-residency rules: a pool qualifies only if its `spec.location` is listed."""

    jurisdictions: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=63)]], Field(max_length=64)
    ] = Field(default_factory=list)
    """Allowed GPUPool `spec.location.jurisdiction` values, e.g. [EU]."""
    regions: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=63)]], Field(max_length=256)
    ] = Field(default_factory=list)
    """Allowed GPUPool `spec.location.region` values, e.g. [eu-west-1]."""


PoolNames = Annotated[list[ObjectName], Field(max_length=64)]


class WorkloadSelection(SpecModel):
    """Mixin of the fields that choose pools; shared by TrainingJob and InferenceService."""

    pools: PoolNames = Field(default_factory=list)
    """GPUPool names to consider; empty means every pool whose accelerator matches."""
    accelerator: AcceleratorRequirement = Field(default_factory=AcceleratorRequirement)
    capacity: CapacityRequirement = Field(default_factory=CapacityRequirement)
    residency: Residency = Field(default_factory=Residency)
    priority_class_name: (
        Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)] | None
    ) = None
    """A Kubernetes PriorityClass (cluster-scoped: admins define the levels). Its value orders
    the queue (higher first), and every pod Corral creates gets it. Unset: the cluster's
    globalDefault PriorityClass, else 0."""
