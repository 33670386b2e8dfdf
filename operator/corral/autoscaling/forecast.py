"""Short-term forecast of the arrival rate: far enough ahead to cover a replica's start-up.

A replica asked for now serves only after `startupSeconds`, and the rate it reads is already
half a window old, so sizing for the rate of now is sizing too late on a rising load. The trend
is the Theil-Sen slope (the median of pairwise slopes: one burst does not tilt it) of the
recent rates; only a rising trend is used, and it at most doubles the rate. A falling forecast
never lowers the size: scale-down waits for the stabilisation window instead.

The trend is learned only from windows at a steady count of ready replicas (the autoscaler
remembers no others). A window that began before the service served, or before a replica's
series existed, under-counts its requests (Prometheus's increase() extrapolates little past a
series' first sample): the first windows of a new service, and those after each scale-up, would
read as a rising rate and the forecast would size for up to twice the load.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

MAX_SAMPLES = 24
SIGNIFICANT_RISE = 0.1
"""A trend adding less than this share of the rate over the horizon is taken as noise."""


@dataclass(frozen=True)
class RateHistory:
    samples: tuple[tuple[float, float], ...] = ()
    """(time, requests/s), oldest first."""

    def remember(self, time: float, rate: float, span: float) -> RateHistory:
        kept = tuple((t, r) for t, r in self.samples if t > time - span and t < time)
        return RateHistory((*kept, (time, rate))[-MAX_SAMPLES:])

    def forget(self) -> RateHistory:
        return RateHistory()


def forecast(
    history: RateHistory, now: float, horizon: float, span: float, latest: float | None = None
) -> float:
    """The rate expected `horizon` seconds from now: `latest` (the rate of now; by default the
    last sample) plus the trend of the samples of the last `span`."""
    recent = [(t, r) for t, r in history.samples if t > now - span]
    if latest is None:
        if not recent:
            return 0.0
        latest = recent[-1][1]
    if len(recent) < 4:
        return latest
    # Pairs at least half the span apart: noise between neighbouring ticks (which share most
    # of their window) would otherwise pass for a trend half of the time.
    reach = (recent[-1][0] - recent[0][0]) / 2
    slopes = [
        (r2 - r1) / (t2 - t1)
        for i, (t1, r1) in enumerate(recent)
        for t2, r2 in recent[i + 1 :]
        if t2 - t1 >= reach > 0
    ]
    slope = statistics.median(slopes) if slopes else 0.0
    rise = slope * horizon
    if rise < SIGNIFICANT_RISE * latest:
        return latest
    return min(2 * latest, latest + rise)
