"""Builders for autoscaler tests: a policy, a learned model, and observations made from an exact
M/M/c-like queue so each test states its load in one line.

    load(rate=5).replicas(4).build(at=120)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from corral.autoscaling.histogram import TTFT_BUCKETS, Histogram
from corral.autoscaling.model import ObjectiveModel, ServiceModel
from corral.autoscaling.observation import Observation, Replicas
from corral.autoscaling.policy import Behavior, ObjectiveTarget, Policy

TTFT = ObjectiveTarget("ttft", "TimeToFirstToken", 99, 2.0)
E2E = ObjectiveTarget("e2e", "Latency", 99, 30.0)
ITL = ObjectiveTarget("itl", "InterTokenLatency", 99, 0.1)


def policy(*objectives: ObjectiveTarget, **fields: object) -> Policy:
    base = Policy(objectives=objectives or (TTFT,), max_replicas=100, startup=60.0, window=60.0)
    behavior = fields.pop("behavior", None)
    out = replace(base, **fields)  # type: ignore[arg-type]
    return replace(out, behavior=behavior) if isinstance(behavior, Behavior) else out


def prefill(mean: float = 0.2) -> Histogram:
    """A prefill time spread around `mean` (normalised)."""
    samples = [mean * f for f in (0.3, 0.5, 0.8, 1.0, 1.0, 1.2, 1.5, 2.0)]
    return Histogram.from_samples(samples, TTFT_BUCKETS).normalized()


def learned(
    mean_service: float = 2.0, scv: float = 1.0, own: Histogram | None = None
) -> ServiceModel:
    """A model that already knows the service time and the TTFT objective's own part."""
    return ServiceModel(
        mean_service=mean_service,
        service_sums=(mean_service * 1000, 1000.0),
        service_at=0.0,
        service_scv=scv,
        objectives={"ttft": ObjectiveModel(own=own or prefill())},
    )


@dataclass
class LoadBuilder:
    rate: float = 5.0
    mean_service: float = 2.0
    ready: int = 4
    starting: int = 0
    ready_since: float | None = 0.0
    ttft: float = 0.3
    """Every request's time to first token in the window (a flat histogram at that value)."""
    problems: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    reporting: int | None = None
    queued: float | None = None
    in_flight: float | None = None

    def replicas(self, ready: int, starting: int = 0) -> LoadBuilder:
        self.ready, self.starting = ready, starting
        return self

    def slow(self, ttft: float) -> LoadBuilder:
        self.ttft = ttft
        return self

    def broken(self, name: str, why: str) -> LoadBuilder:
        self.problems[name] = why
        self.missing.add(name)
        return self

    def build(
        self, at: float, window: float = 60.0, objectives: tuple[str, ...] = ("ttft",)
    ) -> Observation:
        count = self.rate * window
        histograms = {
            name: Histogram.from_samples([self.ttft] * round(count), TTFT_BUCKETS)
            for name in objectives
            if name not in self.missing
        }
        in_flight = self.in_flight
        if in_flight is None:
            in_flight = self.rate * self.mean_service  # Little's law
        return Observation(
            time=at,
            window=window,
            replicas=Replicas(self.ready, self.starting, self.ready_since),
            histograms=histograms,
            problems=dict(self.problems),
            in_flight=in_flight,
            queued=self.queued,
            reporting=self.reporting,
        )


def load(rate: float = 5.0, mean_service: float = 2.0) -> LoadBuilder:
    return LoadBuilder(rate=rate, mean_service=mean_service)
