"""Fleet files: a simulated GPU fleet described as regions → zones → blocks → racks → hosts.

The schema is documented in docs/fleet-files.md; `e2e/fleets/*.yaml` are examples. A file is
parsed into a `Fleet` (validated, unknown keys rejected so a typo fails loudly) and expanded into
`Host`s, one per simulated machine, in a stable order; `corral.localfleet.nodes` turns those into
Node objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from corral.api.errors import yaml_problem

Cloud = Literal["aws", "gcp", "azure"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _dns_name(value: str) -> str:
    """Zone and fleet names end up in node names and label values."""
    if not _DNS_LABEL.match(value) or len(value) > 40:
        raise ValueError(f"{value!r}: lower-case letters, digits and '-', at most 40 characters")
    return value


DnsName = Annotated[str, AfterValidator(_dns_name)]
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class FleetFileError(ValueError):
    """The fleet file is not valid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Taint(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class HostSpec(_Model):
    """What every host of a subtree looks like. At the fleet level every field has a default;
    a zone or block may override any of them (labels are merged, taints appended)."""

    gpus: int | None = Field(default=None, ge=0, le=64)
    """Devices per host, advertised as the `nvidia.com/gpu` extended resource."""
    product: str | None = None
    """`nvidia.com/gpu.product`, as NVIDIA GPU feature discovery names it."""
    gpu_memory_mib: int | None = Field(default=None, alias="gpuMemoryMiB", ge=0)
    """`nvidia.com/gpu.memory`: memory per device in MiB."""
    cpu: str | None = None
    memory: str | None = None
    pods: int | None = Field(default=None, ge=1)
    ephemeral_storage: str | None = None
    instance_type: str | None = None
    """`node.kubernetes.io/instance-type` (omitted when unset)."""
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @field_validator("cpu", "memory", "ephemeral_storage", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not (isinstance(value, str) and _QUANTITY.match(value)):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 192, 2Ti, 500m)")
        return value

    def over(self, base: HostSpec) -> HostSpec:
        """This spec's set fields on top of `base`."""
        merged = base.model_copy()
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "labels":
                merged.labels = {**base.labels, **value}
            elif name == "taints":
                merged.taints = [*base.taints, *value]
            elif value is not None:
                setattr(merged, name, value)
        return merged


DEFAULT_HOST = HostSpec(
    gpus=8,
    product="NVIDIA-H100-80GB-HBM3",
    gpu_memory_mib=81559,
    cpu="192",
    memory="2Ti",
    pods=110,
    ephemeral_storage="30Ti",
)


class Block(_Model):
    racks: int = Field(ge=1, le=1000)
    hosts_per_rack: int | None = Field(default=None, ge=1, le=1000)
    spot: float | None = Field(default=None, ge=0, le=1)
    host: HostSpec = Field(default_factory=HostSpec)


class Zone(_Model):
    name: DnsName
    blocks: int | list[Block] | None = None
    """A count of identical blocks (shaped by racksPerBlock/hostsPerRack), or a list of blocks."""
    racks_per_block: int | None = Field(default=None, ge=1, le=1000)
    hosts_per_rack: int | None = Field(default=None, ge=1, le=1000)
    spot: float | None = Field(default=None, ge=0, le=1)
    host: HostSpec = Field(default_factory=HostSpec)


class Region(_Model):
    name: str
    zones: list[Zone] = Field(min_length=1)


class Fleet(_Model):
    name: DnsName
    """The default cluster name (`corral fleet up --name` overrides it)."""
    description: str = ""
    cloud: Cloud = "aws"
    """Which cloud's capacity-type label the nodes carry (and, with cloudTopologyLabels, which
    cloud-native topology labels)."""
    cloud_topology_labels: bool = False
    spot: float = Field(default=0.0, ge=0, le=1)
    """Share of spot hosts, spread evenly through each zone."""
    blocks_per_zone: int = Field(default=1, ge=1, le=1000)
    racks_per_block: int = Field(default=1, ge=1, le=1000)
    hosts_per_rack: int = Field(default=1, ge=1, le=1000)
    host: HostSpec = Field(default_factory=HostSpec)
    regions: list[Region] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_zones(self) -> Fleet:
        names = [zone.name for region in self.regions for zone in region.zones]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"zone names must be unique across regions: {', '.join(duplicates)}")
        return self


@dataclass(frozen=True)
class Host:
    """One simulated machine, with its place in the topology and its resolved spec."""

    name: str
    region: str
    zone: str
    block: str
    rack: str
    spot: bool
    spec: HostSpec


def _spread(count: int, share: float) -> list[bool]:
    """`count` flags with round(count*share) of them True, spread evenly (every 4th for 25 %)."""
    fraction = Fraction(str(share))
    return [(i + 1) * fraction // 1 > i * fraction // 1 for i in range(count)]


def hosts(fleet: Fleet) -> list[Host]:
    """Every host of the fleet, in a stable order (region, zone, block, rack, host)."""
    base = fleet.host.over(DEFAULT_HOST)
    result: list[Host] = []
    for region in fleet.regions:
        for zone in region.zones:
            zone_spec = zone.host.over(base)
            blocks = zone.blocks if zone.blocks is not None else fleet.blocks_per_zone
            if isinstance(blocks, int):
                racks = zone.racks_per_block or fleet.racks_per_block
                blocks = [Block(racks=racks) for _ in range(blocks)]
            by_block: list[list[Host]] = []
            for b, block in enumerate(blocks, start=1):
                block_name = f"{zone.name}-b{b}"
                per_rack = block.hosts_per_rack or zone.hosts_per_rack or fleet.hosts_per_rack
                spec = block.host.over(zone_spec)
                by_block.append(
                    [
                        Host(f"{block_name}-r{r}-h{h:02d}", region.name, zone.name, block_name,
                             f"{block_name}-r{r}", False, spec)
                        for r in range(1, block.racks + 1)
                        for h in range(1, per_rack + 1)
                    ]
                )  # fmt: skip
            # Spot hosts are spread evenly through the zone; a block with its own share is
            # spread on its own.
            zone_share = zone.spot if zone.spot is not None else fleet.spot
            shared = [
                h
                for block, hs in zip(blocks, by_block, strict=True)
                if block.spot is None
                for h in hs
            ]
            spot = dict(
                zip((h.name for h in shared), _spread(len(shared), zone_share), strict=True)
            )
            for block, hs in zip(blocks, by_block, strict=True):
                if block.spot is not None:
                    spot.update(
                        zip((h.name for h in hs), _spread(len(hs), block.spot), strict=True)
                    )
            result.extend(replace(h, spot=spot[h.name]) for hs in by_block for h in hs)
    return result


def parse(data: Any, source: str = "<fleet>") -> Fleet:
    """A `Fleet` from parsed YAML, or a `FleetFileError` naming the source and field."""
    if not isinstance(data, dict):
        raise FleetFileError(f"{source}: a fleet file is a mapping (name, regions, ...)")
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{where}: {error['msg']}")
        raise FleetFileError(f"{source}: " + "; ".join(problems)) from None
    too_long = [h.name for h in hosts(fleet) if len(h.name) > 63]
    if too_long:
        raise FleetFileError(f"{source}: host name {too_long[0]!r} is longer than 63 characters")
    return fleet


def load(path: str | Path) -> Fleet:
    """Read and validate a fleet file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise FleetFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FleetFileError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None
    return parse(data, str(path))
