"""The edge between the autoscaler and a metrics backend: what is asked, and a fake for tests.

The controller builds a `Target` per InferenceService and awaits `observe`; the autoscaler
(pure) only ever sees the `Observation` that comes back. Prometheus is the real backend
(`corral.sources.prometheus`); `FakeMetrics` answers from a table for unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from corral.api.inferenceservice import Objective, PrometheusSource
from corral.autoscaling.observation import Observation, Replicas


@dataclass(frozen=True)
class Target:
    """One InferenceService's metrics: where, which pods, which objectives."""

    namespace: str
    name: str
    pods: tuple[str, ...]
    """Every pod of the service (ready, starting or terminating: all serve or served)."""
    replicas: Replicas
    source: PrometheusSource
    objectives: tuple[Objective, ...]


class MetricsSource(Protocol):
    async def observe(self, target: Target, now: float) -> Observation:
        """The observation over the source's window ending at `now` (epoch seconds); never
        raises (problems are reported in the Observation)."""
        ...

    async def close(self) -> None: ...


@dataclass
class FakeMetrics:
    """Answers from `answer(target, now)`, counting calls; `down` makes every call a source
    problem, as a stopped Prometheus would."""

    answer: Callable[[Target, float], Observation] | None = None
    down: str | None = None
    calls: list[tuple[str, float]] = field(default_factory=list)

    async def observe(self, target: Target, now: float) -> Observation:
        self.calls.append((f"{target.namespace}/{target.name}", now))
        window = float(target.source.window_seconds)
        empty = Observation(time=now, window=window, replicas=target.replicas)
        if self.down is not None:
            return replace(empty, problems={"source": self.down})
        if self.answer is None:
            return replace(empty, problems={o.name: "no series" for o in target.objectives})
        return replace(self.answer(target, now), time=now, replicas=target.replicas)

    async def close(self) -> None:
        return None
