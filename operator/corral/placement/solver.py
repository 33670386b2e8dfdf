"""`place(snapshot, request)`: the whole gang on nodes of one pool, or the reason it cannot be."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.api.trainingjob import TOPOLOGY_RANK
from corral.fleet.demand import WorkerDemand
from corral.fleet.pool import PoolView
from corral.fleet.resources import CPU, MEMORY
from corral.fleet.snapshot import FleetSnapshot
from corral.placement.explain import (
    TIMES,
    binding_resources,
    cpu_text,
    hosts_with_room,
    largest,
    memory_text,
    needs,
    plural,
    resource_binding,
    room_phrase,
    short,
    unlabelled_note,
    unusable_summary,
    workers_by_resource,
)
from corral.placement.filters import select_pools
from corral.placement.request import PlacementRequest
from corral.placement.result import NoFit, Placement
from corral.placement.scarcity import figure
from corral.placement.search import Choice, PoolPlan, PoolSearch, tree_level
from corral.placement.span import rank_order, span_of

HOST_RANK = TOPOLOGY_RANK[HOSTNAME_LEVEL]


@dataclass
class Refusal:
    reason: str
    permanent: bool


def place(snapshot: FleetSnapshot, request: PlacementRequest) -> Placement | NoFit:
    """All workers on nodes of one pool, by the objective in docs/placement.md, or NoFit.

    Pure: reads the snapshot, changes nothing. The same snapshot and request give the same
    answer.
    """
    choice = select_pools(snapshot, request)
    if choice.refusal is not None:
        return NoFit(choice.refusal, permanent=choice.permanent)
    demand = request.demand()
    fitting: list[tuple[tuple[object, ...], Placement]] = []
    refusals: list[tuple[str, Refusal]] = []
    for view in choice.views:
        outcome = _place_in_pool(view, request, demand)
        if isinstance(outcome, Refusal):
            refusals.append((view.name, outcome))
            continue
        fitting.append(outcome)
    if fitting:
        fitting.sort(key=lambda kp: kp[0])
        placement = fitting[0][1]
        notes = list(choice.notes)
        if len(fitting) > 1:
            notes.append(_why_pool(fitting, request))
        if refusals:
            notes.append(
                "other pools: "
                + "; ".join(f"{name}: {refusal.reason}" for name, refusal in refusals)
            )
        if notes:
            explanation = placement.explanation.rstrip(".") + "; " + "; ".join(notes) + "."
            placement = replace(placement, explanation=explanation)
        return placement
    if len(refusals) == 1:
        reason = refusals[0][1].reason
    else:
        reason = "; ".join(f"pool {name}: {refusal.reason}" for name, refusal in refusals)
    if choice.notes:
        reason += " (" + "; ".join(choice.notes) + ")"
    return NoFit(reason, permanent=all(refusal.permanent for _, refusal in refusals))


def _place_in_pool(
    view: PoolView, request: PlacementRequest, demand: WorkerDemand
) -> tuple[tuple[object, ...], Placement] | Refusal:
    if view.advised:
        # Nodes with an advisory notice (a rebalance recommendation, planned maintenance) are
        # left out first; only a gang that fits nowhere else may use them.
        clear = replace(demand, steer_clear=True)
        search = PoolSearch(view, request, clear)
        plan = search.run()
        if plan is not None:
            key, placement = _describe(plan, search, request)
            note = (
                f"{plural(len(view.advised), 'node')} with an advisory notice avoided "
                "(a rebalance recommendation or planned maintenance)"
            )
            explanation = placement.explanation.rstrip(".") + "; " + note + "."
            return key, replace(placement, explanation=explanation)
    search = PoolSearch(view, request, demand)
    plan = search.run()
    if plan is None:
        return static_refusal(view, request) or _refusal_now(view, request, demand, search)
    return _describe(plan, search, request)


def place_within(
    snapshot: FleetSnapshot,
    request: PlacementRequest,
    pool: str,
    level: str | None,
    anchor: str,
) -> Placement | NoFit:
    """`request.workers` workers inside one domain of one pool: the domain of `level` that holds
    node `anchor` (the whole pool when `level` is None). What replaces part of a running gang
    inside its span domain, so the gang keeps the topology it was placed for; the best placement
    by the same objective as `place`, nodes with an advisory notice left out first.

    Pure, like `place`. Not a fit now: NoFit (never permanent: the caller re-places the whole
    gang instead)."""
    view = snapshot.pools.get(pool)
    if view is None or anchor not in view.nodes:
        return NoFit(f"pool {pool} no longer holds node {anchor}")
    topology = view.topology
    depth = topology.depth
    if level is not None and level != HOSTNAME_LEVEL and level not in topology.levels:
        return NoFit(f"{level} is no longer a topology level of pool {pool}")
    at = tree_level(topology, level) if level is not None else -1
    assert at is not None
    domain = topology.root if at < 0 else None  # None: the span is one host
    if 0 <= at < depth:
        domain = topology.domain_of(anchor, at)
        if domain is None:
            return NoFit(f"node {anchor} has no {level} label")
    where = (
        f"host {anchor}"
        if domain is None
        else ("the pool" if domain is topology.root else f"{short(level or '')} {domain.name}")
    )
    demand = request.demand()
    held = 0
    for tried in (replace(demand, steer_clear=True), demand) if view.advised else (demand,):
        search = PoolSearch(view, request, tried)
        if domain is None:  # the gang's span is one host
            held = search.index.fits.get(anchor, 0)
            if held >= request.workers:
                plan = search.plan(Choice((), [anchor], None), depth)
                return _describe(plan, search, request)[1]
            continue
        held = max(held, search.index.cap.get(domain, 0))
        if search.index.cap.get(domain, 0) >= request.workers:
            plan = search.plan(search.choose(domain.level, [domain]), domain.level)
            return _describe(plan, search, request)[1]
    return NoFit(
        f"{where} of pool {pool} has room for {plural(held, 'worker')} of the "
        f"{request.workers} to place, {needs(request)}"
    )


# -- a placement, in words ------------------------------------------------------------------


def _breadth(level: str | None, levels: tuple[str, ...]) -> float:
    """How narrow a span level is, comparable across pools (bigger is narrower)."""
    if level is None:
        return -1.0
    if level in TOPOLOGY_RANK:
        return float(TOPOLOGY_RANK[level])
    return float(HOST_RANK - (len(levels) - 1 - levels.index(level)))


@dataclass
class _Outcome:
    """A pool's placement in figures, before it is put in words."""

    order: list[str]
    """The hosts used, in rank order."""
    counts: dict[str, int]
    span_level: str | None
    span_domain: str | None
    span_room: int
    """Free devices of the span domain (of the host, for one host) before placing."""
    price: float
    """Per hour, at each host's capacity-type price."""


