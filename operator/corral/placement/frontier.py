"""Cost/coverage frontiers: the exact dynamic programme behind the solver.

A frontier describes one part of the fleet (a node group or a domain): for each cost it can be
used at, the most workers it then holds. Entries are sorted by cost with strictly increasing
coverage, entry 0 is `(0, 0)` (the part unused), and coverage is capped at the gang size, so a
frontier never has more than `workers + 1` entries however big the domain is. Merging two
frontiers is a min-plus convolution; a domain's frontier is the merge of its children's,
shifted by the cost of using the domain itself.

Costs are single integers whose base-M digits are the lexicographic objective (domains used per
level, then free capacity of the used domains, then capacity preference and price): addition
never carries because every digit's total stays below M, so integer order is lexicographic order.
Using a set of parts whose coverage reaches x costs as much as placing exactly x workers on them
(every used part gets at least one worker in an optimal choice, since dropping a part only lowers
the cost), which is why "cheapest cost with coverage >= x" is the right quantity.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

Chosen = str | tuple["Chosen", "Chosen"] | None
"""The nodes an entry uses, as a tree of pairs (flattened only for the winner)."""


@dataclass(slots=True)
class Frontier:
    costs: list[int]
    covs: list[int]
    chosen: list[Chosen]
    single: bool = False
    """Each used entry counts as exactly one unit at the parent's first level (a domain)."""


def _pair(left: Chosen, right: Chosen) -> Chosen:
    if left is None:
        return right
    if right is None:
        return left
    return (left, right)


def nodes_of(chosen: Chosen) -> list[str]:
    out: list[str] = []
    stack = [chosen]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        if isinstance(item, str):
            out.append(item)
        else:
            stack.append(item[1])
            stack.append(item[0])
    return out


def node_frontier(nodes: list[tuple[int, int, str]], workers: int, limit: int) -> Frontier:
    """The frontier of a group of nodes `(cost, fits, name)`, `fits` already capped; entries
    costing `limit` or more are left out.

    Nodes holding the same number of workers are interchangeable but for cost, so any best choice
    takes the cheapest of each such class first: each class is a prefix-sum frontier, and only the
    classes (a handful: fits is at most devices per node) are merged.
    """
    classes: dict[int, list[tuple[int, str]]] = {}
    for cost, fits, name in nodes:
        classes.setdefault(fits, []).append((cost, name))
    result: Frontier | None = None
    for fits in sorted(classes, reverse=True):
        costs = [0]
        covs = [0]
        chosen: list[Chosen] = [None]
        total = 0
        for cost, name in sorted(classes[fits]):
            total += cost
            if total >= limit:
                break
            coverage = covs[-1] + fits
            costs.append(total)
            chosen.append(_pair(chosen[-1], name))
            if coverage >= workers:
                covs.append(workers)
                break
            covs.append(coverage)
        frontier = Frontier(costs, covs, chosen)
        result = frontier if result is None else merge(result, frontier, workers, limit)
    assert result is not None
    return result


def merge(left: Frontier, right: Frontier, workers: int, limit: int) -> Frontier:
    """Both parts together: the cheapest cost below `limit` for every coverage, Pareto-pruned."""
    if len(right.costs) == 1:
        return left
    if len(left.costs) == 1:
        return Frontier(right.costs, right.covs, right.chosen)
    top = max(left.covs) + max(right.covs)
    size = min(workers, top) + 1
    best = [limit] * size
    origin = [0] * size
    right_costs = right.costs
    right_covs = right.covs
    width = len(right_costs)
    for i, (cost_i, cov_i) in enumerate(zip(left.costs, left.covs, strict=True)):
        base = i * width
        for j in range(width):
            cost = cost_i + right_costs[j]
            if cost >= limit:
                break  # further entries of `right` only cost more
            cov = cov_i + right_covs[j]
            if cov >= workers:
                if cost < best[workers]:
                    best[workers] = cost
                    origin[workers] = base + j
                break
            if cost < best[cov]:
                best[cov] = cost
                origin[cov] = base + j
    costs: list[int] = []
    covs: list[int] = []
    chosen: list[Chosen] = []
    running = limit
    left_chosen = left.chosen
    right_chosen = right.chosen
    for cov in range(size - 1, -1, -1):
        cost = best[cov]
        if cost < running:
            running = cost
            i, j = divmod(origin[cov], width)
            costs.append(cost)
            covs.append(cov)
            chosen.append(_pair(left_chosen[i], right_chosen[j]))
    costs.reverse()
    covs.reverse()
    chosen.reverse()
    return Frontier(costs, covs, chosen)


