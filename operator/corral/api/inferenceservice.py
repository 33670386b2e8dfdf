"""InferenceService: model-server replicas on a pool, autoscaled against a latency SLO."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.base import SpecModel, StatusModel
from corral.api.meta import Condition, ObjectMeta, PodTemplateSpec, Time
from corral.api.selection import WorkloadSelection


class SLO(SpecModel):
    percentile: Annotated[float, Field(gt=0, lt=100)] = 99.0
    latency_ms: Annotated[float, Field(gt=0, le=3_600_000)]


class PrometheusSource(SpecModel):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """Base URL of the Prometheus HTTP API."""
    histogram: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=256)]
    """Base name of the latency histogram in seconds (without _bucket)."""
    selector: Annotated[str, Field(max_length=1024)] | None = None
    """Extra label matchers, e.g. `model="llama"`; the service's own pods are always selected."""
    window_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    """Range of the rate() window."""


class MetricsSource(SpecModel):
    prometheus: PrometheusSource


class ScalingBehavior(SpecModel):
    scale_up_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    max_scale_up_rate: Annotated[float, Field(ge=1)] = 2.0
    """At most this factor more replicas per decision."""
    max_scale_down_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    """At most this share of replicas removed per decision."""


class Autoscaling(SpecModel):
    min_replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=10000)] = 32
    slo: SLO
    metrics: MetricsSource | None = None
    behavior: ScalingBehavior = Field(default_factory=ScalingBehavior)

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
                    "fieldPath": ".minReplicas",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas: {self.min_replicas} must be <= maxReplicas {self.max_replicas}"
            )
        return self


class InferenceServiceSpec(WorkloadSelection):
    template: PodTemplateSpec
    accelerators_per_replica: Annotated[int, Field(ge=1, le=1024)] = 1
    replicas: Annotated[int, Field(ge=0, le=10000)] | None = None
    """A fixed replica count (the scale subresource's path); unset = autoscaled."""
    autoscaling: Autoscaling | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Container port the model server listens on; the Service targets it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.replicas) || has(self.autoscaling)",
                    "message": "set spec.replicas or spec.autoscaling",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _has_a_size(self) -> InferenceServiceSpec:
        if self.replicas is None and self.autoscaling is None:
            raise ValueError("set replicas (a fixed count) or autoscaling (an SLO)")
        return self


class InferenceServiceStatus(StatusModel):
    observed_generation: int | None = None
    replicas: int = 0
    ready_replicas: int = 0
    desired_replicas: int = 0
    selector: str = ""
    """Label selector of the replicas, for the scale subresource."""
    observed_latency_ms: float | None = None
    slo_attainment: float | None = None
    """Share of requests within the SLO latency over the metrics window (0..1)."""
    last_scale_time: Time | None = None
    last_scale_reason: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class InferenceService(SpecModel):
    api_version: Literal["corral.dev/v1alpha1"] = "corral.dev/v1alpha1"
    kind: Literal["InferenceService"] = "InferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
