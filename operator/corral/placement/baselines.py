"""Baseline placement policies, to compare Corral's solver with (bench/ and `corral simulate`).

Each has the solver's signature, `(snapshot, request) -> Placement | NoFit`, and the solver's hard
constraints: the pool filters (`select_pools`), node usability and whole workers per node (the
pool's `CapacityIndex`), and `topology.required` (the gang inside one domain of that level). What
differs is only the choice among what fits:

- `first_fit`: hosts in name order, as many workers on each as fit. With a required level, the
  first domain of that level (by name) that holds the gang.
- `spread`: kube-scheduler-like LeastAllocated: one worker at a time on the host with the most
  free devices; no topology. With a required level, the domain with the most free devices among
  those that hold the gang.
- `kueue_best_fit`: Kueue TAS-like BestFit: the lowest level at which a domain holds the gang,
  the domain there with the least room that still holds it, then a descent taking children by
  room, largest first, the last one best-fit.

Pools are tried in name order and the first that holds the gang wins (Kueue's flavor order).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Literal

from corral.fleet.pool import CapacityIndex, PoolView
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.topology import Domain
from corral.placement.explain import TIMES, needs, plural
from corral.placement.filters import select_pools
from corral.placement.request import PlacementRequest
from corral.placement.result import NoFit, Placement
from corral.placement.search import tree_level
from corral.placement.solver import place, static_refusal
from corral.placement.span import span_of

PolicyName = Literal["corral", "first-fit", "spread", "kueue-bestfit"]
Policy = Callable[[FleetSnapshot, PlacementRequest], Placement | NoFit]
InPool = Callable[[PoolView, CapacityIndex, PlacementRequest], list[tuple[str, int]] | None]
"""Workers per host, in the order the policy chose the hosts, or None when it finds no room."""


def _nodes_under(domain: Domain) -> Iterator[str]:
    yield from domain.nodes
    for child in domain.children.values():
        yield from _nodes_under(child)


def _candidates(view: PoolView, index: CapacityIndex, request: PlacementRequest) -> list[Domain]:
    """The domains a gang may be confined to: those of the required level that hold it, or the
    pool itself without one (the host level is handled by `_host_candidates`)."""
    required = tree_level(view.topology, request.required_level)
    if required is None:
        return [view.topology.root]
    if required >= view.topology.depth:
        return []
    domains = view.topology.by_level[required].values()
    return sorted(
        (d for d in domains if index.cap.get(d, 0) >= request.workers), key=Domain.sort_key
    )


def _host_level(view: PoolView, request: PlacementRequest) -> bool:
    required = tree_level(view.topology, request.required_level)
    return required is not None and required >= view.topology.depth


def _take_in_order(
    nodes: list[str], index: CapacityIndex, workers: int
) -> list[tuple[str, int]] | None:
    taken: list[tuple[str, int]] = []
    left = workers
    for node in nodes:
        fits = min(index.fits.get(node, 0), left)
        if fits:
            taken.append((node, fits))
            left -= fits
            if not left:
                return taken
    return None


def _first_fit_in(
    view: PoolView, index: CapacityIndex, request: PlacementRequest
) -> list[tuple[str, int]] | None:
    if _host_level(view, request):
        single = [n for n in sorted(index.fits) if index.fits[n] >= request.workers]
        return [(single[0], request.workers)] if single else None
    for domain in _candidates(view, index, request):
        nodes = sorted(index.fits) if domain is view.topology.root else sorted(_nodes_under(domain))
        taken = _take_in_order(nodes, index, request.workers)
        if taken is not None:
            return taken
    return None


def _spread_over(
    nodes: list[str], index: CapacityIndex, workers: int, devices: int
) -> list[tuple[str, int]] | None:
    heap = [(-index.free[n], n, index.fits[n]) for n in nodes if index.fits.get(n, 0)]
    heapq.heapify(heap)
    taken: dict[str, int] = {}
    for _ in range(workers):
        if not heap:
            return None
        free, name, fits = heapq.heappop(heap)
        taken[name] = taken.get(name, 0) + 1
        if fits > 1:
            heapq.heappush(heap, (free + devices, name, fits - 1))
    return list(taken.items())


def _spread_in(
    view: PoolView, index: CapacityIndex, request: PlacementRequest
) -> list[tuple[str, int]] | None:
    if _host_level(view, request):
        single = [n for n in index.fits if index.fits[n] >= request.workers]
        best = min(single, key=lambda n: (-index.free[n], n), default=None)
        return [(best, request.workers)] if best is not None else None
    domains = _candidates(view, index, request)
    domains.sort(key=lambda d: (-index.room.get(d, 0), d.sort_key()))
    for domain in domains:
        nodes = list(index.fits) if domain is view.topology.root else list(_nodes_under(domain))
        taken = _spread_over(nodes, index, request.workers, request.devices_per_worker)
        if taken is not None:
            return taken
    return None


def _children(domain: Domain, index: CapacityIndex) -> list[tuple[int, tuple[str, ...], object]]:
    """(workers held, sort key, child) of a domain's children: domains, or nodes at the bottom."""
    out: list[tuple[int, tuple[str, ...], object]] = [
        (index.fits.get(node, 0), (node,), node) for node in domain.nodes
    ]
    out += [
        (index.cap.get(child, 0), child.sort_key(), child) for child in domain.children.values()
    ]
    return [entry for entry in out if entry[0] > 0]


