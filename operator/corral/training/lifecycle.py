"""One reconcile step of a TrainingJob: observed state in, a decision (typed actions) out.

The step is level-triggered: it looks only at the job (spec and the status it last wrote) and the
worker pods that exist, never at what happened before, so an operator killed between any two
actions and started again makes the same decisions. Invariants kept by the actions' order
(`corral.scheduling.actions.ORDER`: status first, then pods):
- pods of the current attempt exist only while `status.placement` records their nodes;
- pods of another attempt are leftovers and are deleted;
- usage of an attempt is settled into `status.accounting` before its pods are deleted.

Writes are bounded: a step on an unchanged job and unchanged pods returns the status it read.
Usage (deviceHours, cost) grows with the clock, so it is brought up to date only when the caller
asks (`refresh_usage`, a periodic timer) and when an attempt ends or the phase changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from corral.api.conditions import get_condition, set_condition
from corral.api.meta import ConditionStatus
from corral.api.names import worker_pod_name
from corral.api.trainingjob import (
    DisruptionStatus,
    PlacementStatus,
    RequeueState,
    RestartReason,
    RestartRecord,
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingPhase,
    WorkerCounts,
)
from corral.cost.charges import ZERO, Charge
from corral.disruption import checkpoints
from corral.disruption.notices import Notice
from corral.fleet.objects import Overcommit
from corral.scheduling.actions import (
    AnnotatePod,
    CallHook,
    CreateWorker,
    Decision,
    DeletePod,
    Emit,
    EnsureService,
    Nominate,
    ReleaseAssumed,
    RequeueAfter,
    Ungate,
    WantsPlacement,
)
from corral.scheduling.queue import Inadmissible
from corral.sdk.protocol import REQUESTED as CHECKPOINT_REQUESTED
from corral.training import accounting
from corral.training.accounting import Price
from corral.training.pods import WorkerPod
from corral.training.replacement import ReplaceWorkers

NodeProblem = Callable[[str], str | None]
"""Why a planned node can no longer take a worker (gone, NotReady, cordoned), or None."""
NodeNotice = Callable[[str], Notice | None]
"""The binding termination notice on a node (corral.disruption.notices), or None."""


def _no_notice(_: str) -> Notice | None:
    return None


Overcommitted = Callable[[str], Overcommit | None]
"""Whether the pods counted on a node ask for more than it offers (room planned for a worker
was taken), and by whom; None when everything fits."""


def _nothing_overcommitted(node: str) -> Overcommit | None:
    return None


TERMINAL: tuple[TrainingPhase, ...] = ("Succeeded", "Failed")
ACTIVE: tuple[TrainingPhase, ...] = ("Placing", "Running", "Checkpointing", "Recovering")
"""Phases in which workers hold devices (usage grows)."""

ADMITTED_MESSAGE = "the job passed admission"

INTERRUPTED = "Interrupted"
"""The Placed condition's reason while an interrupted gang waits to be placed again."""
INTERRUPTED_WAITING = "interrupted, waiting for capacity"

REPLACE_BACKOFF_SECONDS = 5.0
REPLACE_BACKOFF_CAP_SECONDS = 300.0
"""A gang re-placed n times in a row waits min(cap, base * 2^(n-1)) before its next placement."""


@dataclass(frozen=True)
class JobView:
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    spec: TrainingJobSpec
    status: TrainingJobStatus

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def replace_backoff(count: int) -> float:
    return float(min(REPLACE_BACKOFF_CAP_SECONDS, REPLACE_BACKOFF_SECONDS * 2 ** max(0, count - 1)))


class _Step:
    """Mutable scratch state of one reconcile step."""

    def __init__(self, job: JobView, now: datetime):
        self.job = job
        self.now = now
        self.status = job.status.model_copy(deep=True)
        self.status.observed_generation = job.generation
        self.decision = Decision(status=self.status)
        self.settled: set[str] = set()
        """Pods of the current attempt whose usage was settled in this step (workers replaced
        in place): the attempt's live usage no longer counts them."""

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.now, self.job.generation
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.decision.add(Emit(type_, reason, message))

    def phase(self, phase: TrainingPhase) -> None:
        self.status.phase = phase

    def delete(self, pods: Sequence[WorkerPod]) -> None:
        self.decision.add(*(DeletePod(pod.name, pod.uid) for pod in pods if not pod.deleting))

    def enqueue(self) -> None:
        self.status.placement = None
        self.status.queued_since = self.now
        self.decision.add(WantsPlacement())


