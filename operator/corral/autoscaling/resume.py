"""The autoscaler's state rebuilt from what a previous operator wrote in status.

An operator that restarts (a crash, an upgrade, a new leader) would otherwise start from a cold
model: it holds its size until a full window at a steady replica count teaches it the service
time again, and the correction learned over many windows starts again from 1. Status carries,
refreshed at most once a minute, the service time and its variability, the arrival rate and,
per queueing objective, the correction and the request's own time X (a distribution over the
histogram's buckets, without which the objective could only scale up until a window of at least
20 requests taught it again: at low load, never). They are what `resume` puts back.

What status cannot carry is rebuilt conservatively, never optimistically: the scale-down
window's recommendations. Status bounds them by `desiredReplicas` only, so the window starts
again (a restart never brings a scale-down forward). The inter-token objectives' lines are
relearned (a few windows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.autoscaling.autoscaler import AutoscalerState
from corral.autoscaling.histogram import Histogram
from corral.autoscaling.model import CORRECTION_BOUNDS, LITTLE_SAMPLES, ObjectiveModel, ServiceModel
from corral.autoscaling.policy import Policy


@dataclass(frozen=True)
class Remembered:
    """What the last status said of the model (seconds; None: not known)."""

    service_time: float | None = None
    service_scv: float | None = None
    arrival_rate: float | None = None
    corrections: Mapping[str, float] = field(default_factory=dict)
    """Queueing objective name -> its correction."""
    own: Mapping[str, Histogram] = field(default_factory=dict)
    """Queueing objective name -> the request's own part of it (normalised)."""


def resume(remembered: Remembered, policy: Policy, now: float) -> AutoscalerState:
    mean = remembered.service_time
    if mean is None or not math.isfinite(mean) or mean <= 0:
        return AutoscalerState()
    # The remembered mean weighs as much as one window of its requests: the first fresh windows
    # refine it at once, and it decays like any other window's (model.SERVICE_MEMORY).
    served = max(float(LITTLE_SAMPLES), (remembered.arrival_rate or 0.0) * policy.window)
    scv = remembered.service_scv
    objectives = {
        o.name: ObjectiveModel(
            own=remembered.own.get(o.name),
            correction=_bounded(remembered.corrections.get(o.name)),
        )
        for o in policy.objectives
        if o.queueing
    }
    model = ServiceModel(
        mean_service=mean,
        service_sums=(mean * served, served),
        service_at=now,
        service_scv=scv if scv is not None and math.isfinite(scv) and scv > 0 else 1.0,
        objectives=objectives,
    )
    return AutoscalerState(model=model)


def _bounded(correction: float | None) -> float:
    if correction is None or not math.isfinite(correction):
        return 1.0
    low, high = CORRECTION_BOUNDS
    return min(high, max(low, correction))
