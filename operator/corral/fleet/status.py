"""A GPUPool's status figures, computed from the snapshot (the controller only writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.api.conditions import set_condition
from corral.api.gpupool import (
    DeviceCounts,
    GPUPoolStatus,
    LevelFreeCapacity,
    PoolPrice,
)
from corral.api.meta import Condition, ConditionStatus
from corral.fleet.objects import NodeRecord
from corral.fleet.pool import PoolView
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.topology import Domain


@dataclass(frozen=True)
class DeviceFigures:
    """A pool's device counts, as `view_status` reports them (the definitions are there)."""

    allocatable: int
    allocated: int
    free: int
    whole_free: int
    """Free devices on nodes nothing is allocated on."""

    @property
    def fragmentation(self) -> float:
        return round(1 - self.whole_free / self.free, 4) if self.free else 0.0


def device_figures(view: PoolView) -> DeviceFigures:
    """Allocatable, allocated, free and wholly free devices of a pool, in one pass over its nodes
    (what the simulator samples; `view_status` reports the same figures)."""
    resource = view.resource_name
    allocatable = allocated = free = whole_free = 0
    for name, node in view.nodes.items():
        node_allocatable = node.allocatable.get(resource, 0)
        node_allocated = view.allocated(name)
        allocatable += node_allocatable
        allocated += node_allocated
        if not node.schedulable:
            continue
        node_free = max(0, node_allocatable - node_allocated)
        free += node_free
        if node_free and node_allocated == 0:
            whole_free += node_free
    return DeviceFigures(allocatable, allocated, free, whole_free)


def _largest(free_by_domain: dict[Domain, int], domains: list[Domain]) -> tuple[str | None, int]:
    """The domain with the most free devices, the first by path among equals."""
    if not domains:
        return None, 0
    best = min(domains, key=lambda d: (-free_by_domain.get(d, 0), d.sort_key()))
    return best.name, free_by_domain.get(best, 0)


def pool_status(
    snapshot: FleetSnapshot, pool: str, observed_generation: int | None = None
) -> GPUPoolStatus:
    """Every figure of a pool's `GPUPoolStatus` except conditions (all zero for an unknown pool).
    See `view_status` for the definitions."""
    view = snapshot.pools.get(pool)
    if view is None:
        return GPUPoolStatus(observed_generation=observed_generation)
    return view_status(view, observed_generation)


def view_status(view: PoolView, observed_generation: int | None = None) -> GPUPoolStatus:
    """Every figure of `GPUPoolStatus` except conditions.

    - `devices`: capacity and allocatable are summed over all member nodes; allocated is what the
      counted pods request; free is allocatable minus allocated on nodes that are Ready and not
      cordoned (what a gang could use, taints aside).
    - `levels`: per level of the pool (broadest first, hosts last), the number of domains and the
      one with the most free devices (ties: the first by name).
    - `fragmentation`: 1 - (free devices on wholly free nodes / free devices). A gang of
      whole-node workers with no topology constraint can use exactly the wholly free nodes, so
      this is the share of free devices such a gang cannot use; 0 when nothing is free.
    - `pricePerHour`: allocated and allocatable devices at each node's capacity-type price.
    """
    resource = view.resource_name
    pricing = view.spec.pricing
    figures = device_figures(view)
    capacity = ready = spot = 0
    allocated_price = total_price = 0.0
    free_by_domain: dict[Domain, int] = {}
    topology = view.topology
    for name, node in view.nodes.items():
        node_allocatable = node.allocatable.get(resource, 0)
        node_allocated = view.allocated(name)
        capacity += node.capacity.get(resource, 0)
        ready += node.ready
        capacity_type = view.capacity_types[name]
        spot += capacity_type == "spot"
        price = pricing.per_device_hour(capacity_type)
        allocated_price += price * node_allocated
        total_price += price * node_allocatable
        node_free = max(0, node_allocatable - node_allocated)
        if node.schedulable and node_free:
            for domain in topology.parent_of[name].ancestors():
                free_by_domain[domain] = free_by_domain.get(domain, 0) + node_free

    levels: list[LevelFreeCapacity] = []
    for level, key in enumerate(topology.levels):
        domains = list(topology.by_level[level].values())
        largest, devices = _largest(free_by_domain, domains)
        levels.append(
            LevelFreeCapacity(
                level=key,
                domains=len(domains),
                largest_free_domain=largest,
                largest_free_devices=devices,
            )
        )
    hosts = sorted(
        (-view.free(name), topology.host_name[name])
        for name, node in view.nodes.items()
        if node.schedulable
    )
    levels.append(
        LevelFreeCapacity(
            level=topology.reported_levels[-1],
            domains=len(view.nodes),
            largest_free_domain=hosts[0][1] if hosts else None,
            largest_free_devices=-hosts[0][0] if hosts else 0,
        )
    )
    return GPUPoolStatus(
        observed_generation=observed_generation,
        nodes=len(view.nodes),
        ready_nodes=ready,
        spot_nodes=spot,
        devices=DeviceCounts(
            capacity=capacity,
            allocatable=figures.allocatable,
            allocated=figures.allocated,
            free=figures.free,
        ),
        levels=levels,
        fragmentation=figures.fragmentation,
        price_per_hour=PoolPrice(
            allocated_per_hour=round(allocated_price, 4),
            total_per_hour=round(total_price, 4),
            currency=pricing.currency,
        ),
    )


