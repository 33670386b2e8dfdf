"""A job's usage: device-hours, cost, energy and carbon of its attempts, settled when an attempt
ends (the definitions are `corral.cost.charges`, which the simulator uses too).

Usage grows with the clock, so refreshing it on every reconcile would make every reconcile a
write. The lifecycle refreshes it only when asked (a periodic timer of the runtime) and when the
phase changes or an attempt ends; `status.accounting` keeps what earlier attempts used, so usage is
never counted twice across restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.api.gpupool import Carbon, GPUPool
from corral.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from corral.cost.accounting import Usage, device_hours
from corral.cost.charges import ZERO, Charge, Rates, carbon_grams
from corral.fleet.snapshot import FleetSnapshot
from corral.training.pods import WorkerPod


@dataclass(frozen=True)
class Price:
    """What a device-hour of a placement is worth: its price, and the power and grid behind it."""

    per_device_hour: float
    currency: str
    kw_per_device: float = 0.0
    """Board watts x utilisation x PUE of the pool, in kW (`corral.cost.charges.Rates`)."""
    carbon: Carbon | None = None


def placement_price(
    snapshot: FleetSnapshot, pool: GPUPool | None, nodes: Sequence[str]
) -> Price | None:
    """The average price per device-hour of a placement's nodes, each at its capacity type."""
    if pool is None or not nodes:
        return None
    rates = [Rates.of(pool.spec, snapshot.capacity_type_of(node) or "on-demand") for node in nodes]
    return Price(
        per_device_hour=sum(r.price_per_device_hour for r in rates) / len(rates),
        currency=pool.spec.pricing.currency,
        kw_per_device=rates[0].kw_per_device,
        carbon=pool.spec.carbon,
    )


def live_usage(
    pods: Sequence[WorkerPod], devices: int, now: datetime, price: Price | None
) -> Charge:
    """Usage of the current attempt's workers so far (a running worker counts to now); carbon
    hour by hour over each worker's run when the pool has an hourly schedule."""
    hours = device_hours(
        [Usage(devices, pod.start_time, pod.finish_time) for pod in pods if pod.start_time], now
    )
    if price is None:
        return Charge(device_hours=hours)
    kw = devices * price.kw_per_device
    return Charge(
        device_hours=hours,
        cost=hours * price.per_device_hour,
        energy_kwh=hours * price.kw_per_device,
        carbon_grams=sum(
            carbon_grams(price.carbon, kw, pod.start_time, pod.finish_time or now)
            for pod in pods
            if pod.start_time
        ),
    )


def refresh(status: TrainingJobStatus, live: Charge, price: Price | None) -> None:
    """Bring deviceHours, cost, energyKWh and carbonGrams up to date: settled usage plus the live
    attempt."""
    accounting = status.accounting
    status.device_hours = round(accounting.settled_device_hours + live.device_hours, 6)
    status.energy_kwh = round(accounting.settled_energy_kwh + live.energy_kwh, 6)
    status.carbon_grams = round(accounting.settled_carbon_grams + live.carbon_grams, 3)
    if price is not None:
        status.cost = round(accounting.settled_cost + live.cost, 6)
        status.currency = price.currency


def settle(status: TrainingJobStatus, live: Charge, price: Price | None) -> None:
    """An attempt ends: its usage moves into the settled totals, and the totals are shown."""
    accounting = status.accounting
    accounting.settled_device_hours += live.device_hours
    accounting.settled_cost += live.cost
    accounting.settled_energy_kwh += live.energy_kwh
    accounting.settled_carbon_grams += live.carbon_grams
    refresh(status, ZERO, price)


def budget_exceeded(spec: TrainingJobSpec, status: TrainingJobStatus) -> str | None:
    """Why the job has used up its budget, or None."""
    if spec.budget.device_hours is not None and status.device_hours >= spec.budget.device_hours:
        return (
            f"used {status.device_hours:.1f} of its budget of {spec.budget.device_hours:g} "
            "device-hours (spec.budget.deviceHours)"
        )
    if spec.budget.cost is not None and status.cost >= spec.budget.cost:
        return (
            f"cost {status.cost:.2f} reached its budget of {spec.budget.cost:g} (spec.budget.cost)"
        )
    return None


def budget_refusal(
    spec: TrainingJobSpec, status: TrainingJobStatus, devices: int, price: float | None
) -> str | None:
    """Why admission refuses to place the gang now: its budget is used up, or the expected use
    of one more run (`devices` for `spec.budget.expectedDurationSeconds`, at `price` per
    device-hour, the cheapest the job could get) would exceed it. None when it may go."""
    budget = spec.budget
    spent = budget_exceeded(spec, status)
    if spent is not None:
        return f"the job {spent}; raise the budget to run it again"
    if budget.expected_duration_seconds is None:
        return None
    hours = budget.expected_duration_seconds / 3600
    run = f"{devices} devices x {hours:g} h (spec.budget.expectedDurationSeconds)"
    if budget.device_hours is not None:
        expected = status.device_hours + devices * hours
        if expected > budget.device_hours:
            return (
                f"expected use {expected:.1f} device-hours ({status.device_hours:.1f} used + {run}) "
                f"exceeds spec.budget.deviceHours {budget.device_hours:g}"
            )
    if budget.cost is not None and price is not None:
        expected = status.cost + devices * hours * price
        if expected > budget.cost:
            return (
                f"expected cost {expected:.2f} ({status.cost:.2f} spent + {run} at {price:g} per "
                f"device-hour, the cheapest of its pools) exceeds spec.budget.cost {budget.cost:g}"
            )
    return None