def _count(pods: Sequence[WorkerPod], total: int) -> WorkerCounts:
    return WorkerCounts(
        total=total,
        bound=sum(1 for pod in pods if pod.node),
        running=sum(1 for pod in pods if pod.phase == "Running"),
        succeeded=sum(1 for pod in pods if pod.phase == "Succeeded"),
        failed=sum(1 for pod in pods if pod.phase == "Failed"),
    )


def _end_attempt(
    step: _Step, current: Sequence[WorkerPod], live: Charge, price: Price | None
) -> None:
    """Settle the attempt's usage, delete its pods, and move on to the next attempt."""
    accounting.settle(step.status, live, price)
    step.delete(current)
    step.decision.drop(CreateWorker)
    step.decision.drop(Ungate)
    step.decision.add(ReleaseAssumed(step.status.attempt))
    step.status.attempt += 1
    step.status.placement = None


def reconcile(
    job: JobView,
    pods: Sequence[WorkerPod],
    now: datetime,
    node_problem: NodeProblem,
    price: Price | None,
    refresh_usage: bool = False,
    node_notice: NodeNotice = _no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
) -> Decision:
    """The next step for one job. `pods` are the worker pods the job owns (by UID).
    `replace_workers` places workers of a running gang anew inside its span domain (in-place
    replacement after a notice); without it a notice moves the whole gang."""
    step = _Step(job, now)
    status = step.status
    current = [pod for pod in pods if _current(status, pod)]
    names = {pod.name for pod in current}
    step.delete([pod for pod in pods if pod.name not in names])
    status.workers = _count(current, job.spec.workers)
    if status.phase in TERMINAL:
        # Usage is frozen at the end. Free the devices of anything still running; keep finished
        # pods for their logs.
        step.delete([p for p in current if not p.terminated])
        return step.decision
    live = accounting.live_usage(current, job.spec.accelerators_per_worker, now, price)
    phase, attempt = status.phase, status.attempt
    _decide(step, current, live, node_problem, price, node_notice, overcommitted, replace_workers)
    if refresh_usage or status.phase != phase:
        # An attempt that ended was settled; the new one has used nothing yet. A job that just
        # finished keeps these figures for good. Workers replaced in place were settled alone.
        if step.settled and status.attempt == attempt:
            kept = [pod for pod in current if pod.name not in step.settled]
            live = accounting.live_usage(kept, job.spec.accelerators_per_worker, now, price)
        accounting.refresh(status, live if status.attempt == attempt else ZERO, price)
    return step.decision


def _current(status: TrainingJobStatus, pod: WorkerPod) -> bool:
    """A pod of the current attempt, and the current incarnation of its index (a worker
    replaced in place leaves an older one behind on the noticed node)."""
    if pod.restart != status.attempt:
        return False
    placement = status.placement
    expected = placement.replacement(pod.index) if placement is not None else 0
    return pod.replacement == expected


def _decide(
    step: _Step,
    current: Sequence[WorkerPod],
    live: Charge,
    node_problem: NodeProblem,
    price: Price | None,
    node_notice: NodeNotice = _no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
) -> None:
    job, now = step.job, step.now
    spec, status = job.spec, step.status
    if spec.suspend:
        if status.phase != "Suspended":
            _end_attempt(step, current, live, price)
            status.queued_since = None
            status.requeue_state = None
            step.phase("Suspended")
            step.condition(
                "Suspended", "True", "Suspended", "spec.suspend is true: workers deleted"
            )
            step.condition("Running", "False", "Suspended", "the job is suspended")
            step.event("Normal", "Suspended", f"deleted {len(current)} worker(s); the job is kept")
        return
    if status.phase == "Suspended":
        step.condition("Suspended", "False", "Resumed", "spec.suspend is false")
        step.event("Normal", "Resumed", "queued for placement again")
        step.phase("Queued")
        step.enqueue()
        return

    used = status.model_copy()
    accounting.refresh(used, live, price)
    over_budget = accounting.budget_exceeded(spec, used)
    if over_budget:
        _end_attempt(step, current, live, price)
        _fail(step, "BudgetExceeded", f"The job {over_budget}")
        return

    placement = status.placement
    if placement is None:
        # Waiting for the scheduling pass; pods of this attempt cannot exist without a placement.
        step.delete(current)
        if status.phase == "Pending":
            step.phase("Queued")
        if status.queued_since is None:
            status.queued_since = job.created
        requeue = status.requeue_state
        if requeue is not None and requeue.requeue_at is not None and requeue.requeue_at > now:
            step.decision.add(RequeueAfter((requeue.requeue_at - now).total_seconds()))
        else:
            step.decision.add(WantsPlacement())
        return

    _reconcile_placed(
        step,
        current,
        live,
        placement,
        node_problem,
        price,
        node_notice,
        overcommitted,
        replace_workers,
    )


