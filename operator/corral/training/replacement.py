"""Where the workers of a running gang go when only some of them must move.

A termination notice on some nodes of a running gang need not restart the gang: when its span
domain (the rack, block ... it was placed in) still has room for the affected workers, only they
are placed again, inside that domain, by the same solver and objective as a whole gang
(`corral.placement.place_within`); the others keep running. Pure: the snapshot (with the
ledger's assumed workers in it) in, nodes or the reason there are none out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from corral.api.trainingjob import PlacementStatus
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, PlacementRequest, place_within

ReplaceWorkers = Callable[[PlacementStatus, Sequence[int]], list[str] | str]
"""(the gang's placement, the indexes to move) -> a new node per index, in index order, or why
they do not fit in the span domain now."""


def replacement_nodes(
    snapshot: FleetSnapshot,
    request: PlacementRequest,
    placement: PlacementStatus,
    indexes: Sequence[int],
) -> list[str] | str:
    """New nodes for workers `indexes` of a placed gang, inside its span domain."""
    moving = sorted(set(indexes))
    if not moving:
        return []
    kept = [node for i, node in enumerate(placement.nodes) if i not in set(moving)]
    # A kept worker's node names the span domain unambiguously (two racks may share a name in
    # different blocks); when every worker moves, a moving one's node still does.
    anchor = kept[0] if kept else placement.nodes[moving[0]]
    partial = dataclasses.replace(
        request,
        workers=len(moving),
        pools=(placement.pool,),
        required_level=None,
        preferred_level=None,
    )
    result = place_within(snapshot, partial, placement.pool, placement.level, anchor)
    if isinstance(result, NoFit):
        return result.reason
    return list(result.assignments)


def bind(snapshot: FleetSnapshot, request: PlacementRequest | None) -> ReplaceWorkers | None:
    """`replacement_nodes` for one job (None when its request cannot be read)."""
    if request is None:
        return None

    def replace(placement: PlacementStatus, indexes: Sequence[int]) -> list[str] | str:
        return replacement_nodes(snapshot, request, placement, indexes)

    return replace
