"""What one autoscaler tick sees: the metrics over the window and the replicas behind them.

A metrics source (Prometheus in the operator, the discrete-event model in the benchmark) fills
this in; anything it could not read is a `problem` naming the series and what went wrong, never
an exception, so one bad series holds the size instead of breaking the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.autoscaling.histogram import Histogram


@dataclass(frozen=True)
class Replicas:
    """The replicas of the service as the controller sees them."""

    ready: int
    """Serving now."""
    starting: int = 0
    """Created, not ready yet."""
    ready_since: float | None = None
    """When `ready` last changed (None: unknown, e.g. right after the operator started)."""


@dataclass(frozen=True)
class Observation:
    time: float
    window: float
    """Seconds the rates and histograms cover."""
    replicas: Replicas
    histograms: Mapping[str, Histogram] = field(default_factory=dict)
    """Objective name -> bucket increases over the window (all reporting replicas summed)."""
    problems: Mapping[str, str] = field(default_factory=dict)
    """Objective name (or `in-flight`, `queued`, `source`) -> why its data is unusable."""
    in_flight: float | None = None
    """Average requests being served over the window (all replicas), if measured."""
    queued: float | None = None
    """Requests waiting for a slot now, if measured."""
    queued_growth: float | None = None
    """Change of `queued` per second over the window, if measured."""
    rates: tuple[float, ...] = ()
    """Request rate in equal consecutive parts of the window, oldest first (empty: unknown).
    Bursts shorter than the window show here and nowhere else."""
    reporting: int | None = None
    """Replicas whose series are present (None: not counted). Fewer than ready means some are
    missing: rates are scaled up by ready/reporting, the rest are used as they are."""
    reporting_now: int | None = None
    """Of those, the replicas whose series are present at the window's end (None: not counted).
    Fewer than `reporting` at a steady ready count: a replica stopped reporting inside the window,
    whose part of it is missing from the counts, and `reporting` cannot make it up yet."""

    @property
    def stopped_reporting(self) -> int:
        """Replicas that stopped reporting inside a window at a steady ready count (a replica
        that went away changes the ready count instead)."""
        if self.reporting is None or self.reporting_now is None or not self.steady:
            return 0
        return max(0, self.reporting - self.reporting_now)

    @property
    def steady(self) -> bool:
        """Whether the same replicas were ready over the whole window: its counts are whole (a
        series born inside the window is under-counted) and its rate is the service's."""
        since = self.replicas.ready_since
        return self.replicas.ready > 0 and since is not None and self.time - since >= self.window

    @property
    def source_down(self) -> str | None:
        return self.problems.get("source")
