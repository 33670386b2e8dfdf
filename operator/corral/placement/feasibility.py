"""Could the gang fit a pool if every pod were gone? Only its own constraints count.

The scheduling pass asks this before letting a waiting job hold a pool (StrictFIFO): a job whose
nodeSelector matches no node, whose tolerations miss the pool's taints, or whose capacity types
the pool does not have, could wait forever — and hold the pool for everyone behind it. Such a job
waits without holding (`NoMatchingNodes`), and is asked again whenever the pass runs (nodes or
pools changed). Passing node states — NotReady, cordoned — are not the job's doing and do not
count against it. The answer depends on the pool's nodes, not on their usage, so it is memoised
on the pool view until a node joins, leaves or changes.
"""

from __future__ import annotations

from collections import Counter

from corral.fleet.pool import PoolView
from corral.placement.request import PlacementRequest
from corral.placement.search import tree_level


def empty_fit_problem(view: PoolView, request: PlacementRequest) -> str | None:
    """None when the gang fits the empty pool under its own constraints; else why not."""
    key = ("empty-fit", request.demand(), request.workers, request.required_level)
    answer = view.static(key, lambda: _problem(view, request))
    assert answer is None or isinstance(answer, str)
    return answer


def _problem(view: PoolView, request: PlacementRequest) -> str | None:
    demand = request.demand()
    resource = view.resource_name
    required = request.required_level
    if required is not None and required not in view.topology.reported_levels:
        return None  # not this check's business: the solver refuses the pool
    level = tree_level(view.topology, required)
    every: dict[str, int] = {}
    own: dict[str, int] = {}
    why: Counter[str] = Counter()
    for name, node in view.nodes.items():
        every[name] = demand.workers_held(node.allocatable, {}, node.allocatable.get(resource, 0))
        problem = view.why_unusable(name, demand, own_only=True)
        own[name] = 0 if problem is not None else every[name]
        if problem is not None:
            why[problem] += 1
    if _most(view, every, level) < request.workers:
        return None  # too small for the gang whatever it asks: the solver's permanent refusal
    most = _most(view, own, level)
    if most >= request.workers:
        return None
    where = (
        f"pool {view.name}"
        if level is None
        else "any one host"
        if level >= view.topology.depth
        else f"any one {view.topology.levels[level]} domain"
    )
    causes = "; ".join(
        f"{cause} on {count} of {len(view.nodes)} nodes" for cause, count in why.most_common(3)
    )
    return (
        f"pool {view.name}: even with every pod gone, {where} holds {most} of the "
        f"{request.workers} workers under the job's own constraints ({causes})"
    )


def _most(view: PoolView, held: dict[str, int], level: int | None) -> int:
    """The most workers one domain of `level` holds (the pool as a whole for None)."""
    if level is None:
        return sum(held.values())
    if level >= view.topology.depth:
        return max(held.values(), default=0)
    by_domain: Counter[tuple[str | None, ...]] = Counter()
    for name, count in held.items():
        domain = view.topology.domain_of(name, level)
        if domain is not None:
            by_domain[domain.path] += count
    return max(by_domain.values(), default=0)