def reject_pods(
    job: JobView, pods: Sequence[WorkerPod], message: str, now: datetime, price: Price | None
) -> Decision:
    """The API server refused to create the job's worker pods (an invalid template, or an
    admission policy such as Pod Security): retrying cannot help, so the job fails with the API
    server's words, and the workers already made are removed."""
    step = _Step(job, now)
    current = [pod for pod in pods if pod.restart == step.status.attempt]
    live = accounting.live_usage(current, job.spec.accelerators_per_worker, now, price)
    _end_attempt(step, current, live, price)
    _fail(step, "PodRejected", f"the API server refused the worker pods: {message}")
    return step.decision


def _fail(step: _Step, reason: str, message: str) -> None:
    step.phase("Failed")
    step.status.completion_time = step.now
    step.status.requeue_state = None
    step.condition("Failed", "True", reason, message)
    step.condition("Running", "False", reason, message)
    step.event("Warning", reason, message)


def _replace(
    step: _Step,
    current: Sequence[WorkerPod],
    live: Charge,
    price: Price | None,
    why: str,
    race: bool = False,
) -> None:
    """Re-place the whole gang, after a backoff that grows with each re-placement in a row. A
    lost race (`race`) is re-placed at once the first time: the snapshot already shows what took
    the room, so the next plan avoids it; a race lost again backs off like any re-placement."""
    _end_attempt(step, current, live, price)
    step.phase("Recovering" if step.status.start_time else "Queued")
    step.enqueue()
    count = (step.status.requeue_state.count if step.status.requeue_state else 0) + 1
    if not race:
        delay = replace_backoff(count)
    else:
        delay = 0.0 if count == 1 else replace_backoff(count - 1)
    step.status.requeue_state = RequeueState(
        count=count, requeue_at=step.now + timedelta(seconds=delay)
    )
    if delay > 0:
        step.decision.drop(WantsPlacement)
        step.decision.add(RequeueAfter(delay))
    step.condition("Placed", "False", "RaceLost" if race else "Replacing", why)
    when = "now" if delay == 0 else f"in {delay:g}s"
    step.event(
        "Warning",
        "RaceLost" if race else "Replaced",
        f"Re-placing the whole gang {when} (re-placement {count}): {why}",
    )


