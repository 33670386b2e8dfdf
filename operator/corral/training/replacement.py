"""Where the workers of a running gang go when only some of them must move.

A termination notice on some nodes of a running gang need not restart the gang: when its span
domain (the rack, block ... it was placed in) still has room for the affected workers, only they
are placed again, inside that domain, by the same solver and objective as a whole gang
(`corral.placement.place_within`); the others keep running. When the span domain has no room
(a gang that filled its rack), the next wider domain holding the gang is tried, up to the level
the job requires (`topology.required`) and never beyond it: the gang then spans the wider
domain, which its requirement allows. Without a required level the gang stays in its span
domain (it asked for nothing, but was placed compactly; spreading it is the whole gang's move to
make). Pure: the snapshot (with the ledger's assumed workers in it) in, nodes or the reason there
are none out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.api.trainingjob import PlacementStatus
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, PlacementRequest, place_within
from corral.placement.search import tree_level


@dataclass(frozen=True)
class Moves:
    nodes: list[str]
    """A new node per moving worker, in index order."""
    level: str | None
    """The gang's span level after the move: its own, or a wider one its requirement allows."""
    domain: str | None
    """The span domain at that level."""


ReplaceWorkers = Callable[[PlacementStatus, Sequence[int]], Moves | str]
"""(the gang's placement, the indexes to move) -> where they go, or why they fit nowhere the
gang may span now."""


def replacement_nodes(
    snapshot: FleetSnapshot,
    request: PlacementRequest,
    placement: PlacementStatus,
    indexes: Sequence[int],
) -> Moves | str:
    """New nodes for workers `indexes` of a placed gang: inside its span domain, or else the
    narrowest wider domain holding it, up to the job's required level."""
    moving = sorted(set(indexes))
    if not moving:
        return Moves([], placement.level, placement.domain)
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
    reasons: list[str] = []
    for level, domain in _domains(snapshot, request, placement, anchor):
        result = place_within(snapshot, partial, placement.pool, level, anchor)
        if not isinstance(result, NoFit):
            return Moves(list(result.assignments), level, domain)
        reasons.append(result.reason)
    return "; ".join(reasons)


def _domains(
    snapshot: FleetSnapshot, request: PlacementRequest, placement: PlacementStatus, anchor: str
) -> list[tuple[str | None, str | None]]:
    """(level, domain name) to try, narrowest first: the span domain, then each wider level of
    the pool up to the required one."""
    tried: list[tuple[str | None, str | None]] = [(placement.level, placement.domain)]
    view = snapshot.pools.get(placement.pool)
    required = request.required_level
    if view is None or required is None or placement.level is None or anchor not in view.nodes:
        return tried
    topology = view.topology
    at = tree_level(topology, placement.level)
    top = tree_level(topology, required) if required in (*topology.levels, HOSTNAME_LEVEL) else None
    if at is None or top is None:
        return tried
    for index in range(min(at, topology.depth) - 1, top - 1, -1):
        domain = topology.domain_of(anchor, index)
        if domain is None:
            break
        tried.append((topology.levels[index], domain.name))
    return tried


def bind(snapshot: FleetSnapshot, request: PlacementRequest | None) -> ReplaceWorkers | None:
    """`replacement_nodes` for one job (None when its request cannot be read)."""
    if request is None:
        return None

    def replace(placement: PlacementStatus, indexes: Sequence[int]) -> Moves | str:
        return replacement_nodes(snapshot, request, placement, indexes)

    return replace
