"""Interruption recovery and checkpoints of a running TrainingJob gang (one reconcile step's
part; `training.lifecycle` calls it).

A node of the gang noticed: checkpoint (bounded by the notice), then replace only the affected
workers inside the gang's span domain, or move the whole gang; every interruption is counted in
`status.interruptions`, classified, and never consumes `maxRestarts`. A running gang is also
asked for periodic checkpoints (`checkpoint.intervalSeconds`), and moved between spot and
on-demand when the deadline spot policy changes its mind (a checkpoint, then a re-placement,
counted as an interruption of kind `CapacityPolicy`). See docs/disruption.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from corral.api.conditions import get_condition
from corral.api.meta import ConditionStatus
from corral.api.names import worker_pod_name
from corral.api.trainingjob import (
    DisruptionStatus,
    RestartReason,
    RestartRecord,
    TrainingJobSpec,
    TrainingJobStatus,
)
from corral.cost.charges import Charge
from corral.disruption import checkpoints
from corral.disruption.checkpoints import RequestId
from corral.disruption.notices import NodeNotice, Notice
from corral.scheduling.actions import AnnotatePod, CallHook, CreateWorker, Nominate, RequeueAfter
from corral.sdk.protocol import REQUESTED as CHECKPOINT_REQUESTED
from corral.training import accounting, capacity
from corral.training.accounting import Price
from corral.training.pods import WorkerPod
from corral.training.replacement import ReplaceWorkers
from corral.training.step import (
    NodeProblem,
    Step,
    count_workers,
    end_attempt,
    worker_index,
)

INTERRUPTED = "Interrupted"
"""The Placed condition's reason while an interrupted gang waits to be placed again."""
INTERRUPTED_WAITING = "interrupted, waiting for capacity"


def _run_start(alive: dict[int, WorkerPod]) -> datetime | None:
    """When the gang as it is now started running: its last worker's start (a worker replaced
    in place re-forms the rendezvous, and checkpoint requests from before are moot)."""
    starts = [pod.start_time for pod in alive.values()]
    if not starts or any(start is None for start in starts):
        return None
    return max(start for start in starts if start is not None)


def _worker_views(alive: dict[int, WorkerPod]) -> list[checkpoints.WorkerView]:
    return [
        checkpoints.WorkerView(pod.name, pod.index, pod.checkpoint, pod.pod_ip)
        for pod in sorted(alive.values(), key=worker_index)
    ]


def _hook_actions(step: Step, spec: TrainingJobSpec, plan: checkpoints.CheckpointPlan) -> None:
    """The checkpoint request of a plan: annotations, or calls of the httpGet hook."""
    if plan.request is not None and plan.annotate:
        request = ((CHECKPOINT_REQUESTED, str(plan.request)),)
        step.decision.add(*(AnnotatePod(name, request) for name in plan.annotate))
    if plan.calls:
        step.decision.add(
            *(
                CallHook(call.pod, call.url, call.request_id, spec.checkpoint.timeout_seconds)
                for call in plan.calls
            )
        )