def _reconcile_placed(
    step: _Step,
    current: Sequence[WorkerPod],
    live: Charge,
    placement: PlacementStatus,
    node_problem: NodeProblem,
    price: Price | None,
    node_notice: NodeNotice = _no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
) -> None:
    spec, status, now = step.job.spec, step.status, step.now
    decision = step.decision
    decision.add(EnsureService())
    alive = {pod.index: pod for pod in current if not pod.deleting}
    running = status.phase in ("Running", "Checkpointing")

    failed = sorted((pod for pod in current if pod.phase == "Failed"), key=lambda p: p.index)
    if failed:
        first = failed[0]
        interruption = _interruption_of(step, first, node_problem, node_notice)
        if interruption is not None:
            _interrupt(step, current, live, price, *interruption)
            return
        fallout = _reform_failure(step, first)
        if fallout is not None:
            # Part of the interruption already counted: the whole gang starts again.
            _interrupt(step, current, live, price, *fallout, count=False)
            return
        why = f"worker {first.index} failed: {first.failure}"
        if status.restarts < spec.max_restarts:
            _end_attempt(step, current, live, price)
            status.restarts += 1
            status.last_restart = RestartRecord(reason="AppError", time=now, message=why)
            step.phase("Recovering")
            step.enqueue()
            step.condition("Running", "False", "GangRestarting", why)
            step.event(
                "Warning",
                "Restarted",
                f"Restarting the gang ({status.restarts}/{spec.max_restarts}): {why}",
            )
        else:
            # Failed pods stay for their logs; the others are stopped to free their devices.
            step.delete([p for p in current if not p.terminated])
            _fail(step, "BackoffLimitExceeded", f"{why}; maxRestarts={spec.max_restarts} reached")
        return

    if len(alive) == spec.workers and all(pod.phase == "Succeeded" for pod in alive.values()):
        step.phase("Succeeded")
        status.completion_time = now
        step.condition(
            "Succeeded", "True", "AllWorkersSucceeded", f"{spec.workers} worker(s) succeeded"
        )
        step.condition("Running", "False", "Completed", "the job completed")
        step.event("Normal", "Succeeded", f"All {spec.workers} worker(s) succeeded")
        return

    shape = (len(placement.nodes), placement.devices_per_worker or spec.accelerators_per_worker)
    if shape != (spec.workers, spec.accelerators_per_worker):
        _end_attempt(step, current, live, price)
        step.phase("Recovering" if status.start_time else "Queued")
        step.enqueue()
        why = (
            f"the spec changed from {shape[0]} x {shape[1]} to "
            f"{spec.workers} x {spec.accelerators_per_worker} devices"
        )
        step.condition("Placed", "False", "Replacing", why)
        step.event("Normal", "Replaced", f"Re-placing the whole gang: {why}")
        return

    # A planned node that went bad before its worker was bound invalidates the plan; once the
    # gang ran, a worker gone with its node is an interruption (the gang moves, no backoff).
    for index in range(spec.workers):
        pod = alive.get(index)
        if pod is not None and pod.node:
            continue
        node = placement.nodes[index]
        notice = node_notice(node)
        problem = node_problem(node) or (notice.signal if notice is not None else None)
        if problem and running:
            reason = _reason_for(status, node, notice, "NodeFailure")
            _interrupt(step, current, live, price, reason, f"worker {index} on {node}: {problem}")
            return
        if problem:
            _replace(step, current, live, price, f"worker {index}: {problem}")
            return

    if running and len(alive) == spec.workers and all(pod.node for pod in alive.values()):
        noticed = [
            (index, node, notice)
            for index, node in enumerate(placement.nodes)
            if (notice := node_notice(node)) is not None
        ]
        if noticed:
            _on_notice(step, current, alive, live, price, noticed, replace_workers)
            return
        if status.disruption is not None:
            # The notice was withdrawn (Karpenter could not replace the node, say): carry on.
            step.event(
                "Normal", "NoticeWithdrawn", f"the notice on {status.disruption.node} is gone"
            )
            status.disruption = None
            step.phase("Running")
    # A lost race: the room planned for a worker not bound yet was taken (kube-scheduler says so
    # for an ungated worker, or the snapshot shows its node overcommitted by someone else's
    # pods). Waiting for placementTimeoutSeconds would leave the bound part of the gang holding
    # devices, and ungating now would bind part of it: re-place the whole gang at once.
    lost = _lost_race(step.job, status.attempt, placement, alive, overcommitted)
    if lost:
        _replace(step, current, live, price, lost, race=True)
        return

    missing = [index for index in range(spec.workers) if index not in alive]
    if missing:
        decision.add(
            *(
                CreateWorker(i, status.attempt, placement.nodes[i], placement.replacement(i))
                for i in missing
            )
        )
        # Each new worker is nominated to its node at once (after all are created): from then on
        # kube-scheduler keeps that room for it against pods of equal or lower priority.
        decision.add(
            *(
                Nominate(
                    worker_pod_name(step.job.name, i, status.attempt, placement.replacement(i)),
                    placement.nodes[i],
                )
                for i in missing
            )
        )
        if len(missing) < spec.workers and any(pod.node for pod in alive.values()):
            step.event(
                "Warning",
                "WorkerRecreated",
                f"Recreating worker(s) {', '.join(map(str, missing))} on the same plan",
            )
            placement.time = now  # the recreated workers get their own time to bind
    elif any(pod.gated for pod in alive.values()):
        # Every pod of the gang exists: let kube-scheduler bind them all at once (a nomination
        # lost to an operator restart is written first).
        gated = [pod for pod in sorted(alive.values(), key=_index) if pod.gated]
        decision.add(
            *(
                Nominate(pod.name, placement.nodes[pod.index])
                for pod in gated
                if pod.nominated_node != placement.nodes[pod.index]
            )
        )
        decision.add(*(Ungate(pod.name) for pod in gated))

    unbound = missing or [pod.index for pod in alive.values() if not pod.node]
    if unbound:
        started = placement.time or now
        waited = (now - started).total_seconds()
        if waited >= spec.placement_timeout_seconds:
            _replace(
                step,
                current,
                live,
                price,
                f"worker(s) {', '.join(map(str, sorted(unbound)))} not bound within "
                f"{spec.placement_timeout_seconds}s (capacity taken meanwhile?)",
            )
            return
        decision.add(RequeueAfter(spec.placement_timeout_seconds - waited))
        if status.phase not in ("Placing", "Recovering"):
            step.phase("Placing")
        return

    all_running = all(pod.phase in ("Running", "Succeeded") for pod in alive.values())
    if all_running and status.phase != "Running":
        step.phase("Running")
        status.requeue_state = None
        if status.start_time is None:
            status.start_time = now
        nodes = ", ".join(placement.nodes[:4]) + (" ..." if len(placement.nodes) > 4 else "")
        step.condition(
            "Running",
            "True",
            "AllWorkersRunning",
            f"{spec.workers} worker(s) running on {nodes}",
        )
        step.event("Normal", "Running", f"All {spec.workers} worker(s) running")
    if all(pod.phase == "Running" for pod in alive.values()):
        _periodic_checkpoint(step, alive)


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
        for pod in sorted(alive.values(), key=_index)
    ]