def _descend(domain: Domain, need: int, index: CapacityIndex, taken: list[tuple[str, int]]) -> None:
    kids = sorted(_children(domain, index), key=lambda k: (-k[0], k[1]))
    for position, (held, _, kid) in enumerate(kids):
        if need <= 0:
            return
        if held >= need:
            # The last child: the best fit among those left that hold the rest.
            _, _, last = min(
                (k for k in kids[position:] if k[0] >= need), key=lambda k: (k[0], k[1])
            )
            _take(last, need, index, taken)
            return
        _take(kid, held, index, taken)
        need -= held


def _take(kid: object, count: int, index: CapacityIndex, taken: list[tuple[str, int]]) -> None:
    if isinstance(kid, Domain):
        _descend(kid, count, index, taken)
    else:
        assert isinstance(kid, str)
        taken.append((kid, count))


def _kueue_best_fit_in(
    view: PoolView, index: CapacityIndex, request: PlacementRequest
) -> list[tuple[str, int]] | None:
    workers = request.workers
    topology = view.topology
    required = tree_level(topology, request.required_level)
    single = [n for n in index.fits if index.fits[n] >= workers]
    if single:
        best = min(single, key=lambda n: (index.fits[n], n))
        return [(best, workers)]
    if required is not None and required >= topology.depth:
        return None
    lowest = -1 if required is None else required
    for level in range(topology.depth - 1, lowest - 1, -1):
        domains = topology.by_level[level].values() if level >= 0 else [topology.root]
        fitting = [d for d in domains if index.cap.get(d, 0) >= workers]
        if fitting:
            start = min(fitting, key=lambda d: (index.cap.get(d, 0), d.sort_key()))
            taken: list[tuple[str, int]] = []
            _descend(start, workers, index, taken)
            return taken
    return None


def _across_pools(name: str, in_pool: InPool) -> Policy:
    def policy(snapshot: FleetSnapshot, request: PlacementRequest) -> Placement | NoFit:
        choice = select_pools(snapshot, request)
        if choice.refusal is not None:
            return NoFit(choice.refusal, permanent=choice.permanent)
        demand = request.demand()
        refusals: list[tuple[str, str, bool]] = []
        for view in choice.views:
            index = view.index(demand)
            held = index.cap.get(view.topology.root, 0)
            taken = in_pool(view, index, request) if held >= request.workers else None
            if taken is not None:
                return _placement(view, taken, request, name)
            static = static_refusal(view, request)
            if static is not None:
                refusals.append((view.name, static.reason, static.permanent))
                continue
            refusals.append(
                (
                    view.name,
                    f"{name} found no room in pool {view.name} (room for "
                    f"{plural(held, 'worker')} in all), {needs(request)}",
                    False,
                )
            )
        reason = "; ".join(reason for _, reason, _ in refusals) or "no pool"
        return NoFit(reason, permanent=bool(refusals) and all(p for _, _, p in refusals))

    policy.__name__ = name.replace("-", "_")
    return policy


def _placement(
    view: PoolView, taken: list[tuple[str, int]], request: PlacementRequest, name: str
) -> Placement:
    hosts = [node for node, _ in taken]
    span = span_of(view.topology, hosts)
    return Placement(
        pool=view.name,
        assignments=[node for node, count in taken for _ in range(count)],
        span_level=span.level,
        span_domain=span.domain,
        domains_per_level=span.counts,
        explanation=(
            f"{name}: {plural(request.workers, 'worker')} {TIMES} "
            f"{plural(request.devices_per_worker, 'device')} in pool {view.name} on "
            f"{plural(len(hosts), 'host')}."
        ),
    )


first_fit = _across_pools("first-fit", _first_fit_in)
spread = _across_pools("spread", _spread_in)
kueue_best_fit = _across_pools("kueue-bestfit", _kueue_best_fit_in)

POLICIES: dict[str, Policy] = {
    "corral": place,
    "first-fit": first_fit,
    "spread": spread,
    "kueue-bestfit": kueue_best_fit,
}
"""Every placement policy by the name `corral simulate --policy` and the benchmarks use."""