def periodic_checkpoint(step: Step, alive: dict[int, WorkerPod]) -> None:
    """Periodic checkpoint requests of a running gang (`checkpoint.intervalSeconds`), through
    the same protocol as on a notice. Writes stay bounded: the request is annotations on the
    pods, the status changes only when a checkpoint completes (`lastCheckpoint`) or a request
    times out (condition `Checkpointed`, once per request); a timer wakes the job when the next
    request is due or the wait ends."""
    spec, status, now = step.job.spec, step.status, step.now
    policy = spec.checkpoint
    demand = step.job.checkpoint_demand
    plan = checkpoints.plan(
        policy,
        _worker_views(alive),
        status.last_checkpoint,
        now=now,
        running_since=_run_start(alive),
        demanded=min(demand, now) if demand is not None else None,
    )
    _advance(step, plan)
    _hook_actions(step, spec, plan)
    last = plan.last_checkpoint
    if plan.completed and last is not None:
        where = f" at {last.uri}" if last.uri else ""
        _checkpoint_condition(
            step, "True", "CheckpointCompleted", f"checkpoint {last.id}: step {last.step}{where}"
        )
    elif plan.timed_out and plan.request is not None:
        kept = f"lastCheckpoint stays {last.id} (step {last.step})" if last else "no checkpoint yet"
        problems = f" ({'; '.join(plan.problems)})" if plan.problems else ""
        _checkpoint_condition(
            step,
            "False",
            "CheckpointTimeout",
            f"worker(s) {', '.join(plan.missing)} did not acknowledge checkpoint {plan.request} "
            f"within {policy.timeout_seconds}s{problems}; {kept}",
        )
    if step.job.checkpoint_demand_problem is not None:
        _checkpoint_condition(
            step, "False", "InvalidCheckpointRequest", step.job.checkpoint_demand_problem
        )
    else:
        stale = get_condition(status.conditions, "Checkpointed")
        if stale is not None and stale.reason == "InvalidCheckpointRequest":
            # The annotation was fixed or removed: the complaint goes with it.
            status.conditions = [c for c in status.conditions if c is not stale]
    if plan.next_check is not None:
        step.decision.add(RequeueAfter(max(0.5, (plan.next_check - now).total_seconds())))


def _advance(step: Step, plan: checkpoints.CheckpointPlan) -> None:
    """`lastCheckpoint` moves (forward only: the plan saw to it); a completed checkpoint also
    moves the deadline spot policy's learned rate (`status.capacity`)."""
    status = step.status
    status.last_checkpoint = plan.last_checkpoint
    last = plan.last_checkpoint
    if plan.completed and last is not None and last.step is not None and last.time is not None:
        status.capacity = capacity.learn(step.job.spec, status, last.step, last.time)


def _checkpoint_condition(step: Step, state: ConditionStatus, reason: str, message: str) -> None:
    """Condition `Checkpointed`: an event when its status or reason changes (not for every
    periodic checkpoint)."""
    before = get_condition(step.status.conditions, "Checkpointed")
    step.condition("Checkpointed", state, reason, message)
    if before is None or before.status != state or before.reason != reason:
        step.event("Normal" if state == "True" else "Warning", reason, message)


def reason_for(
    status: TrainingJobStatus, node: str | None, notice: Notice | None, default: RestartReason
) -> RestartReason:
    if status.disruption is not None and status.disruption.node == node:
        return status.disruption.reason
    if notice is not None:
        return notice.restart_class
    return default


def interruption_of(
    step: Step, pod: WorkerPod, node_problem: NodeProblem, node_notice: NodeNotice
) -> tuple[RestartReason, str] | None:
    """A failed worker that was taken by the platform (its node noticed, lost, or the pod marked
    DisruptionTarget) is an interruption, not an application error."""
    node = pod.node or pod.planned_node
    notice = node_notice(node) if node else None
    if pod.disruption is not None:
        reason = reason_for(step.status, node, notice, "Maintenance")
        return (
            reason,
            f"worker {pod.index} on {node}: terminated by the platform ({pod.disruption})",
        )
    if notice is not None or (
        step.status.disruption is not None and step.status.disruption.node == node
    ):
        reason = reason_for(step.status, node, notice, "Maintenance")
        signal = notice.signal if notice is not None else step.status.disruption.signal  # type: ignore[union-attr]
        return reason, f"worker {pod.index} on {node}: {signal}"
    problem = node_problem(node) if node else None
    if problem:
        return "NodeFailure", f"worker {pod.index} on {node}: {problem}"
    return None