def shifted(frontier: Frontier, activation: int, single: bool = True) -> Frontier:
    """The frontier of a domain from its contents': using it at all costs `activation` more."""
    costs = [0] + [cost + activation for cost in frontier.costs[1:]]
    return Frontier(costs, frontier.covs, frontier.chosen, single=single)


def cheapest_cover(
    parts: list[Frontier],
    workers: int,
    unit: int,
    units: int,
    limit: int,
    floor: Callable[[int], int] = lambda need: 0,
) -> tuple[int, Chosen] | None:
    """The cheapest way, below `limit`, to hold all `workers` in the parts using `units` units.

    `unit` is the weight of the leading cost digit (one part used at the first level below the
    candidate domain) and `units` the least number of such parts that can hold the gang (so the
    optimum uses exactly that many: fewer cannot hold it, more costs more on the leading digit).
    Partial choices that already use `units` parts, that the remaining parts cannot complete
    within that budget, or that cost as much as the best complete choice so far are dropped; the
    last part that may be added is looked up by bisection. Among equal costs the first found wins.

    `floor(need)` is a lower bound of what holding `need` more workers costs below the leading
    digit (the caller knows the domains below): a partial choice whose cost, plus its missing
    units, plus that floor reaches the best complete cost so far, is dropped.
    """

    def hopeless(cost: int, cov: int) -> bool:
        return cost + (units - cost // unit) * unit + floor(workers - cov) >= limit

    frontier: list[tuple[int, int, Chosen]] = [(0, 0, None)]
    best: tuple[int, Chosen] | None = None
    for index, part in enumerate(parts):
        later = parts[index + 1 :]
        bounded = all(p.single for p in later)
        reach = [0]
        for cap in sorted((p.covs[-1] for p in later), reverse=True):
            reach.append(reach[-1] + cap)
        candidates: dict[int, tuple[int, Chosen]] = {}
        part_costs = part.costs
        part_covs = part.covs
        width = len(part_costs)
        for cost, cov, chosen in frontier:
            if hopeless(cost, cov):
                continue
            current = candidates.get(cov)
            if current is None or cost < current[0]:
                candidates[cov] = (cost, chosen)
            used = cost // unit
            need = workers - cov
            if part.single and used + 1 == units:
                j = bisect_left(part_covs, need, 1)
                if j < width:
                    total = cost + part_costs[j]
                    if total < limit:
                        limit = total
                        best = (total, _pair(chosen, part.chosen[j]))
                continue
            # Entries of this part cost more and more: past this bound even the smallest floor
            # left (this part's largest coverage taken) cannot complete below the limit.
            ceiling = limit - floor(max(0, need - part_covs[-1]))
            for j in range(1, width):
                total = cost + part_costs[j]
                if total >= limit or total // unit > units:
                    break
                if total + (units - total // unit) * unit >= ceiling:
                    break
                if part_covs[j] >= need:
                    limit = total
                    best = (total, _pair(chosen, part.chosen[j]))
                    break
                if total // unit < units:
                    reached = cov + part_covs[j]
                    if hopeless(total, reached):
                        continue
                    current = candidates.get(reached)
                    if current is None or total < current[0]:
                        candidates[reached] = (total, _pair(chosen, part.chosen[j]))
        frontier = []
        running = limit
        for cov in sorted(candidates, reverse=True):
            cost, chosen = candidates[cov]
            if cost >= running or hopeless(cost, cov):
                continue
            if bounded and cov + reach[min(units - cost // unit, len(reach) - 1)] < workers:
                continue
            running = cost
            frontier.append((cost, cov, chosen))
        frontier.reverse()
    return best
