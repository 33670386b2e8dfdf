"""GPUPool: a cluster-scoped set of nodes that share an accelerator."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.base import SpecModel, StatusModel
from corral.api.meta import Condition, LabelKey, LabelSelector, ObjectMeta, Toleration

DEFAULT_LEVELS = [
    "topology.kubernetes.io/zone",
    "network.corral.dev/block",
    "network.corral.dev/rack",
    "kubernetes.io/hostname",
]
HOSTNAME_LEVEL = "kubernetes.io/hostname"


class Accelerator(SpecModel):
    """The device every node of the pool carries."""

    type: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")
    ]
    """A name jobs select by, e.g. H100-80GB."""
    memory_gib: Annotated[float, Field(gt=0, le=4096)]
    """Memory per device in GiB."""
    peak_tflops: Annotated[float, Field(ge=0, le=1e6)] | None = None
    """Peak dense TFLOPS per device (for utilisation figures)."""
    watts: Annotated[float, Field(ge=0, le=100000)] | None = None
    """Board power per device in watts (for energy figures)."""


class Topology(SpecModel):
    """Topology levels, broadest first; each is a node label key."""

    levels: Annotated[list[LabelKey], Field(min_length=1, max_length=8)] = Field(
        default_factory=lambda: list(DEFAULT_LEVELS)
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # has(): the API server checks the rule against the default `{}` without
                    # applying the nested default of `levels`.
                    "rule": "!has(self.levels) || "
                    "self.levels.all(l, self.levels.filter(m, m == l).size() == 1)",
                    "message": "topology.levels must not repeat a level",
                    "fieldPath": ".levels",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _unique(self) -> Topology:
        seen = [level for index, level in enumerate(self.levels) if level in self.levels[:index]]
        if seen:
            raise ValueError(f"levels: {seen[0]!r} is listed twice")
        return self


MAX_PRICE = 1e6
"""Per device-hour, in any currency: far above any real price, far below where sums overflow."""


class Pricing(SpecModel):
    """Price per device-hour by capacity type."""

    on_demand_per_device_hour: Annotated[float, Field(ge=0, le=MAX_PRICE)] = 0.0
    spot_per_device_hour: Annotated[float, Field(ge=0, le=MAX_PRICE)] | None = None
    """Defaults to the on-demand price when unset."""
    reserved_per_device_hour: Annotated[float, Field(ge=0, le=MAX_PRICE)] | None = None
    """Defaults to the on-demand price when unset."""
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 code."""

    def per_device_hour(self, capacity_type: str) -> float:
        if capacity_type == "spot" and self.spot_per_device_hour is not None:
            return self.spot_per_device_hour
        if capacity_type == "reserved" and self.reserved_per_device_hour is not None:
            return self.reserved_per_device_hour
        return self.on_demand_per_device_hour


class Location(SpecModel):
    """Where the pool's machines are, for residency rules."""

    region: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    jurisdiction: Annotated[str, Field(min_length=1, max_length=63)] | None = None


class Carbon(SpecModel):
    """Grid carbon intensity: a static figure, optionally refined by an hourly (UTC) schedule."""

    grams_per_kwh: Annotated[float, Field(ge=0, le=5000)] = 0.0
    hourly: (
        Annotated[list[Annotated[float, Field(ge=0, le=5000)]], Field(min_length=24, max_length=24)]
        | None
    ) = None
    """24 values, grams CO2e per kWh for each UTC hour; overrides gramsPerKWh when set."""

    def at_hour(self, utc_hour: int) -> float:
        return self.hourly[utc_hour % 24] if self.hourly else self.grams_per_kwh


class Energy(SpecModel):
    """How device-hours become energy: board watts x utilisation x PUE (docs/economics.md)."""

    utilisation: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Average power draw as a share of the board power; 1 (the default) is an upper bound."""
    pue: Annotated[float, Field(ge=1, le=5)] = 1.0
    """Power usage effectiveness of the site: facility energy / IT energy (1 = IT energy only)."""


class GPUPoolSpec(SpecModel):
    """What makes up the pool and what its devices are worth."""

    node_selector: LabelSelector
    """Nodes of the pool (a LabelSelector); a node selected by two pools counts in neither."""
    resource_name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
        ),
    ] = "nvidia.com/gpu"
    """Extended resource counted as devices."""
    accelerator: Accelerator
    topology: Topology = Field(default_factory=Topology)
    capacity_type: Literal["spot", "on-demand", "reserved", "auto"] = "auto"
    """auto reads each node's capacity type from the cloud's labels."""
    pricing: Pricing = Field(default_factory=Pricing)
    location: Location = Field(default_factory=Location)
    carbon: Carbon | None = None
    energy: Energy = Field(default_factory=Energy)
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    """Tolerations added to every pod Corral places on the pool (for tainted GPU nodes)."""
    namespace_selector: LabelSelector | None = None
    """Namespaces whose workloads may be placed in the pool, by the namespace's labels (as
    Kueue's ClusterQueue). Unset: every namespace. A workload from another namespace is
    Unschedulable with the reason."""
    queueing: QueueingStrategy = "StrictFIFO"
    """How waiting gangs share the pool (Kueue's names). StrictFIFO: the first waiting gang (by
    priority, then age) that could run here holds the pool, and later gangs wait behind it even if
    they would fit now — a big gang never starves behind a stream of small ones. BestEffortFIFO:
    later gangs that fit now go ahead; better use of devices, but a big gang may wait forever."""


QueueingStrategy = Literal["StrictFIFO", "BestEffortFIFO"]


class DeviceCounts(StatusModel):
    capacity: int = 0
    allocatable: int = 0
    allocated: int = 0
    free: int = 0


class LevelFreeCapacity(StatusModel):
    """Free capacity at one topology level."""

    level: str
    domains: int = 0
    """Domains at this level."""
    largest_free_domain: str | None = None
    """Name of the domain with the most free devices."""
    largest_free_devices: int = 0
    """Free devices in that domain."""


class PoolPrice(StatusModel):
    allocated_per_hour: float = 0.0
    total_per_hour: float = 0.0
    currency: str = "USD"


class GPUPoolStatus(StatusModel):
    observed_generation: int | None = None
    nodes: int = 0
    ready_nodes: int = 0
    spot_nodes: int = 0
    devices: DeviceCounts = Field(default_factory=DeviceCounts)
    levels: list[LevelFreeCapacity] = Field(default_factory=list)
    """Free capacity and the largest free domain per topology level, broadest first."""
    fragmentation: float = 0.0
    """1 - (free devices on wholly free nodes / free devices): the share of free devices a gang of
    whole-node workers cannot use; 0 when nothing is free (docs/placement.md)."""
    price_per_hour: PoolPrice = Field(default_factory=PoolPrice)
    conditions: list[Condition] = Field(default_factory=list)


class GPUPool(SpecModel):
    """A set of nodes sharing an accelerator."""

    api_version: Literal["corral.dev/v1alpha1"] = "corral.dev/v1alpha1"
    kind: Literal["GPUPool"] = "GPUPool"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GPUPoolSpec
    status: GPUPoolStatus | None = None