def _checkpoint_before_move(
    step: Step,
    alive: dict[int, WorkerPod],
    *,
    notice_seen: datetime | None = None,
    notice_deadline: datetime | None = None,
    demanded: datetime | None = None,
    demand_reason: checkpoints.RequestReason = "manual",
) -> checkpoints.CheckpointPlan | None:
    """The checkpoint a gang is asked for before it moves (a notice, or the policy's choice):
    the request made, `lastCheckpoint` advanced; None while the workers are still given time
    to acknowledge (phase Checkpointing, woken when the wait ends), else the settled plan."""
    spec, status, now = step.job.spec, step.status, step.now
    plan = checkpoints.plan(
        spec.checkpoint,
        _worker_views(alive),
        status.last_checkpoint,
        now=now,
        running_since=_run_start(alive),
        notice_seen=notice_seen,
        notice_deadline=notice_deadline,
        demanded=demanded,
        demand_reason=demand_reason,
    )
    _advance(step, plan)
    _hook_actions(step, spec, plan)
    if plan.waiting and plan.wait_until is not None:
        if status.phase != "Checkpointing":
            step.phase("Checkpointing")
        step.decision.add(RequeueAfter(max(0.5, (plan.wait_until - now).total_seconds())))
        return None
    return plan


def on_notice(
    step: Step,
    current: Sequence[WorkerPod],
    alive: dict[int, WorkerPod],
    live: Charge,
    price: Price | None,
    noticed: list[tuple[int, str, Notice]],
    replace_workers: ReplaceWorkers | None = None,
) -> None:
    """A node of the running gang got a termination notice: checkpoint (bounded by the notice),
    then move the affected workers (in place, when the span domain has room for them) or the
    whole gang, resuming from the newest complete checkpoint."""
    spec, status, now = step.job.spec, step.status, step.now
    nodes = {node for _, node, _ in noticed}
    disruption = status.disruption
    if disruption is None or disruption.node not in nodes:
        _, node, notice = min(
            noticed, key=lambda item: (item[2].deadline_after(now) or now, item[0])
        )
        disruption = DisruptionStatus(
            node=node,
            source=notice.source,
            signal=notice.signal,
            reason=notice.restart_class,
            seen=now,
            deadline=notice.deadline_after(now),
        )
        status.disruption = disruption
        workers = sorted(i for i, n, _ in noticed)
        until = f" by {disruption.deadline:%H:%M:%S}" if disruption.deadline else ""
        step.event(
            "Warning",
            "TerminationNotice",
            f"{node} goes{until} ({notice.signal}, {notice.source}); worker(s) "
            f"{', '.join(map(str, workers))} affected; checkpointing before the gang moves",
        )
    why = f"{disruption.node}: {disruption.signal}"
    saved = False
    if spec.checkpoint.on_interruption:
        plan = _checkpoint_before_move(
            step, alive, notice_seen=disruption.seen, notice_deadline=disruption.deadline
        )
        if plan is None:
            return
        if plan.timed_out:
            why += (
                f"; worker(s) {', '.join(plan.missing)} did not acknowledge checkpoint "
                f"{plan.request} in time"
            )
        else:
            saved = True  # every worker acknowledged the notice's checkpoint
    last = status.last_checkpoint
    since = (last.time if last is not None else None) or status.start_time
    lost = 0.0 if saved else (max(0.0, (now - since).total_seconds()) if since else None)
    affected = sorted({index for index, _, _ in noticed})
    if (
        replace_workers is not None
        and spec.rendezvous.replace_in_place
        and len(affected) < spec.workers
    ):
        assert status.placement is not None
        found = replace_workers(status.placement, affected)
        if not isinstance(found, str):
            placement = status.placement
            if (found.level, found.domain) != (placement.level, placement.domain):
                why += (
                    f"; no room in {placement.level} {placement.domain}, so the gang now spans "
                    f"{found.level} {found.domain} (topology.required allows it)"
                )
                placement.level, placement.domain = found.level, found.domain
            _replace_in_place(
                step, alive, price, dict(zip(affected, found.nodes, strict=True)), why, lost
            )
            return
        why += (
            f"; no room for worker(s) {', '.join(map(str, affected))} in the gang's span domain "
            f"or any wider one its topology.required allows ({found})"
        )
    interrupt(
        step, current, live, price, disruption.reason, why, lost, disruption.seen, disruption.source
    )


