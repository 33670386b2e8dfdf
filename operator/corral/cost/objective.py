"""Performance per dollar: the pool with the lowest price per unit of work.

A job with `spec.placementObjective: CostPerWork` that may use several pools is placed in the
pool where it fits now at the lowest

    price per device-hour (at the capacity types of the hosts chosen) / work per device-hour

where the work rate is `spec.throughput[<the pool's accelerator type>]` when the job gives one,
else the pool's `accelerator.peakTFLOPS`. Inside the pool the solver's objective is unchanged
(topology first). The explanation lists every pool compared, its figure, and why one won.

`solve` is the hook the scheduling pass calls instead of the solver; for any other objective it
is exactly the solver (or the baseline policy the simulator runs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from corral.fleet.pool import PoolView
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, Placement, PlacementRequest, place, select_pools

Solver = Callable[[FleetSnapshot, PlacementRequest], Placement | NoFit]


@dataclass(frozen=True)
class WorkRate:
    rate: float | None
    """Work per device-hour; None when the pool's accelerator has no known rate."""
    unit: str
    """`TFLOPS` (peakTFLOPS) or `work` (the job's own throughput unit)."""


def work_rate(view: PoolView, throughput: Mapping[str, float]) -> WorkRate:
    accelerator = view.spec.accelerator
    if throughput:
        return WorkRate(throughput.get(accelerator.type), "work")
    return WorkRate(accelerator.peak_tflops or None, "TFLOPS")


def price_per_device_hour(view: PoolView, placement: Placement) -> float:
    """The mean price per device-hour of the hosts a placement uses (each at its capacity type)."""
    nodes = placement.assignments
    return sum(view.price_per_device_hour(node) for node in nodes) / len(nodes)


@dataclass(frozen=True)
class _Candidate:
    pool: str
    placement: Placement
    price: float
    rate: WorkRate

    @property
    def per_work(self) -> float | None:
        return self.price / self.rate.rate if self.rate.rate else None

    def key(self) -> tuple[bool, float, str]:
        per_work = self.per_work
        return (per_work is None, per_work if per_work is not None else 0.0, self.pool)

    def describe(self, currency: str) -> str:
        if self.per_work is None:
            return f"{self.pool} ({self.price:.2f} {currency}/device-h, no work rate: not compared)"
        return (
            f"{self.pool} {self.price:.2f} {currency}/device-h / {self.rate.rate:g} "
            f"{self.rate.unit} = {self.per_work:.4g}"
        )


def solve(
    snapshot: FleetSnapshot, request: PlacementRequest, solver: Solver = place
) -> Placement | NoFit:
    """The placement for the request's objective: `solver` itself for Default; for CostPerWork,
    `solver` in each pool the job may use, and the fitting pool with the lowest price per unit of
    work (ties by pool name)."""
    if request.objective != "CostPerWork":
        return solver(snapshot, request)
    choice = select_pools(snapshot, request)
    if choice.refusal is not None or len(choice.views) < 2:
        return solver(snapshot, request)
    throughput = dict(request.throughput)
    candidates: list[_Candidate] = []
    not_now: list[str] = []
    for view in choice.views:
        result = solver(snapshot, replace(request, pools=(view.name,)))
        if isinstance(result, NoFit):
            not_now.append(view.name)
            continue
        candidates.append(
            _Candidate(
                view.name, result, price_per_device_hour(view, result), work_rate(view, throughput)
            )
        )
    if not candidates:
        return solver(snapshot, request)
    candidates.sort(key=_Candidate.key)
    best = candidates[0]
    currency = snapshot.pools[best.pool].spec.pricing.currency
    unit = f"{currency}/device-h per {best.rate.unit}/device-h"
    compared = "; ".join(c.describe(currency) for c in candidates)
    if best.per_work is None:
        why = f"no pool has a work rate, so {best.pool} (first by name) was taken"
    elif len(candidates) == 1 or candidates[1].per_work is None:
        why = f"{best.pool} is the only pool compared that fits now"
    else:
        why = f"{best.pool} has the lowest price per unit of work ({unit})"
    note = f"placementObjective CostPerWork: {why}; compared {compared}"
    if not_now:
        note += f"; not fitting now: {', '.join(not_now)}"
    explanation = best.placement.explanation.rstrip(".") + "; " + note + "."
    return replace(best.placement, explanation=explanation)
