"""How contended each pool is: the demand on it of the jobs present, per device it has.

A job that several pools accept should take the pool the other jobs depend on least — the
"least constraining value" of constraint solving. Taking the tightest host of any pool instead
fills small pools with jobs that could have run anywhere, and the jobs that can run only there
wait (docs/simulate.md measures it on the Alibaba openb fleet).

The demand is read from the jobs present (waiting, and holding capacity), a sample of the
workload as it is now: each job's devices are split evenly over the pools it accepts (its
pool-level hard constraints: `candidate_pools`), since nothing says which of them it will use.
A pool's contention is the sum of those shares divided by the pool's devices: how many devices'
worth of the jobs present may want each device of it. A job that only one pool accepts puts its
whole demand on that pool; one that accepts seven puts a seventh on each.

Exact: shares are integers scaled by the least common multiple of 1..n (n pools), so equal
contentions compare equal and the choice never depends on floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from math import lcm

from corral.fleet.snapshot import FleetSnapshot
from corral.placement.filters import candidate_pools
from corral.placement.request import PlacementRequest


@dataclass(frozen=True)
class Contention:
    """Per pool, the demand of the jobs present on it per device of the pool."""

    by_pool: tuple[tuple[str, Fraction], ...]
    """(pool, demand per device), pools by name."""
    jobs: int
    """How many jobs the demand was read from."""
    _lookup: dict[str, Fraction] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        self._lookup.update(self.by_pool)

    def of(self, pool: str) -> Fraction:
        """The pool's contention (0 for a pool no job present accepts or that has no devices)."""
        return self._lookup.get(pool, Fraction(0))


def contention(snapshot: FleetSnapshot, requests: Iterable[PlacementRequest]) -> Contention:
    """The contention of every pool of the snapshot, from the requests of the jobs present."""
    names = sorted(snapshot.pools)
    scale = lcm(*range(1, len(names) + 1)) if names else 1
    claim = dict.fromkeys(names, 0)
    jobs = 0
    for request in requests:
        accepted = candidate_pools(snapshot, request)
        if not accepted:
            continue
        jobs += 1
        share = request.devices * (scale // len(accepted))
        for name in accepted:
            claim[name] += share
    by_pool = tuple(
        (name, Fraction(claim[name], scale * snapshot.pools[name].total_devices))
        for name in names
        if snapshot.pools[name].total_devices > 0
    )
    return Contention(by_pool, jobs)


def figure(value: Fraction) -> str:
    """A contention for people: `0.42`."""
    return f"{float(value):.3g}"