def _hook_actions(step: _Step, spec: TrainingJobSpec, plan: checkpoints.CheckpointPlan) -> None:
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


def _periodic_checkpoint(step: _Step, alive: dict[int, WorkerPod]) -> None:
    """Periodic checkpoint requests of a running gang (`checkpoint.intervalSeconds`), through
    the same protocol as on a notice. Writes stay bounded: the request is annotations on the
    pods, the status changes only when a checkpoint completes (`lastCheckpoint`) or a request
    times out (condition `Checkpointed`, once per request); a timer wakes the job when the next
    request is due or the wait ends."""
    spec, status, now = step.job.spec, step.status, step.now
    policy = spec.checkpoint
    plan = checkpoints.plan(
        policy,
        _worker_views(alive),
        status.last_checkpoint,
        now=now,
        running_since=_run_start(alive),
    )
    status.last_checkpoint = plan.last_checkpoint
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
    if plan.next_check is not None:
        step.decision.add(RequeueAfter(max(0.5, (plan.next_check - now).total_seconds())))


def _checkpoint_condition(step: _Step, state: ConditionStatus, reason: str, message: str) -> None:
    """Condition `Checkpointed`: an event when its status or reason changes (not for every
    periodic checkpoint)."""
    before = get_condition(step.status.conditions, "Checkpointed")
    step.condition("Checkpointed", state, reason, message)
    if before is None or before.status != state or before.reason != reason:
        step.event("Normal" if state == "True" else "Warning", reason, message)


def _index(pod: WorkerPod) -> int:
    return pod.index


def _reason_for(
    status: TrainingJobStatus, node: str | None, notice: Notice | None, default: RestartReason
) -> RestartReason:
    if status.disruption is not None and status.disruption.node == node:
        return status.disruption.reason
    if notice is not None:
        return notice.restart_class
    return default


def _interruption_of(
    step: _Step, pod: WorkerPod, node_problem: NodeProblem, node_notice: NodeNotice
) -> tuple[RestartReason, str] | None:
    """A failed worker that was taken by the platform (its node noticed, lost, or the pod marked
    DisruptionTarget) is an interruption, not an application error."""
    node = pod.node or pod.planned_node
    notice = node_notice(node) if node else None
    if pod.disruption is not None:
        reason = _reason_for(step.status, node, notice, "Maintenance")
        return (
            reason,
            f"worker {pod.index} on {node}: terminated by the platform ({pod.disruption})",
        )
    if notice is not None or (
        step.status.disruption is not None and step.status.disruption.node == node
    ):
        reason = _reason_for(step.status, node, notice, "Maintenance")
        signal = notice.signal if notice is not None else step.status.disruption.signal  # type: ignore[union-attr]
        return reason, f"worker {pod.index} on {node}: {signal}"
    problem = node_problem(node) if node else None
    if problem:
        return "NodeFailure", f"worker {pod.index} on {node}: {problem}"
    return None


