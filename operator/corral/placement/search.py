"""The gang search inside one pool.

1. Span: the narrowest level at which one domain can hold the gang (a single host first, then
   each broader level, never broader than `topology.required`; the whole pool last).
2. Among the domains of that level that can, the best by the objective: fewest domains at each
   level below (exact, by the frontier programme of `corral.placement.frontier`), then best fit
   (least free devices: the span domain first, then the used domains level by level, then the
   span domain's ancestors), then capacity preference and price, then names. Cheap exact lower
   bounds (per level, the fewest domains that could hold the gang ignoring the levels above)
   let most candidates be skipped, and every result is memoised per domain until a node under
   it changes.

Counting follows `corral.fleet.topology`: a node without some level's label counts, at that
level, as its first labelled domain below (or as itself).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.fleet.demand import WorkerDemand
from corral.fleet.pool import CapacityIndex, PoolView
from corral.fleet.topology import Domain, Topology
from corral.placement.frontier import (
    Frontier,
    cheapest_cover,
    merge,
    node_frontier,
    nodes_of,
    shifted,
)
from corral.placement.request import PlacementRequest

PRICE_SCALE = 1000
"""Prices are compared in thousandths of the currency unit per device-hour."""


def tree_level(topology: Topology, level: str | None) -> int | None:
    """Tree level of a label key (the depth for the host level); None if not given."""
    if level is None:
        return None
    if level == HOSTNAME_LEVEL:
        return topology.depth
    return topology.levels.index(level)


def fewest_by_prefix(prefix: list[int], workers: int) -> int | None:
    """Least number of parts holding `workers`, from the running sums of their capacities
    (largest first)."""
    if workers <= 0:
        return 0
    count = bisect_left(prefix, workers) + 1
    return count if count <= len(prefix) else None


def fewest(caps: list[int], workers: int) -> int | None:
    """Least number of parts (largest first) whose capacities reach `workers`."""
    total = 0
    for count, cap in enumerate(sorted(caps, reverse=True), start=1):
        total += cap
        if total >= workers:
            return count
    return None


@dataclass
class Choice:
    """The best way found to place the gang in one domain (or on one node)."""

    key: tuple[object, ...]
    nodes: list[str]
    domain: Domain | None
    """The candidate domain searched (None when a single node holds the gang)."""
    cost: int = 0
    """The frontier cost of the placement inside `domain`."""


@dataclass
class PoolPlan:
    view: PoolView
    workers_on: dict[str, int]
    choice: Choice
    search_level: int
    """Tree level of the candidate (depth = a single node, -1 = the whole pool)."""


class _Weights:
    """Digit weights of the cost integer for candidates at tree level `level`.

    Digits, most significant first: domains used at each level below `level` and hosts; free
    devices of the used domains at each of those levels and of the used hosts; hosts not of the
    preferred capacity type (when one is preferred); summed price per device-hour.
    """

    def __init__(self, level: int, depth: int, base: int, prefer: bool):
        self.level = level
        self.base = base
        counted = depth - level  # levels level+1 .. depth-1, then the hosts
        self.counted = counted
        self.digits = 2 * counted + (1 if prefer else 0) + 1
        top = self.digits - 1
        self.count = [0] * (depth + 1)
        self.fit = [0] * (depth + 1)
        for tree_level in range(level + 1, depth + 1):
            offset = tree_level - level - 1
            self.count[tree_level] = base ** (top - offset)
            self.fit[tree_level] = base ** (top - counted - offset)
        self.prefer = base ** (top - 2 * counted) if prefer else 0

    @property
    def ceiling(self) -> int:
        """More than any cost."""
        return int(self.base**self.digits)

    def decode(self, cost: int) -> list[int]:
        digits = [0] * self.digits
        for index in range(self.digits - 1, -1, -1):
            cost, digits[index] = divmod(cost, self.base)
        return digits

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Summed (count, fit) weights of levels first..last (one unit at each)."""
        return sum(self.count[first : last + 1]), sum(self.fit[first : last + 1])


