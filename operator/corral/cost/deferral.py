"""Carbon-aware deferral: a flexible job may wait for a lower-carbon window of its pools.

A job with `spec.carbonDeferral` has a latest start: `startBy`, or `spec.deadline -
expectedDurationSeconds`, whichever is earlier. While it waits for capacity, the scheduling pass
asks `decide`: among the start times from now to the latest start (now, then each UTC hour
boundary), which has the lowest mean carbon intensity over the job's expected run, on any of the
pools it may use? If that window starts later and is at least `minSavingPercent` cleaner than
starting now, the job waits until it opens (`status.deferredUntil`, a condition and an event say
why); otherwise, or once the latest start has come, it is placed as any other job. Only pools
with an hourly schedule vary over time: with static figures a job never waits.

Pure: time is passed in; the same inputs always give the same answer, so asking again at any
moment before the window opens names the same window (level-triggered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from corral.api.gpupool import Carbon
from corral.api.trainingjob import TrainingJobSpec
from corral.cost.charges import HOUR, mean_intensity

LOOKAHEAD = timedelta(days=7)
"""Windows further ahead than this are not considered (a bound on the work of one decision)."""
DEFAULT_WINDOW = HOUR
"""The window compared when the job gives no expected duration."""


@dataclass(frozen=True)
class Deferral:
    until: datetime
    """When the chosen window opens: the job is offered capacity again then."""
    reason: str


def latest_start(spec: TrainingJobSpec) -> datetime | None:
    """When a job with `carbonDeferral` must start at the latest (None: it has no deferral)."""
    deferral = spec.carbon_deferral
    if deferral is None:
        return None
    bounds = []
    if deferral.start_by is not None:
        bounds.append(deferral.start_by)
    if spec.deadline is not None and deferral.expected_duration_seconds is not None:
        bounds.append(spec.deadline - timedelta(seconds=deferral.expected_duration_seconds))
    return min(bounds) if bounds else None


def for_job(
    spec: TrainingJobSpec, now: datetime, pools: Mapping[str, Carbon | None]
) -> Deferral | None:
    """`decide` for a job's spec and the carbon of the pools it may use."""
    deferral = spec.carbon_deferral
    latest = latest_start(spec)
    if deferral is None or latest is None:
        return None
    duration = (
        timedelta(seconds=deferral.expected_duration_seconds)
        if deferral.expected_duration_seconds
        else DEFAULT_WINDOW
    )
    return decide(now, latest, duration, pools, deferral.min_saving_percent)


def decide(
    now: datetime,
    latest: datetime,
    duration: timedelta,
    pools: Mapping[str, Carbon | None],
    min_saving_percent: float,
) -> Deferral | None:
    """The window to wait for, or None to go ahead now."""
    varying = {name: c for name, c in sorted(pools.items()) if c is not None and c.hourly}
    if not varying or latest <= now:
        return None
    now_mean, now_pool = min(
        (mean_intensity(c, now, now + duration), name) for name, c in varying.items()
    )
    best = (now_mean, now, now_pool)
    last = min(latest, now + LOOKAHEAD)
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    while start <= last:
        for name, carbon in varying.items():
            mean = mean_intensity(carbon, start, start + duration)
            if mean < best[0]:
                best = (mean, start, name)
        start += HOUR
    mean, when, pool = best
    if when == now or mean > now_mean * (1 - min_saving_percent / 100.0):
        return None
    saving = 100.0 * (1 - mean / now_mean) if now_mean else 100.0
    return Deferral(
        until=when,
        reason=(
            f"waiting for a lower-carbon window: pool {pool} from {_clock(when)} averages "
            f"{mean:.0f} gCO2e/kWh over the expected {_hours(duration)}, against {now_mean:.0f} "
            f"if started now (-{saving:.0f} %, at least {min_saving_percent:g} % asked); "
            f"the latest start is {_clock(latest)}"
        ),
    )


def _clock(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _hours(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g} h"
