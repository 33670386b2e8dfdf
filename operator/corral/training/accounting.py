"""A job's usage: device-hours and cost of its attempts, settled when an attempt ends.

Usage grows with the clock, so refreshing it on every reconcile would make every reconcile a
write. The lifecycle refreshes it only when asked (a periodic timer of the runtime) and when the
phase changes or an attempt ends; `status.accounting` keeps what earlier attempts used, so usage is
never counted twice across restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.api.gpupool import GPUPool
from corral.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from corral.cost.accounting import Usage, device_hours
from corral.fleet.snapshot import FleetSnapshot
from corral.training.pods import WorkerPod


@dataclass(frozen=True)
class Price:
    per_device_hour: float
    currency: str


def placement_price(
    snapshot: FleetSnapshot, pool: GPUPool | None, nodes: Sequence[str]
) -> Price | None:
    """The average price per device-hour of a placement's nodes, each at its capacity type."""
    if pool is None or not nodes:
        return None
    per_worker = [
        pool.spec.pricing.per_device_hour(snapshot.capacity_type_of(node) or "on-demand")
        for node in nodes
    ]
    return Price(sum(per_worker) / len(per_worker), pool.spec.pricing.currency)


def live_device_hours(pods: Sequence[WorkerPod], devices: int, now: datetime) -> float:
    """Device-hours of the current attempt's workers so far (a running worker counts to now)."""
    return device_hours(
        [Usage(devices, pod.start_time, pod.finish_time) for pod in pods if pod.start_time], now
    )


def refresh(status: TrainingJobStatus, live: float, price: Price | None) -> None:
    """Bring deviceHours/cost up to date: settled usage plus the live attempt."""
    accounting = status.accounting
    status.device_hours = round(accounting.settled_device_hours + live, 6)
    if price is not None:
        status.cost = round(accounting.settled_cost + live * price.per_device_hour, 6)
        status.currency = price.currency


def settle(status: TrainingJobStatus, live: float, price: Price | None) -> None:
    """An attempt ends: its usage moves into the settled totals, and the totals are shown."""
    status.accounting.settled_device_hours += live
    if price is not None:
        status.accounting.settled_cost += live * price.per_device_hour
    refresh(status, 0.0, price)


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