def _replace_in_place(
    step: Step,
    alive: dict[int, WorkerPod],
    price: Price | None,
    moves: dict[int, str],
    why: str,
    lost_work_seconds: float | None,
) -> None:
    """Move only the affected workers, inside the span domain; the others keep running and
    their rendezvous re-forms around the new ones. Same attempt: each new worker's pod gets the
    next replacement count in its name (the old pod may still be terminating on the noticed
    node), all are created gated and ungated together once all exist (binding of the replaced
    workers is all-or-nothing), and the status that records the new nodes is written first."""
    status, now, spec = step.status, step.now, step.job.spec
    placement = status.placement
    disruption = status.disruption
    assert placement is not None and disruption is not None
    moving = [alive[index] for index in sorted(moves)]
    # Their usage ends here; the attempt's live usage counts only the workers that stay.
    accounting.settle(
        status,
        accounting.live_usage(moving, spec.accelerators_per_worker, now, price),
        price,
    )
    step.settled.update(pod.name for pod in moving)
    counts = [placement.replacement(i) for i in range(len(placement.nodes))]
    for index, node in moves.items():
        placement.nodes[index] = node
        counts[index] += 1
    placement.replacements = counts
    placement.time = now  # the new workers get their own time to bind
    step.delete(moving)
    status.workers = count_workers(
        [pod for i, pod in alive.items() if i not in moves], spec.workers
    )
    step.decision.add(
        *(CreateWorker(i, status.attempt, moves[i], counts[i]) for i in sorted(moves))
    )
    # Nominated at once, as any new worker is (the room kept for it until it binds).
    step.decision.add(
        *(
            Nominate(worker_pod_name(step.job.name, i, status.attempt, counts[i]), moves[i])
            for i in sorted(moves)
        )
    )
    reason = disruption.reason
    kept = [str(i) for i in range(spec.workers) if i not in moves]
    where = f"{placement.level} {placement.domain}" if placement.level else f"pool {placement.pool}"
    message = (
        f"{why}; replacing worker(s) "
        + ", ".join(f"{i} ({alive[i].node} -> {node})" for i, node in sorted(moves.items()))
        + f" in place within {where}; worker(s) {', '.join(kept)} keep running"
    )
    last = status.last_checkpoint
    _record_interruption(
        step,
        reason,
        message,
        lost_work_seconds,
        disruption.seen,
        disruption.source,
        (
            f"the new worker(s) start from checkpoint {last.id} (step {last.step})"
            if last is not None
            else "no checkpoint yet"
        ),
    )


def policy_move(
    step: Step,
    current: Sequence[WorkerPod],
    alive: dict[int, WorkerPod],
    live: Charge,
    price: Price | None,
    spot_fits: capacity.SpotFits,
) -> bool:
    """The deadline spot policy on a running gang (every worker Running): when it chooses other
    capacity than the gang runs on, checkpoint (bounded by `checkpoint.timeoutSeconds`), then
    re-place the whole gang on that capacity, resuming from the checkpoint. Returns whether the
    step is taken by a move. Level-triggered: the move in progress is `status.capacity.type`
    differing from `placed`, since `status.capacity.since` (the checkpoint request is derived
    from it), so a restarted operator carries on where it was. It never flaps: leaving spot is
    the safety net's (on-demand for good), and going back to spot needs the hysteresis."""
    spec, status, now = step.job.spec, step.status, step.now
    decision = capacity.for_running(spec, status, step.job.created, now, spot_fits)
    if decision is None:
        return False
    chosen, changed = capacity.record(status, decision, now)
    status.capacity = chosen
    placed, target = chosen.placed, decision.capacity
    if target in (placed, "none"):
        if changed:
            step.event("Normal", "CapacityPolicy", decision.reason)
        if status.phase == "Checkpointing":
            step.phase("Running")  # a move given up while its checkpoint was asked for
        return False
    plan = _checkpoint_before_move(step, alive, demanded=chosen.since, demand_reason="policy")
    if plan is None:
        return True
    last = status.last_checkpoint
    made = RequestId.parse(last.id) if last is not None else None
    saved = made is not None and made.time >= chosen.since.replace(microsecond=0)
    why = f"moving the gang from {placed} to {target}: {decision.reason}"
    if not saved and plan.timed_out and plan.request is not None:
        why += (
            f"; worker(s) {', '.join(plan.missing)} did not acknowledge checkpoint "
            f"{plan.request} in time"
        )
    interrupt(
        step,
        current,
        live,
        price,
        "CapacityPolicy",
        why,
        0.0 if saved else None,
        chosen.since,
        "policy",
    )
    return True


