"""From a recommendation to a replica count that does not flap.

- Up at once, by at most `maxScaleUpRate` per decision (and at least one replica), taking the
  lowest recommendation of the scale-up window (HPA's rule; the window is 0 s by default).
- Down only to the highest recommendation of the scale-down window, which is at least the
  start-up time (capacity that would be needed again before a new replica could start is never
  released), only when that is below the current count by more than the tolerance band, by at
  most `maxScaleDownRate` per decision, and only once the window is covered by ticks that all
  had complete data (after an operator restart or a metrics gap, the window starts again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from corral.autoscaling.policy import Policy


@dataclass(frozen=True)
class Stabilizer:
    recommendations: tuple[tuple[float, int], ...] = ()
    """(time, recommended replicas) of recent ticks, oldest first."""
    complete_since: float | None = None
    """Since when every tick had complete data (None: the last tick did not)."""


@dataclass(frozen=True)
class Stabilized:
    replicas: int
    stabilizer: Stabilizer
    limit: str | None = None
    """Which bound cut the step: `MaxScaleUpRate`, `MaxScaleDownRate`, `MaxReplicas`,
    `MinReplicas` (None: the recommendation was followed or held by the window)."""
    held_by: str | None = None
    """Why a lower recommendation was not followed yet."""


def down_window(policy: Policy) -> float:
    return max(policy.behavior.scale_down_stabilization, policy.startup)


def stabilize(
    stabilizer: Stabilizer,
    recommended: int,
    current: int,
    policy: Policy,
    now: float,
    complete: bool,
) -> Stabilized:
    """The next replica count from this tick's (unbounded) recommendation."""
    behavior = policy.behavior
    window = down_window(policy)
    keep = max(window, behavior.scale_up_stabilization)
    history = (
        *((t, n) for t, n in stabilizer.recommendations if t >= now - keep and t < now),
        (now, recommended),
    )
    since = stabilizer.complete_since if complete else None
    if complete and since is None:
        since = now
    state = replace(stabilizer, recommendations=history, complete_since=since)

    if current > policy.max_replicas or current < policy.floor:
        # The bounds changed under the current count: they win at once, window or not.
        clamped, limit = _bounded(current, policy)
        return Stabilized(clamped, state, limit)
    bounded, bound = _bounded(recommended, policy)
    up_window = [n for t, n in history if t >= now - behavior.scale_up_stabilization]
    up_target, _ = _bounded(min(up_window), policy)
    if up_target > current:
        step = max(math.ceil(current * behavior.max_scale_up_rate), current + 1)
        if up_target > step:
            return Stabilized(step, state, "MaxScaleUpRate")
        return Stabilized(up_target, state, bound)
    if bounded >= current:
        return Stabilized(current, state, bound if bounded == current else None)

    # A lower recommendation: follow it only as far as the window and the band allow.
    if since is None or now - since < window:
        covered = 0.0 if since is None else now - since
        return Stabilized(
            current,
            state,
            held_by=f"{covered:.0f}s of complete metrics, scale-down needs {window:.0f}s",
        )
    highest, _ = _bounded(max(n for t, n in history if t >= now - window), policy)
    if highest >= current:
        return Stabilized(current, state, held_by=f"needed {highest} within the last {window:.0f}s")
    if highest > current * (1 - behavior.tolerance):
        return Stabilized(
            current, state, held_by=f"{highest} is within the {behavior.tolerance:.0%} tolerance"
        )
    floor = max(current - math.floor(current * behavior.max_scale_down_rate), 1)
    if highest < floor:
        return Stabilized(max(floor, policy.floor), state, "MaxScaleDownRate")
    return Stabilized(highest, state, bound)


def _bounded(replicas: int, policy: Policy) -> tuple[int, str | None]:
    if replicas > policy.max_replicas:
        return policy.max_replicas, "MaxReplicas"
    if replicas < policy.floor:
        return policy.floor, "MinReplicas"
    return replicas, None
