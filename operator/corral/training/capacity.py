"""The deadline spot policy applied to TrainingJobs (`spec.deadline` with `spec.progress`).

`corral.disruption.policy` decides in hours; this module reads a job into that problem and
turns the decision into what placement does: a waiting gang is offered only spot, only
on-demand (and reserved) capacity, or nothing yet (it waits for spot and holds no pool); a running
gang whose decision changed moves, after a checkpoint (`training.lifecycle`). The policy applies
only where it has a choice: the job allows spot and another capacity type, and its pools hold
both. Progress is the last checkpoint's step over the steps-per-hour rate, from the spec or
learned from the checkpoints (`status.capacity.stepsPerHour`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from corral.api.selection import CapacityType
from corral.api.trainingjob import (
    CapacityChoice,
    CapacityStatus,
    TrainingJobSpec,
    TrainingJobStatus,
)
from corral.disruption.policy import DeadlineProblem, Decision, StepRate, decide_for
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, PlacementRequest, candidate_pools, place

POLICY_SECONDS = 300.0
"""How often a job under the policy is looked at again, besides events (capacity changes,
checkpoints): the safety net keeps this much more in reserve."""


def applies(spec: TrainingJobSpec) -> bool:
    """The job has a deadline and says how far it has to go, and may use spot and something
    else."""
    if spec.deadline is None or spec.progress is None:
        return False  # most jobs: asked on every pass, so answered before building any set
    types = set(spec.capacity.types)
    return "spot" in types and bool(types - {"spot"})


def offers_choice(snapshot: FleetSnapshot, request: PlacementRequest) -> bool:
    """Whether the pools the job may use hold spot nodes and other nodes."""
    kinds: set[str] = set()
    for name in candidate_pools(snapshot, request):
        view = snapshot.pools.get(name)
        if view is not None:
            kinds.update(view.capacity_types.values())
    return "spot" in kinds and bool(kinds - {"spot"})


def restrict(request: PlacementRequest, choice: CapacityChoice | None) -> PlacementRequest:
    """The request on the capacity the policy chose (unchanged without a choice)."""
    if choice is None or choice == "none":
        return request
    types: tuple[CapacityType, ...] = tuple(
        t for t in request.capacity_types if (t == "spot") == (choice == "spot")
    )
    return dataclasses.replace(request, capacity_types=types or request.capacity_types)


def spot_available(snapshot: FleetSnapshot, request: PlacementRequest) -> bool:
    """Whether the whole gang fits on spot capacity now."""
    return not isinstance(place(snapshot, restrict(request, "spot")), NoFit)


SpotFits = Callable[[], bool]
"""Whether the whole gang would fit on spot capacity now (a placement: asked only when needed)."""


def fits_spot(snapshot: FleetSnapshot, request: PlacementRequest | None) -> SpotFits | None:
    """`spot_available` for one job (None when its request cannot be read)."""
    if request is None:
        return None
    return lambda: spot_available(snapshot, request)


def rate_of(spec: TrainingJobSpec, status: TrainingJobStatus) -> float | None:
    progress = spec.progress
    if progress is not None and progress.steps_per_hour:
        return progress.steps_per_hour
    return status.capacity.steps_per_hour if status.capacity is not None else None


def decide(
    spec: TrainingJobSpec,
    status: TrainingJobStatus,
    created: datetime,
    now: datetime,
    running: CapacityChoice,
    available: bool,
) -> Decision | None:
    """The policy's decision for this job now (None while its rate is unknown)."""
    assert spec.deadline is not None and spec.progress is not None
    last = status.last_checkpoint
    at_risk = 0.0
    if not spec.checkpoint.on_interruption and running == "spot":
        since = (last.time if last is not None else None) or status.start_time
        at_risk = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
    capacity = status.capacity
    return decide_for(
        DeadlineProblem(
            start=created,
            deadline=spec.deadline,
            total_steps=spec.progress.total_steps,
            restart_overhead_seconds=spec.progress.restart_overhead_seconds,
            granularity_seconds=POLICY_SECONDS,
        ),
        now=now,
        steps_per_hour=rate_of(spec, status),
        done_step=(last.step or 0) if last is not None else 0,
        running=running,
        spot_available=available,
        committed=capacity.committed if capacity is not None else False,
        at_risk_seconds=at_risk,
    )