def _on_notice(
    step: _Step,
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
        plan = checkpoints.plan(
            spec.checkpoint,
            _worker_views(alive),
            status.last_checkpoint,
            now=now,
            running_since=_run_start(alive),
            notice_seen=disruption.seen,
            notice_deadline=disruption.deadline,
        )
        status.last_checkpoint = plan.last_checkpoint
        _hook_actions(step, spec, plan)
        if plan.waiting and plan.wait_until is not None:
            if status.phase != "Checkpointing":
                step.phase("Checkpointing")
            step.decision.add(RequeueAfter(max(0.5, (plan.wait_until - now).total_seconds())))
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
    if replace_workers is not None and len(affected) < spec.workers:
        assert status.placement is not None
        found = replace_workers(status.placement, affected)
        if not isinstance(found, str):
            _replace_in_place(
                step, alive, price, dict(zip(affected, found, strict=True)), why, lost
            )
            return
        why += (
            f"; no room for worker(s) {', '.join(map(str, affected))} in the gang's span domain "
            f"({found})"
        )
    _interrupt(
        step, current, live, price, disruption.reason, why, lost, disruption.seen, disruption.source
    )


def _replace_in_place(
    step: _Step,
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
    status.workers = _count([pod for i, pod in alive.items() if i not in moves], spec.workers)
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


def _reform_failure(step: _Step, pod: WorkerPod) -> tuple[RestartReason, str] | None:
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


def _interrupt(
    step: _Step,
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
    _end_attempt(step, current, live, price)
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
    step: _Step,
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
        "Warning",
        reason,
        f"Interruption {status.interruptions} ({reason}): {message}; {resume}{lost} "
        "(interruptions do not count against maxRestarts)",
    )


def _lost_race(
    job: JobView,
    attempt: int,
    placement: PlacementStatus,
    alive: dict[int, WorkerPod],
    overcommitted: Overcommitted,
) -> str | None:
    """Why the gang's plan no longer holds because another pod took a planned room, naming the
    worker, its node and what took it; None when every unbound worker still has its room."""
    ours = {
        (job.namespace, worker_pod_name(job.name, index, attempt))
        for index in range(len(placement.nodes))
    }
    for index, node in enumerate(placement.nodes):
        pod = alive.get(index)
        if pod is not None and pod.node:
            continue  # bound: its room is its own
        over = overcommitted(node)
        others = (
            [f"{ns}/{name}" for ns, name in over.pods if (ns, name) not in ours] if over else []
        )
        taken = (
            f"; node {node} now holds {', '.join(others[:3])}"
            + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            + f" ({over.resource}: {over.requested} requested of {over.offered})"
            if over and others
            else ""
        )
        if pod is not None and pod.unschedulable:
            return f"worker {index} cannot bind to node {node}: {pod.unschedulable}{taken}"
        if taken:
            return f"worker {index} lost the room planned on node {node}{taken}"
    return None


def admit(
    job: JobView,
    pool: str,
    level: str | None,
    domain: str | None,
    nodes: list[str],
    explanation: str,
    now: datetime,
) -> TrainingJobStatus:
    """The status that records a placement decision; pods follow in the next reconcile."""
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.generation
    status.placement = PlacementStatus(
        pool=pool,
        level=level,
        domain=domain,
        nodes=nodes,
        time=now,
        devices_per_worker=job.spec.accelerators_per_worker,
    )
    waited_since = status.queued_since or job.created
    status.queued_seconds = round(
        status.queued_seconds + max(0.0, (now - waited_since).total_seconds()), 3
    )
    status.queued_since = None
    status.deferred_until = None
    if status.phase in ("Pending", "Queued"):
        status.phase = "Placing"
    _admitted(status, job, now)
    status.conditions = set_condition(
        status.conditions, "Placed", "True", "GangPlaced", explanation, now, job.generation
    )
    return status


def _admitted(status: TrainingJobStatus, job: JobView, now: datetime) -> None:
    status.conditions = set_condition(
        status.conditions,
        "Admitted",
        "True",
        "Admitted",
        ADMITTED_MESSAGE,
        now,
        job.generation,
    )


def defer(
    job: JobView, until: datetime, reason: str, now: datetime
) -> tuple[TrainingJobStatus, Emit | None]:
    """The status of a job that waits for a lower-carbon window (spec.carbonDeferral) until
    `until`: Queued, `status.deferredUntil` set, `Placed=False` (CarbonDeferred) saying why; one
    event per window."""
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.generation
    if status.phase == "Pending":
        status.phase = "Queued"
    if status.queued_since is None:
        status.queued_since = job.created
    before = status.deferred_until
    status.deferred_until = until
    _admitted(status, job, now)
    status.conditions = set_condition(
        status.conditions, "Placed", "False", "CarbonDeferred", reason, now, job.generation
    )
    return status, (Emit("Normal", "CarbonDeferred", reason) if before != until else None)


def refusal_unchanged(job: JobView, reason: str) -> bool:
    """Whether `refuse(job, reason, permanent=False, ...)` would return the job's own status (and
    no event): the job already waits, told exactly this. A pass over a long queue skips these,
    which keeps its cost in what changed rather than in how many jobs wait."""
    status, generation = job.status, job.generation
    if status.phase == "Pending" or status.queued_since is None:
        return False
    if status.observed_generation != generation:
        return False
    admitted = get_condition(status.conditions, "Admitted")
    placed = get_condition(status.conditions, "Placed")
    return (
        admitted is not None
        and (admitted.status, admitted.reason, admitted.message, admitted.observed_generation)
        == ("True", "Admitted", ADMITTED_MESSAGE, generation)
        and placed is not None
        and (placed.status, placed.reason, placed.message, placed.observed_generation)
        == ("False", "NoFit", reason, generation)
    )


def refuse(
    job: JobView, reason: str, permanent: bool, now: datetime
) -> tuple[TrainingJobStatus, Emit | None]:
    """The status of a job the solver could not place: Failed when it can never fit, else Queued."""
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.generation
    if permanent:
        status.phase = "Failed"
        status.completion_time = now
        for type_ in ("Admitted", "Failed"):
            status.conditions = set_condition(
                status.conditions,
                type_,
                "False" if type_ == "Admitted" else "True",
                "Unschedulable",
                reason,
                now,
                job.generation,
            )
        return status, Emit("Warning", "Unschedulable", reason)
    before = next((c for c in status.conditions if c.type == "Placed"), None)
    if status.phase == "Pending":
        status.phase = "Queued"
    if status.queued_since is None:
        status.queued_since = job.created
    _admitted(status, job, now)
    why, message = "NoFit", reason
    if before is not None and before.reason == INTERRUPTED:
        # An interrupted gang keeps saying so while it waits (it keeps its creation time, so it
        # stays ahead of newer jobs of its priority); the solver's reason follows.
        restart = status.last_restart
        cause = restart.reason if restart is not None else "an interruption"
        why, message = INTERRUPTED, f"{INTERRUPTED_WAITING} ({cause}): {reason}"
    status.conditions = set_condition(
        status.conditions, "Placed", "False", why, message, now, job.generation
    )
    # One Queued event per stay in the queue; the condition carries the latest reason (its numbers
    # change with every freed device, and an event each time would flood `kubectl describe`).
    changed = (
        before is None
        or before.reason != why
        or (why == INTERRUPTED and not before.message.startswith(INTERRUPTED_WAITING))
    )
    return status, (Emit("Normal", "Queued", message) if changed else None)


def wait_inadmissible(
    job: JobView, refusal: Inadmissible, now: datetime
) -> tuple[TrainingJobStatus, Emit | None]:
    """The status of a job refused before placement (quota, pool access, budget, an unknown
    PriorityClass, no node it could ever use): Queued, holding nothing, the reason in the
    conditions; a Warning event each time the reason changes."""
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.generation
    before = next((c for c in status.conditions if c.type == "Placed"), None)
    if status.phase == "Pending":
        status.phase = "Queued"
    if status.queued_since is None:
        status.queued_since = job.created
    if refusal.admitted:
        _admitted(status, job, now)
    else:
        status.conditions = set_condition(
            status.conditions,
            "Admitted",
            "False",
            refusal.reason,
            refusal.message,
            now,
            job.generation,
        )
    status.conditions = set_condition(
        status.conditions, "Placed", "False", refusal.reason, refusal.message, now, job.generation
    )
    changed = before is None or before.reason != refusal.reason
    return status, (Emit("Warning", refusal.reason, refusal.message) if changed else None)