def _outcome(plan: PoolPlan, search: PoolSearch, request: PlacementRequest) -> _Outcome:
    view = plan.view
    order = rank_order(view.topology, plan.workers_on)
    span = span_of(view.topology, order)
    counts, span_level, span_domain = span.counts, span.level, span.domain
    index = search.index
    domain = plan.choice.domain
    return _Outcome(
        order=order,
        counts=counts,
        span_level=span_level,
        span_domain=span_domain,
        span_room=index.room.get(domain, 0) if domain is not None else index.free[order[0]],
        price=sum(
            view.price_per_device_hour(node) * plan.workers_on[node] * request.devices_per_worker
            for node in order
        ),
    )


def _describe(
    plan: PoolPlan, search: PoolSearch, request: PlacementRequest
) -> tuple[tuple[object, ...], Placement]:
    """The placement, with its explanation, and its key for the comparison between pools."""
    outcome = _outcome(plan, search, request)
    view = plan.view
    placement = Placement(
        pool=view.name,
        assignments=[node for node in outcome.order for _ in range(plan.workers_on[node])],
        span_level=outcome.span_level,
        span_domain=outcome.span_domain,
        domains_per_level=outcome.counts,
        explanation=_explanation(plan, search, request, outcome),
    )
    carbon = view.spec.carbon
    grams = 0.0
    if carbon is not None:
        grams = (
            carbon.at_hour(request.carbon_hour)
            if request.carbon_hour is not None
            else carbon.grams_per_kwh
        )
    prefer = request.capacity_prefer
    contended = request.contention.of(view.name) if request.contention is not None else 0
    key = (
        -_breadth(outcome.span_level, view.topology.reported_levels),
        len(outcome.order),
        contended,
        outcome.span_room,
        sum(1 for n in outcome.order if prefer is not None and view.capacity_types[n] != prefer),
        round(outcome.price * 1000),
        grams,
        view.name,
    )
    return key, placement


_DECIDED_BY = (
    "its span is narrower",
    "it uses fewer hosts",
    "it is the least contended",
    "it fits tightest",
    "more of its hosts are of the preferred capacity type",
    "it is the cheapest",
    "it has the least carbon",
    "it comes first by name (the placements are otherwise equal)",
)
"""Why a pool won, by the term of the key between pools that decided."""


