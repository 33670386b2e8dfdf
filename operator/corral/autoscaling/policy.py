"""What the autoscaler is asked to do: objectives, bounds and behaviour, in seconds.

The autoscaler reads this plain form rather than the API models, so the benchmark and the tests
state a policy in one line and the operator converts the spec once (`policy_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.api.inferenceservice import Autoscaling, ObjectiveType


@dataclass(frozen=True)
class ObjectiveTarget:
    name: str
    type: ObjectiveType
    percentile: float
    """0 < percentile < 100."""
    target: float
    """Seconds."""

    @property
    def quantile(self) -> float:
        return self.percentile / 100

    @property
    def queueing(self) -> bool:
        """Whether the wait for a free slot is part of this latency."""
        return self.type != "InterTokenLatency"

    def label(self) -> str:
        return f"{self.name} p{self.percentile:g}"


@dataclass(frozen=True)
class Behavior:
    scale_up_stabilization: float = 0.0
    scale_down_stabilization: float = 300.0
    max_scale_up_rate: float = 2.0
    max_scale_down_rate: float = 0.5
    tolerance: float = 0.1


@dataclass(frozen=True)
class Policy:
    objectives: tuple[ObjectiveTarget, ...]
    min_replicas: int = 1
    max_replicas: int = 32
    concurrency: int = 1
    """Slots per replica."""
    startup: float = 60.0
    """Seconds from creating a replica until it serves."""
    window: float = 60.0
    """Seconds of the metrics window."""
    behavior: Behavior = field(default_factory=Behavior)

    @property
    def floor(self) -> int:
        """The least replicas the autoscaler chooses: a service at 0 replicas reports no load,
        so nothing could bring it back; minReplicas 0 is honoured as 1 (docs/inference.md)."""
        return max(1, self.min_replicas)


def policy_of(autoscaling: Autoscaling) -> Policy:
    """The autoscaler's policy for a validated spec."""
    behavior = autoscaling.behavior
    window = 60.0
    if autoscaling.metrics is not None:
        window = float(autoscaling.metrics.prometheus.window_seconds)
    return Policy(
        objectives=tuple(
            ObjectiveTarget(o.name, o.type, o.percentile, o.latency_ms / 1000)
            for o in autoscaling.all_objectives()
        ),
        min_replicas=autoscaling.min_replicas,
        max_replicas=autoscaling.max_replicas,
        concurrency=autoscaling.concurrency_per_replica,
        startup=float(autoscaling.startup_seconds),
        window=window,
        behavior=Behavior(
            scale_up_stabilization=float(behavior.scale_up_stabilization_seconds),
            scale_down_stabilization=float(behavior.scale_down_stabilization_seconds),
            max_scale_up_rate=behavior.max_scale_up_rate,
            max_scale_down_rate=behavior.max_scale_down_rate,
            tolerance=behavior.tolerance,
        ),
    )