def reform_failure(step: Step, pod: WorkerPod) -> tuple[RestartReason, str] | None:
    """A worker that kept running through an in-place replacement and fails before the gang runs
    again (its collective timed out while the rendezvous re-formed, say) is the interruption's
    fallout, not an application error: the whole gang starts again, and the interruption is not
    counted twice."""
    status = step.status
    restart = status.last_restart
    if (
        status.phase != "Recovering"
        or restart is None
        or restart.reason == "AppError"
        or pod.start_time is None
        or pod.start_time >= restart.time
    ):
        return None
    return restart.reason, (
        f"worker {pod.index} failed while the gang re-formed after an in-place replacement "
        f"({pod.failure}); restarting the whole gang"
    )


def interrupt(
    step: Step,
    current: Sequence[WorkerPod],
    live: Charge,
    price: Price | None,
    reason: RestartReason,
    message: str,
    lost_work_seconds: float | None = None,
    since: datetime | None = None,
    source: str | None = None,
    count: bool = True,
) -> None:
    """The gang moves because of the platform: counted in `interruptions` (unless it is part of
    one already counted), never against maxRestarts; it is placed again at once (no backoff),
    resuming from lastCheckpoint."""
    status, now = step.status, step.now
    end_attempt(step, current, live, price)
    if lost_work_seconds is None and reason != "AppError":
        last = status.last_checkpoint
        since_save = (last.time if last is not None else None) or status.start_time
        lost_work_seconds = max(0.0, (now - since_save).total_seconds()) if since_save else None
    last = status.last_checkpoint
    _record_interruption(
        step,
        reason,
        message,
        lost_work_seconds,
        since or now,
        source or (status.disruption.source if status.disruption else None),
        "re-placing the gang, "
        + (
            f"resuming from checkpoint {last.id} (step {last.step})"
            if last is not None
            else "no checkpoint yet: starting over"
        ),
        count=count,
    )
    step.enqueue()
    step.condition("Placed", "False", INTERRUPTED, message)


def _record_interruption(
    step: Step,
    reason: RestartReason,
    message: str,
    lost_work_seconds: float | None,
    since: datetime,
    source: str | None,
    resume: str,
    count: bool = True,
) -> None:
    """What every interruption records, however the gang moves: `interruptions` (unless this is
    part of one already counted), `lastRestart`, phase Recovering, Running=False, and one event
    saying what was lost and where the workers resume."""
    status = step.status
    if count:
        status.interruptions += 1
    status.last_restart = RestartRecord(
        reason=reason,
        time=step.now,
        message=message,
        lost_work_seconds=lost_work_seconds,
        since=since,
        source=source,
    )
    status.disruption = None
    status.requeue_state = None
    step.phase("Recovering")
    step.condition("Running", "False", reason, message)
    lost = f"; {lost_work_seconds:.0f}s of work lost" if lost_work_seconds else ""
    step.event(
        # The policy's move is planned (a checkpoint first): worth telling, not a warning.
        "Normal" if reason == "CapacityPolicy" else "Warning",
        reason,
        f"Interruption {status.interruptions} ({reason}): {message}; {resume}{lost} "
        "(interruptions do not count against maxRestarts)",
    )