def _why_pool(
    fitting: list[tuple[tuple[object, ...], Placement]], request: PlacementRequest
) -> str:
    """Which pools were compared and the term of the objective that made the first one win."""
    (best_key, best), (next_key, _) = fitting[0], fitting[1]
    term = next(i for i, (a, b) in enumerate(zip(best_key, next_key, strict=True)) if a != b)
    why = _DECIDED_BY[term]
    contention = request.contention
    if term == 2 and contention is not None:
        figures = ", ".join(
            f"{placement.pool} {figure(contention.of(placement.pool))}" for _, placement in fitting
        )
        why += (
            f": demand per device from the {plural(contention.jobs, 'job')} present, each "
            f"job's devices split evenly over the pools it accepts: {figures}"
        )
    elif term == 3:
        why += f": {best_key[3]} free devices where the gang goes, against {next_key[3]}"
    others = ", ".join(placement.pool for _, placement in fitting[1:])
    return f"pool {best.pool} chosen over {others}, which also fit now: {why}"


def _explanation(
    plan: PoolPlan, search: PoolSearch, request: PlacementRequest, outcome: _Outcome
) -> str:
    view = plan.view
    topology = view.topology
    index = search.index
    levels = topology.reported_levels
    span_level = outcome.span_level
    parts = [
        f"{plural(request.workers, 'worker')} {TIMES} {plural(request.devices_per_worker, 'device')} "
        f"in pool {view.name}"
    ]
    if span_level is None:
        parts.append("across the pool: no single domain of any level holds the gang")
    elif span_level == HOSTNAME_LEVEL:
        parts.append(f"on one host, {outcome.span_domain}")
    else:
        below = [
            plural(outcome.counts[key], short(key))
            for key in levels[levels.index(span_level) + 1 :]
        ]
        parts.append(
            f"within {short(span_level)} {outcome.span_domain} ({span_level}), "
            f"using {', '.join(below)}"
        )
    span_index = levels.index(span_level) if span_level is not None else -1
    for kind, wanted in (
        ("required", request.required_level),
        ("preferred", request.preferred_level),
    ):
        if wanted is None:
            continue
        if wanted not in levels:
            parts.append(f"{kind} {wanted} is not a level of pool {view.name}: ignored")
        elif span_level is not None and span_index >= levels.index(wanted):
            parts.append(f"{kind} {short(wanted)}: met")
        else:
            wanted_level = search.level_index(wanted)
            assert wanted_level is not None
            domains = (
                list(topology.by_level[wanted_level].values())
                if wanted_level < topology.depth
                else []
            )
            biggest = largest(index, domains)
            held = (
                index.cap.get(biggest, 0)
                if biggest is not None
                else max(index.fits.values(), default=0)
            )
            parts.append(
                f"{kind} {short(wanted)} not met: the largest {short(wanted)} holds "
                f"{held} of {request.workers} workers"
            )
    searched = (
        short(topology.levels[plan.search_level])
        if 0 <= plan.search_level < topology.depth
        else ("host" if plan.search_level == topology.depth else "pool")
    )
    parts.append(
        f"best fit: the chosen {searched} had {outcome.span_room} free devices for the "
        f"{request.devices} the gang takes"
    )
    types = Counter(view.capacity_types[node] for node in outcome.order)
    capacity = "hosts by capacity: " + ", ".join(
        f"{count} {kind}" for kind, count in sorted(types.items())
    )
    if request.capacity_prefer is not None:
        capacity += f" (prefers {request.capacity_prefer})"
    if outcome.price:
        capacity += f"; {outcome.price:.2f} {view.spec.pricing.currency}/h"
    parts.append(capacity)
    if search.required is not None and search.required < topology.depth:
        note = unlabelled_note(view, up_to=search.required)
        if note is not None:
            parts.append(note)
    for level, key in enumerate(topology.levels):
        lacking = sum(1 for node in outcome.order if topology.domain_of(node, level) is None)
        if lacking:
            parts.append(
                f"{plural(lacking, 'chosen host')} without a {key} label (counted at that "
                "level as their first labelled domain below, or as themselves)"
            )
    return "; ".join(parts) + "."


# -- no fit, in words -----------------------------------------------------------------------


def static_refusal(view: PoolView, request: PlacementRequest) -> Refusal | None:
    """Reasons the gang can never fit the pool as it is, even with every pod gone.

    It reads the pool's nodes, never their usage, so it is memoised on the pool view until a node
    joins, leaves or changes: a pass asks it again for every waiting job that does not fit now."""
    key = ("static-refusal", request.demand(), request.workers, request.required_level)
    answer = view.static(key, lambda: _static_refusal(view, request))
    assert answer is None or isinstance(answer, Refusal)
    return answer