def _unlabelled_above(domain: Domain) -> int:
    """The level of the broadest of the unlabelled domains directly above `domain` (its own
    level if its parent is labelled): a unit counts at every level from there down."""
    first = domain.level
    parent = domain.parent
    while parent is not None and not parent.labelled:
        first = parent.level
        parent = parent.parent
    return first


class PoolSearch:
    def __init__(self, view: PoolView, request: PlacementRequest, demand: WorkerDemand):
        self.view = view
        self.request = request
        self.index: CapacityIndex = view.index(demand)
        self.topology = view.topology
        self.depth = self.topology.depth
        self.workers = request.workers
        self.required = tree_level(self.topology, request.required_level)
        pricing = view.spec.pricing
        highest = max(
            pricing.on_demand_per_device_hour,
            pricing.spot_per_device_hour or 0.0,
            pricing.reserved_per_device_hour or 0.0,
        )
        nodes = len(view.nodes)
        # Every digit's total stays below the base: counts below the number of nodes, free
        # devices below the pool's devices, prices below nodes x the highest price.
        self.base = max(nodes, view.total_devices, nodes * round(highest * PRICE_SCALE)) + 1
        self._weights: dict[int, _Weights] = {}
        self._memo_key = (self.workers, self.base, request.capacity_prefer)

    def level_index(self, level: str | None) -> int | None:
        return tree_level(self.topology, level)

    def weights(self, level: int) -> _Weights:
        weights = self._weights.get(level)
        if weights is None:
            weights = _Weights(
                level, self.depth, self.base, self.request.capacity_prefer is not None
            )
            self._weights[level] = weights
        return weights

    # -- costs ------------------------------------------------------------------------------

    def preference(self, node: str) -> tuple[int, int]:
        """(not of the preferred capacity type, price in thousandths per device-hour)."""
        prefer = self.request.capacity_prefer
        other = int(prefer is not None and self.view.capacity_types[node] != prefer)
        return other, self.view.price_milli[node]

    def node_cost(self, node: str, weights: _Weights) -> int:
        """Using a node: one host (and one domain at each unlabelled level above it)."""
        free = self.index.free[node]
        other, price = self.preference(node)
        count, fit = weights.span(_unlabelled_above_node(self.topology, node), self.depth)
        return count + fit * free + weights.prefer * other + price

    def activation(self, domain: Domain, weights: _Weights) -> int:
        """Using a labelled domain at all: one domain at its level (and at each unlabelled
        level above it), with its free devices; an unlabelled one costs nothing itself."""
        if not domain.labelled:
            return 0
        count, fit = weights.span(_unlabelled_above(domain), domain.level)
        return count + fit * self.index.room.get(domain, 0)

    def ancestry(self, domain: Domain) -> tuple[int, ...]:
        """Free devices of a domain and its ancestors, narrowest first (a best-fit tie-break)."""
        room = self.index.room
        return tuple(room.get(d, 0) for d in domain.ancestors())

    def units(self, domain: Domain) -> list[int]:
        """The workers each unit directly in a domain holds: its nodes at the deepest level,
        else its labelled children, and what unlabelled children contain, as units."""
        workers = self.workers
        if domain.nodes:
            fits = self.index.fits
            return [min(fits.get(n, 0), workers) for n in domain.nodes if fits.get(n, 0)]
        out: list[int] = []
        cap = self.index.cap
        for child in domain.children.values():
            held = cap.get(child, 0)
            if not held:
                continue
            if child.labelled:
                out.append(held)
            else:
                out.extend(self.units(child))
        return out

    # -- the search -------------------------------------------------------------------------

    def run(self) -> PoolPlan | None:
        """The best placement in this pool, or None if the gang does not fit now."""
        workers = self.workers
        cap = self.index.cap
        if cap.get(self.topology.root, 0) < workers:
            return None
        choice = self.on_one_node()
        if choice is not None:
            return self.plan(choice, self.depth)
        required = self.required
        lowest = 0 if required is None else required
        for level in range(self.depth - 1, lowest - 1, -1):
            candidates = [
                d
                for d in self.topology.by_level[level].values()
                if cap.get(d, 0) >= workers and self.within_required(d)
            ]
            if candidates:
                return self.plan(self.choose(level, candidates), level)
        if required is None:
            return self.plan(self.choose(-1, [self.topology.root]), -1)
        return None

    def within_required(self, domain: Domain) -> bool:
        """Whether a domain lies inside one labelled domain of the required level."""
        required = self.required
        if required is None:
            return True
        while domain.level > required:
            assert domain.parent is not None
            domain = domain.parent
        return domain.labelled

    def on_one_node(self) -> Choice | None:
        workers = self.workers
        if self.index.most_fits < workers:
            return None
        required = self.required
        topology = self.topology
        fits = self.index.fits
        free = self.index.free
        candidates = [
            n
            for n, k in fits.items()
            if k >= workers
            and (
                required is None
                or required == self.depth
                or topology.domain_of(n, required) is not None
            )
        ]
        if not candidates:
            return None
        tightest = min(free[n] for n in candidates)
        ancestry: dict[Domain, tuple[int, ...]] = {}
        keys = []
        for node in candidates:
            if free[node] == tightest:
                parent = topology.parent_of[node]
                around = ancestry.get(parent)
                if around is None:
                    around = ancestry[parent] = self.ancestry(parent)
                other, price = self.preference(node)
                keys.append(((tightest, around, other, price, node), node))
        key, node = min(keys)
        return Choice(key, [node], None)

    def choose(self, level: int, candidates: list[Domain]) -> Choice:
        room = self.index.room
        weights = self.weights(level)
        least_count = weights.count[self.depth]
        ordered = sorted(
            ((self.lower_bound(d, level), room.get(d, 0), d.sort_key(), d) for d in candidates),
            key=lambda item: item[:3],
        )
        best: Choice | None = None
        for bound, free, _, domain in ordered:
            limit = weights.ceiling
            if best is not None and best.domain is not None:
                if (bound, free) > best.key[:2]:
                    break
                # Only a placement as good on domain counts can still win (strictly better
                # when this domain is roomier: it loses the best-fit comparison).
                counts_floor = best.cost - best.cost % least_count
                limit = counts_floor + (least_count if free <= room.get(best.domain, 0) else 0)
            choice = self.evaluate(domain, level, limit)
            if choice is not None and (best is None or choice.key < best.key):
                best = choice
        assert best is not None, "a domain whose capacity holds the gang has a placement"
        return best

    def lower_bound(self, domain: Domain, level: int) -> tuple[int, ...]:
        """Per level below `domain` (hosts last), the fewest units that could hold the gang
        ignoring the levels above: a lower bound of the count in any placement inside it."""
        return tuple(
            fewest_by_prefix(prefix, self.workers) or len(prefix) + 1
            for prefix in self.level_room(domain, level)
        )

    def level_room(self, domain: Domain, level: int) -> list[list[int]]:
        """Per level below `domain` (hosts last), the running sums of the workers its units
        hold, largest first: `fewest_by_prefix` reads the fewest units holding any number.
        Memoised per domain until a node under it changes."""
        memo = self.index.memo(("room", level, self.workers))
        stamp = self.index.stamp.get(domain, 0)
        known = memo.get(domain)
        if known is not None and known[0] == stamp:
            prefixes: list[list[int]] = known[1]
            return prefixes
        per_level: list[list[int]] = [[] for _ in range(self.depth - level)]
        cap = self.index.cap
        current = [domain]
        while current:
            below: list[Domain] = []
            for parent in current:
                per_level[parent.level - level].extend(self.units(parent))
                below.extend(c for c in parent.children.values() if cap.get(c, 0))
            current = below
        prefixes = []
        for caps in per_level:
            total = 0
            prefix = []
            for held in sorted(caps, reverse=True):
                total += held
                prefix.append(total)
                if total >= self.workers:
                    break
            prefixes.append(prefix)
        memo[domain] = (stamp, prefixes)
        return prefixes

    def floor(self, domain: Domain, level: int, weights: _Weights) -> Callable[[int], int]:
        """A lower bound of the cost of holding `need` workers below the first level under
        `domain` (each level needs at least its fewest units), for `cheapest_cover`."""
        prefixes = self.level_room(domain, level)[1:]
        counts = weights.count[level + 2 :]
        cache: dict[int, int] = {}
        impossible = weights.ceiling

        def floor(need: int) -> int:
            known = cache.get(need)
            if known is not None:
                return known
            total = 0
            for prefix, weight in zip(prefixes, counts, strict=True):
                units = fewest_by_prefix(prefix, need)
                if units is None:
                    total = impossible
                    break
                total += units * weight
            cache[need] = total
            return total

        return floor

    def frontier(self, domain: Domain, weights: _Weights, limit: int) -> Frontier:
        """The domain's frontier, leaving out entries that cost `limit` or more.

        Memoised per domain until a node under it changes (a frontier computed under a higher
        limit serves a lower one: merges ignore entries above their limit)."""
        memo = self.index.memo(("frontier", weights.level, *self._memo_key))
        stamp = self.index.stamp.get(domain, 0)
        known = memo.get(domain)
        if known is not None and known[0] == stamp:
            cached_limit, cached = known[1]
            if cached_limit >= limit:
                assert isinstance(cached, Frontier)
                return cached
        frontier = self._frontier(domain, weights, limit)
        memo[domain] = (stamp, (limit, frontier))
        return frontier

    def _frontier(self, domain: Domain, weights: _Weights, limit: int) -> Frontier:
        activation = self.activation(domain, weights)
        parts = self.parts(domain, weights, limit - activation)
        if not parts:
            return Frontier([0], [0], [None], single=domain.labelled)
        combined = parts[0]
        for part in parts[1:]:
            combined = merge(combined, part, self.workers, limit - activation)
        return shifted(combined, activation, single=domain.labelled)

    def parts(
        self, domain: Domain, weights: _Weights, limit: int, single_limit: int | None = None
    ) -> list[Frontier]:
        """The frontiers of what lies directly in a domain: its nodes (one group) or its
        unlabelled children first, then its labelled children by name. Entries costing `limit`
        or more (`single_limit` for labelled children) are left out, and so are empty parts."""
        single_limit = limit if single_limit is None else single_limit
        workers = self.workers
        fits = self.index.fits
        cap = self.index.cap
        parts: list[Frontier] = []
        if domain.nodes and limit > 0:
            nodes = [
                (self.node_cost(n, weights), min(fits[n], workers), n)
                for n in domain.nodes
                if fits.get(n, 0) > 0
            ]
            if nodes:
                parts.append(node_frontier(nodes, workers, limit))
        children = sorted(
            (c for c in domain.children.values() if cap.get(c, 0) > 0),
            key=lambda c: (c.labelled, c.sort_key()),
        )
        for child in children:
            child_limit = single_limit if child.labelled else limit
            if child_limit > 0:
                parts.append(self.frontier(child, weights, child_limit))
        return [part for part in parts if len(part.costs) > 1]

    def greedy(self, domain: Domain, need: int, weights: _Weights) -> int:
        """The cost of a quick placement inside a domain (the roomiest parts first, at every
        level): an upper bound that lets the exact search drop worse choices from the start."""
        fits = self.index.fits
        cap = self.index.cap
        items: list[tuple[int, tuple[str, ...], str | None, Domain | None]] = []
        for name in domain.nodes:
            k = min(fits.get(name, 0), need)
            if k:
                items.append((-k, (), name, None))
        for child in domain.children.values():
            k = min(cap.get(child, 0), need)
            if k:
                items.append((-k, child.sort_key(), None, child))
        items.sort()
        total = 0
        for negative, _, node, inner in items:
            if need <= 0:
                break
            take = min(-negative, need)
            if inner is None:
                assert node is not None
                total += self.node_cost(node, weights)
            else:
                total += self.activation(inner, weights) + self.greedy(inner, take, weights)
            need -= take
        return total

    def evaluate(self, domain: Domain, level: int, limit: int) -> Choice | None:
        """The best placement inside a domain of the span level, if one costs under `limit`.

        The search is memoised per domain until a node under it changes: a placement found is
        the best whatever the limit; "none under the limit" holds for any lower limit. The key
        is made afresh: its best-fit tie-break reads the ancestors, which change with nodes
        outside the domain."""
        memo = self.index.memo(("evaluate", level, *self._memo_key))
        stamp = self.index.stamp.get(domain, 0)
        known = memo.get(domain)
        found: tuple[int, list[str]] | None
        if known is not None and known[0] == stamp:
            cached_limit, found = known[1]
            if found is None and limit > cached_limit:
                found = self._evaluate(domain, level, limit)
                memo[domain] = (stamp, (limit, found))
        else:
            found = self._evaluate(domain, level, limit)
            memo[domain] = (stamp, (limit, found))
        if found is None or found[0] >= limit:
            return None
        cost, nodes = found
        weights = self.weights(level)
        digits = weights.decode(cost)
        counted = weights.counted
        key = (
            tuple(digits[:counted]),
            self.index.room.get(domain, 0),
            tuple(digits[counted : 2 * counted]),
            self.ancestry(domain.parent) if domain.parent is not None else (),
            tuple(digits[2 * counted :]),
            domain.sort_key(),
        )
        return Choice(key, nodes, domain, cost)

    def _evaluate(self, domain: Domain, level: int, limit: int) -> tuple[int, list[str]] | None:
        weights = self.weights(level)
        workers = self.workers
        needed = fewest(self.units(domain), workers)
        if needed is None:
            return None
        limit = min(limit, self.greedy(domain, workers, weights) + 1)
        unit = weights.count[level + 1]
        # A labelled child is one unit; every other unit used costs at least `unit`, so its
        # entries must leave room for them (nodes and unlabelled children may hold several).
        parts = self.parts(domain, weights, limit, limit - (needed - 1) * unit)
        floor = self.floor(domain, level, weights)
        if len(parts) > needed + 2:
            # A first pass over the roomiest parts only finds a near-best cost quickly; the full
            # pass then prunes against it (one above it, so that an equal cost first by name
            # still wins).
            roomiest = set(
                sorted(range(len(parts)), key=lambda i: -parts[i].covs[-1])[: needed + 2]
            )
            hint = cheapest_cover(
                [part for i, part in enumerate(parts) if i in roomiest],
                workers,
                unit,
                needed,
                limit,
                floor,
            )
            if hint is not None:
                limit = hint[0] + 1
        found = cheapest_cover(parts, workers, unit, needed, limit, floor)
        if found is None:
            return None
        cost, chosen = found
        return cost, nodes_of(chosen)

    # -- the answer -------------------------------------------------------------------------

    def plan(self, choice: Choice, level: int) -> PoolPlan:
        """Spread the workers over the chosen nodes: one each, then the rest onto the nodes with
        the least room first (the slack stays together on the roomiest node)."""
        fits = self.index.fits
        workers = self.workers
        left = workers - len(choice.nodes)
        assert left >= 0
        on: dict[str, int] = {node: 1 for node in choice.nodes}
        for node in sorted(choice.nodes, key=lambda n: (fits[n], self.position(n))):
            more = min(min(fits[node], workers) - 1, left)
            on[node] += more
            left -= more
        assert left == 0, "the chosen nodes hold the gang"
        return PoolPlan(self.view, on, choice, level)

    def position(self, node: str) -> tuple[tuple[str, ...], str]:
        return self.topology.parent_of[node].sort_key(), self.topology.host_name[node]


def _unlabelled_above_node(topology: Topology, node: str) -> int:
    """For a node: the broadest level of the unlabelled domains directly above it (the depth,
    i.e. the host level only, when its deepest domain is labelled)."""
    parent = topology.parent_of[node]
    if parent.labelled:
        return topology.depth
    return _unlabelled_above(parent)
