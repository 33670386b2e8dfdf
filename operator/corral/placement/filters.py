"""The pool-level hard constraints: which pools a gang may use at all.

Each filter that leaves no pool names itself in the refusal, which is permanent: no change of
load makes a pool of the wrong accelerator, place or capacity type acceptable. Pools that do not
exist are the exception: the job waits until they do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.fleet.memo import kept
from corral.fleet.pool import PoolView
from corral.fleet.snapshot import FleetSnapshot
from corral.placement.request import PlacementRequest


def listing(values: Sequence[object]) -> str:
    """`[a, b]`, as the fields are written in YAML flow style."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def _gib(value: float) -> str:
    return f"{value:g}"


@dataclass
class PoolChoice:
    views: list[PoolView]
    refusal: str | None = None
    notes: list[str] = field(default_factory=list)
    permanent: bool = True
    """False when the refusal is that the pools do not exist (yet): a GitOps tool applies a
    GPUPool and its jobs together, and the job's event may come first; it waits for the pool."""


def _keep(
    views: list[PoolView],
    test: Callable[[PoolView], bool],
    describe: Callable[[PoolView], str],
    what: str,
) -> tuple[list[PoolView], str | None]:
    kept = [view for view in views if view.implicit or test(view)]
    if kept or not views:
        return kept, None
    shown = "; ".join(f"{view.name}: {describe(view)}" for view in views[:5])
    more = f" and {len(views) - 5} more" if len(views) > 5 else ""
    return kept, f"no pool matches {what} ({shown}{more})"


def select_pools(snapshot: FleetSnapshot, request: PlacementRequest) -> PoolChoice:
    """The pools the request may use, or the permanent reason there is none."""
    notes: list[str] = []
    if request.pools:
        missing = [name for name in request.pools if name not in snapshot.pools]
        views = [snapshot.pools[name] for name in sorted(set(request.pools) - set(missing))]
        if missing and not views:
            known = listing(sorted(snapshot.pools)) if snapshot.pools else "none"
            plural = "s" if len(missing) > 1 else ""
            return PoolChoice(
                [],
                f"pools={listing(missing)}: no GPUPool{plural} of that name (pools: {known})",
                permanent=False,
            )
        if missing:
            notes.append(f"pools {listing(missing)} do not exist")
    else:
        views = [snapshot.pools[name] for name in sorted(snapshot.pools)]
        if not views:
            return PoolChoice(
                [], "no GPUPool exists: create one that selects the GPU nodes", permanent=False
            )

    steps: list[tuple[bool, Callable[[PoolView], bool], Callable[[PoolView], str], str]] = [
        (
            bool(request.accelerator_types),
            lambda v: v.spec.accelerator.type in request.accelerator_types,
            lambda v: v.spec.accelerator.type,
            f"accelerator.types={listing(request.accelerator_types)}",
        ),
        (
            request.min_memory_gib is not None,
            lambda v: v.spec.accelerator.memory_gib >= (request.min_memory_gib or 0),
            lambda v: f"{_gib(v.spec.accelerator.memory_gib)} GiB",
            f"accelerator.minMemoryGiB={_gib(request.min_memory_gib or 0)}",
        ),
        (
            bool(request.jurisdictions),
            lambda v: v.spec.location.jurisdiction in request.jurisdictions,
            lambda v: v.spec.location.jurisdiction or "no jurisdiction",
            f"residency.jurisdictions={listing(request.jurisdictions)}",
        ),
        (
            bool(request.regions),
            lambda v: v.spec.location.region in request.regions,
            lambda v: v.spec.location.region or "no region",
            f"residency.regions={listing(request.regions)}",
        ),
        (
            True,
            lambda v: (
                v.spec.capacity_type == "auto" or v.spec.capacity_type in request.capacity_types
            ),
            lambda v: f"capacityType {v.spec.capacity_type}",
            f"capacity.types={listing(request.capacity_types)}",
        ),
        (
            request.required_level is not None,
            lambda v: (
                request.required_level == HOSTNAME_LEVEL
                or request.required_level in v.topology.levels
            ),
            lambda v: f"levels {listing(v.topology.reported_levels)}",
            f"topology.required={request.required_level}",
        ),
    ]
    for active, test, describe, what in steps:
        if not active:
            continue
        views, refusal = _keep(views, test, describe, what)
        if refusal is not None:
            return PoolChoice([], refusal, notes)
    implicit = [view.name for view in views if view.implicit]
    if implicit and (
        request.accelerator_types
        or request.min_memory_gib is not None
        or request.jurisdictions
        or request.regions
    ):
        notes.append(
            f"pool {implicit[0]} was assumed (no GPUPools given): its accelerator and location "
            "are unknown, so accelerator and residency were not checked"
        )
    return PoolChoice(views, None, notes)


def candidate_pools(snapshot: FleetSnapshot, request: PlacementRequest) -> list[str]:
    """Names of the pools the request may use (pool-level constraints only), sorted."""
    return list(_candidates(snapshot, request)[0])


def candidate_pool_set(snapshot: FleetSnapshot, request: PlacementRequest) -> frozenset[str]:
    """`candidate_pools` as a set."""
    return _candidates(snapshot, request)[1]


def _candidates(
    snapshot: FleetSnapshot, request: PlacementRequest
) -> tuple[tuple[str, ...], frozenset[str]]:
    # Asked for every waiting job on every scheduling pass, and the answer reads only the pools:
    # it is kept on the (immutable) request while the snapshot's pools and nodes stay as they
    # were (`static_epoch`).
    def compute() -> tuple[tuple[str, ...], frozenset[str]]:
        names = tuple(view.name for view in select_pools(snapshot, request).views)
        return names, frozenset(names)

    return kept(request, "_candidate_pools", snapshot.static_epoch, compute)