def _static_refusal(view: PoolView, request: PlacementRequest) -> Refusal | None:
    if not view.nodes:
        return Refusal(f"no node matches the nodeSelector of pool {view.name} (yet)", False)
    d = request.devices_per_worker
    resource = view.resource_name
    most = max(node.allocatable.get(resource, 0) for node in view.nodes.values())
    if d > most:
        return Refusal(
            f"acceleratorsPerWorker={d}: no node of pool {view.name} has that many "
            f"{resource} (the most is {most})",
            True,
        )
    for amount, key, shown in (
        (request.cpu_millis_per_worker, CPU, cpu_text),
        (request.memory_bytes_per_worker, MEMORY, memory_text),
    ):
        if amount:
            most = max(node.allocatable.get(key, 0) for node in view.nodes.values())
            if amount > most:
                return Refusal(
                    f"the worker template requests {shown(amount)} {key} per worker; no node of "
                    f"pool {view.name} has that much allocatable (the most is {shown(most)})",
                    True,
                )
    demand = request.demand()
    empty = {
        name: demand.workers_held(node.allocatable, {}, node.allocatable.get(resource, 0))
        for name, node in view.nodes.items()
    }
    total = sum(empty.values())
    if total < request.workers:
        totals: Counter[str] = Counter()
        for node in view.nodes.values():
            totals.update(
                workers_by_resource(request, node.allocatable, node.allocatable.get(resource, 0))
            )
        binding = binding_resources(request, totals)
        return Refusal(
            f"{needs(request)}; pool {view.name} has {view.total_devices} devices in all"
            + (f"{binding} (even with every pod gone)" if binding else ""),
            True,
        )
    required = tree_level(view.topology, request.required_level)
    if required is not None and required < view.topology.depth:
        held_by: Counter[tuple[str | None, ...]] = Counter()
        devices_by: Counter[tuple[str | None, ...]] = Counter()
        hosts_by: Counter[tuple[str | None, ...]] = Counter()
        for name in view.nodes:
            domain = view.topology.domain_of(name, required)
            if domain is not None:
                held_by[domain.path] += empty[name]
                devices_by[domain.path] += view.nodes[name].allocatable.get(resource, 0)
                hosts_by[domain.path] += 1
        best = min(held_by, key=lambda p: (-held_by[p], [v or "" for v in p]), default=None)
        if best is None or held_by[best] < request.workers:
            level = view.topology.levels[required]
            if best is None:
                what = f"no node of pool {view.name} has a {level} label"
            else:
                what = (
                    f"the largest {short(level)} of pool {view.name} has "
                    f"{devices_by[best]} devices in {plural(hosts_by[best], 'host')} even when empty"
                )
            note = unlabelled_note(view, up_to=required)
            return Refusal(
                f"topology.required={level}: {what}, {needs(request)}"
                + (f" ({note})" if note else ""),
                True,
            )
    if required == view.topology.depth and max(empty.values()) < request.workers:
        return Refusal(
            f"topology.required={HOSTNAME_LEVEL}: no node of pool {view.name} holds "
            f"{plural(request.workers, 'worker')} even when empty, {needs(request)}",
            True,
        )
    return None


def _refusal_now(
    view: PoolView, request: PlacementRequest, demand: WorkerDemand, search: PoolSearch
) -> Refusal:
    index = search.index
    topology = view.topology
    root = topology.root
    if index.cap.get(root, 0) < request.workers:
        hosts = sum(1 for free in index.free.values() if free > 0)
        phrase = room_phrase(index.room.get(root, 0), hosts, index.cap.get(root, 0), request)
        return Refusal(
            f"pool {view.name} has {phrase}, {needs(request)}"
            f"{resource_binding(view, index, request)}{unusable_summary(view, demand)}",
            False,
        )
    required = search.required
    assert required is not None, "without a required level the pool as a whole holds the gang"
    level = request.required_level
    if required == topology.depth:
        best = max(index.fits.values(), default=0)
        tightest = max(index.free.values(), default=0)
        reason = (
            f"topology.required={level}: the largest host has {tightest} free devices "
            f"(room for {plural(best, 'worker')}), {needs(request)}"
        )
    else:
        domains = list(topology.by_level[required].values())
        biggest = largest(index, domains)
        if biggest is None or index.cap.get(biggest, 0) == 0:
            reason = f"topology.required={level}: no {short(level)} has room, {needs(request)}"
        else:
            phrase = room_phrase(
                index.room.get(biggest, 0),
                hosts_with_room(view, index, biggest),
                index.cap.get(biggest, 0),
                request,
            )
            reason = (
                f"topology.required={level}: the largest {short(level)} has {phrase}, "
                f"{needs(request)}"
            )
        note = unlabelled_note(view, up_to=required)
        if note is not None:
            reason += f" ({note})"
    return Refusal(reason, False)