def for_running(
    spec: TrainingJobSpec,
    status: TrainingJobStatus,
    created: datetime,
    now: datetime,
    spot_fits: SpotFits,
) -> Decision | None:
    """The policy's decision for a running gang (None when it does not apply, the rate is
    unknown, or what the gang runs on was not recorded). A gang on spot has spot: only the
    safety net moves it. A gang on on-demand goes to spot only when it is ahead of the line by
    the hysteresis and the whole gang fits on spot now; `spot_fits` (a placement) is asked only
    then, so a running gang costs no solver run on most reconciles."""
    if not applies(spec) or status.capacity is None:
        return None
    placed = status.capacity.placed
    if placed == "spot":
        return decide(spec, status, created, now, "spot", True)
    if placed != "on-demand":
        return None
    hoped = decide(spec, status, created, now, "on-demand", True)
    if hoped is None or hoped.capacity != "spot" or spot_fits():
        return hoped
    return decide(spec, status, created, now, "on-demand", False)


def record(
    status: TrainingJobStatus, decision: Decision, now: datetime
) -> tuple[CapacityStatus, bool]:
    """`status.capacity` after a decision, and whether its choice changed (an event: why)."""
    before = status.capacity
    if before is not None and before.type == decision.capacity:
        if decision.committed and not before.committed:
            return before.model_copy(update={"committed": True, "reason": decision.reason}), True
        return before, False
    base = before or CapacityStatus(type=decision.capacity, reason="", since=now)
    return (
        base.model_copy(
            update={
                "type": decision.capacity,
                "reason": decision.reason,
                "since": now,
                "committed": base.committed or decision.committed,
            }
        ),
        True,
    )


def waiting_for_rate(status: TrainingJobStatus, now: datetime) -> CapacityStatus:
    """The status while the rate is unknown: `any` capacity the spec allows, said why (the
    first decision once the rate is known is a change, told by an event)."""
    reason = (
        "no steps-per-hour estimate yet (set spec.progress.stepsPerHour, or it is learned from "
        "the running gang's first checkpoint): placed on any capacity spec.capacity.types allows"
    )
    before = status.capacity
    if before is not None and (before.type, before.reason) == ("any", reason):
        return before
    if before is None:
        return CapacityStatus(type="any", reason=reason, since=now)
    return before.model_copy(update={"type": "any", "reason": reason, "since": now})


def learn(
    spec: TrainingJobSpec, status: TrainingJobStatus, step: int, time: datetime
) -> CapacityStatus | None:
    """A checkpoint completed at `step`: the learned rate moves (when the spec gives none)."""
    capacity = status.capacity
    if capacity is None or (spec.progress is not None and spec.progress.steps_per_hour):
        return capacity
    rate = StepRate(capacity.steps_per_hour, capacity.rate_time, capacity.rate_step).observe(
        time, step
    )
    return capacity.model_copy(
        update={
            "steps_per_hour": round(rate.per_hour, 6) if rate.per_hour else None,
            "rate_step": rate.last_step,
            "rate_time": rate.last_time,
        }
    )


def started(status: TrainingJobStatus, now: datetime) -> CapacityStatus | None:
    """The gang (re)started: the learned rate counts from here, not across the idle time
    before (from the step it resumes at)."""
    capacity = status.capacity
    if capacity is None:
        return None
    last = status.last_checkpoint
    step = (last.step or 0) if last is not None else 0
    return capacity.model_copy(update={"rate_step": step, "rate_time": now})