def pool_conditions(
    snapshot: FleetSnapshot,
    pool: str,
    conditions: list[Condition],
    now: datetime,
    generation: int | None,
) -> tuple[list[Condition], str | None]:
    """A pool's conditions — Ready, Degraded, Overlapping, Dedicated — and the overlap message.

    Ready is False (NoNodes) when the selector matches nothing; Degraded counts NotReady and
    cordoned members; Overlapping names nodes another pool also selects (they count in neither);
    Dedicated says whether every node keeps other workloads out with a taint the pool tolerates.
    """
    view = snapshot.pools.get(pool)
    members = list(view.nodes.values()) if view is not None else []
    not_ready = sum(1 for node in members if not node.ready)
    cordoned = sum(1 for node in members if node.ready and node.unschedulable)
    ready_now = sum(1 for node in members if node.ready)
    if not members:
        ready: tuple[ConditionStatus, str, str] = (
            "False",
            "NoNodes",
            "no node matches spec.nodeSelector",
        )
    else:
        ready = ("True", "NodesReady", f"{ready_now} of {len(members)} node(s) ready")
    conditions = set_condition(conditions, "Ready", ready[0], ready[1], ready[2], now, generation)
    degraded: tuple[ConditionStatus, str, str]
    if not_ready or cordoned:
        degraded = (
            "True",
            "NodesUnavailable",
            f"{not_ready + cordoned} node(s) unavailable: {not_ready} NotReady, {cordoned} cordoned",
        )
    else:
        degraded = ("False", "AllNodesAvailable", "every node is Ready and schedulable")
    conditions = set_condition(
        conditions, "Degraded", degraded[0], degraded[1], degraded[2], now, generation
    )
    overlapping = sorted(snapshot.overlapping_nodes(pool))
    message = None
    if overlapping:
        shown = ", ".join(overlapping[:5]) + (
            f" and {len(overlapping) - 5} more" if len(overlapping) > 5 else ""
        )
        message = (
            f"{len(overlapping)} node(s) also selected by another pool, counted in neither: {shown}"
        )
        conditions = set_condition(
            conditions, "Overlapping", "True", "NodesInTwoPools", message, now, generation
        )
    else:
        conditions = set_condition(
            conditions,
            "Overlapping",
            "False",
            "NoOverlap",
            "no node is selected by another pool",
            now,
            generation,
        )
    dedicated = _dedicated(view, members) if view is not None and members else None
    if dedicated is not None:
        conditions = set_condition(
            conditions, "Dedicated", dedicated[0], dedicated[1], dedicated[2], now, generation
        )
    return conditions, message


SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")


def _dedicated(view: PoolView, members: list[NodeRecord]) -> tuple[ConditionStatus, str, str]:
    """Whether the pool's nodes keep other workloads out: each carries a NoSchedule/NoExecute
    taint that the pool's tolerations (added to every Corral worker) tolerate. Shared nodes are
    where another pod can take room Corral planned before the gang binds (docs/training.md,
    "Reservations"): kube-scheduler keeps a nominated worker's room only against pods of equal or
    lower priority, and schedulers other than kube-scheduler may not keep it at all."""
    tolerations = view.spec.tolerations
    keys: set[str] = set()
    shared: list[str] = []
    for node in members:
        tolerated = [
            taint
            for taint in node.taints
            if not str(taint.get("key", "")).startswith(SYSTEM_TAINT_PREFIXES)
            and any(toleration.tolerates(dict(taint)) for toleration in tolerations)
        ]
        if tolerated:
            keys.update(str(taint.get("key")) for taint in tolerated)
        else:
            shared.append(node.name)
    if not shared:
        # Kubernetes' ExtendedResourceToleration admission plugin gives every pod requesting an
        # extended resource a toleration for a taint keyed by it: such a taint keeps no GPU pod out.
        caveat = (
            f"; but a taint keyed {view.resource_name} is tolerated by every pod asking for "
            f"{view.resource_name} where the ExtendedResourceToleration admission plugin is on: "
            "taint with a key of your own"
            if view.resource_name in keys
            else ""
        )
        return (
            "True",
            "TaintedForPool",
            f"every node carries a taint the pool tolerates ({', '.join(sorted(keys))}): only "
            "pods that tolerate it too (a toleration with operator Exists tolerates every taint) "
            f"can take room planned for a gang{caveat}",
        )
    shown = ", ".join(sorted(shared)[:3]) + (
        f" and {len(shared) - 3} more" if len(shared) > 3 else ""
    )
    return (
        "False",
        "SharedNodes",
        f"{len(shared)} of {len(members)} node(s) carry no taint the pool tolerates ({shown}): "
        "other workloads may take room planned for a gang before it binds; taint them and add "
        "the taint to spec.tolerations to dedicate them",
    )
