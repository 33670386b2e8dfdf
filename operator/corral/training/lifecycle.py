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

Interruptions (notices, node loss, in-place replacement) and checkpoint requests are decided in
`training.recovery`; the step's scratch state (`Step`) is in `training.step`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from corral.api.conditions import get_condition, set_condition
from corral.api.names import worker_pod_name
from corral.api.trainingjob import (
    CapacityStatus,
    PlacementStatus,
    RequeueState,
    RestartRecord,
    TrainingJobStatus,
    TrainingPhase,
)
from corral.cost.charges import ZERO, Charge
from corral.disruption.notices import NodeNotice, no_notice
from corral.fleet.memo import kept
from corral.fleet.objects import Overcommit
from corral.scheduling.actions import (
    CreateWorker,
    Decision,
    Emit,
    EnsureService,
    Nominate,
    RequeueAfter,
    Ungate,
    WantsPlacement,
)
from corral.scheduling.queue import Inadmissible
from corral.training import accounting, recovery
from corral.training.accounting import Price
from corral.training.capacity import SpotFits
from corral.training.pods import WorkerPod
from corral.training.replacement import ReplaceWorkers
from corral.training.step import (
    JobView,
    NodeProblem,
    Step,
    count_workers,
    end_attempt,
    worker_index,
)

Overcommitted = Callable[[str], Overcommit | None]
"""Whether the pods counted on a node ask for more than it offers (room planned for a worker
was taken), and by whom; None when everything fits."""


def _nothing_overcommitted(node: str) -> Overcommit | None:
    return None


TERMINAL: tuple[TrainingPhase, ...] = ("Succeeded", "Failed")
ACTIVE: tuple[TrainingPhase, ...] = ("Placing", "Running", "Checkpointing", "Recovering")
"""Phases in which workers hold devices (usage grows)."""

ADMITTED_MESSAGE = "the job passed admission"

REPLACE_BACKOFF_SECONDS = 5.0
REPLACE_BACKOFF_CAP_SECONDS = 300.0
"""A gang re-placed n times in a row waits min(cap, base * 2^(n-1)) before its next placement."""


def replace_backoff(count: int) -> float:
    return float(min(REPLACE_BACKOFF_CAP_SECONDS, REPLACE_BACKOFF_SECONDS * 2 ** max(0, count - 1)))


def reconcile(
    job: JobView,
    pods: Sequence[WorkerPod],
    now: datetime,
    node_problem: NodeProblem,
    price: Price | None,
    refresh_usage: bool = False,
    node_notice: NodeNotice = no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
    spot_fits: SpotFits | None = None,
) -> Decision:
    """The next step for one job. `pods` are the worker pods the job owns (by UID).
    `replace_workers` places workers of a running gang anew inside its span domain (in-place
    replacement after a notice); without it a notice moves the whole gang. `spot_fits` says
    whether the gang would fit on spot now: with it, a running gang under the deadline spot
    policy moves when the policy changes its mind."""
    step = Step(job, now)
    status = step.status
    current = [pod for pod in pods if _current(status, pod)]
    names = {pod.name for pod in current}
    step.delete([pod for pod in pods if pod.name not in names])
    status.workers = count_workers(current, job.spec.workers)
    if status.phase in TERMINAL:
        # Usage is frozen at the end. Free the devices of anything still running; keep finished
        # pods for their logs.
        step.delete([p for p in current if not p.terminated])
        return step.decision
    live = accounting.live_usage(current, job.spec.accelerators_per_worker, now, price)
    phase, attempt = status.phase, status.attempt
    _decide(
        step,
        current,
        live,
        node_problem,
        price,
        node_notice,
        overcommitted,
        replace_workers,
        spot_fits,
    )
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
    step: Step,
    current: Sequence[WorkerPod],
    live: Charge,
    node_problem: NodeProblem,
    price: Price | None,
    node_notice: NodeNotice = no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
    spot_fits: SpotFits | None = None,
) -> None:
    job, now = step.job, step.now
    spec, status = job.spec, step.status
    if spec.suspend:
        if status.phase != "Suspended":
            end_attempt(step, current, live, price)
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
        end_attempt(step, current, live, price)
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
        spot_fits,
    )


def reject_pods(
    job: JobView, pods: Sequence[WorkerPod], message: str, now: datetime, price: Price | None
) -> Decision:
    """The API server refused to create the job's worker pods (an invalid template, or an
    admission policy such as Pod Security): retrying cannot help, so the job fails with the API
    server's words, and the workers already made are removed."""
    step = Step(job, now)
    current = [pod for pod in pods if pod.restart == step.status.attempt]
    live = accounting.live_usage(current, job.spec.accelerators_per_worker, now, price)
    end_attempt(step, current, live, price)
    _fail(step, "PodRejected", f"the API server refused the worker pods: {message}")
    return step.decision


def quota_refused(
    job: JobView, pods: Sequence[WorkerPod], message: str, now: datetime, price: Price | None
) -> Decision:
    """A ResourceQuota had no room for a worker the pass had admitted (its count was behind the
    API server's, or pods of other workloads took the room since). Not the job's fault, and it
    passes: the workers already made are removed and the gang goes back to the queue after the
    re-placement backoff, where admission waits for the quota (a full quota refused again backs
    off further). No restart is charged."""
    step = Step(job, now)
    current = [pod for pod in pods if pod.restart == step.status.attempt]
    live = accounting.live_usage(current, job.spec.accelerators_per_worker, now, price)
    _replace(
        step,
        current,
        live,
        price,
        f"a ResourceQuota refused a worker: {message}",
        reason="QuotaExceeded",
        event="QuotaExceeded",
    )
    return step.decision


def _fail(step: Step, reason: str, message: str) -> None:
    step.phase("Failed")
    step.status.completion_time = step.now
    step.status.requeue_state = None
    step.condition("Failed", "True", reason, message)
    step.condition("Running", "False", reason, message)
    step.event("Warning", reason, message)


def _replace(
    step: Step,
    current: Sequence[WorkerPod],
    live: Charge,
    price: Price | None,
    why: str,
    race: bool = False,
    reason: str = "Replacing",
    event: str = "Replaced",
) -> None:
    """Re-place the whole gang, after a backoff that grows with each re-placement in a row. A
    lost race (`race`) is re-placed at once the first time: the snapshot already shows what took
    the room, so the next plan avoids it; a race lost again backs off like any re-placement.
    `reason` and `event` name the cause on the Placed condition and the Warning event."""
    if race:
        reason = event = "RaceLost"
    end_attempt(step, current, live, price)
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
    step.condition("Placed", "False", reason, why)
    when = "now" if delay == 0 else f"in {delay:g}s"
    step.event("Warning", event, f"Re-placing the whole gang {when} (re-placement {count}): {why}")


def _reconcile_placed(
    step: Step,
    current: Sequence[WorkerPod],
    live: Charge,
    placement: PlacementStatus,
    node_problem: NodeProblem,
    price: Price | None,
    node_notice: NodeNotice = no_notice,
    overcommitted: Overcommitted = _nothing_overcommitted,
    replace_workers: ReplaceWorkers | None = None,
    spot_fits: SpotFits | None = None,
) -> None:
    spec, status, now = step.job.spec, step.status, step.now
    decision = step.decision
    decision.add(EnsureService())
    alive = {pod.index: pod for pod in current if not pod.deleting}
    running = status.phase in ("Running", "Checkpointing")

    failed = sorted((pod for pod in current if pod.phase == "Failed"), key=lambda p: p.index)
    if failed:
        first = failed[0]
        interruption = recovery.interruption_of(step, first, node_problem, node_notice)
        if interruption is not None:
            recovery.interrupt(step, current, live, price, *interruption)
            return
        fallout = recovery.reform_failure(step, first)
        if fallout is not None:
            # Part of the interruption already counted: the whole gang starts again.
            recovery.interrupt(step, current, live, price, *fallout, count=False)
            return
        why = f"worker {first.index} failed: {first.failure}"
        if status.restarts < spec.max_restarts:
            end_attempt(step, current, live, price)
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
        end_attempt(step, current, live, price)
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
            reason = recovery.reason_for(status, node, notice, "NodeFailure")
            recovery.interrupt(
                step, current, live, price, reason, f"worker {index} on {node}: {problem}"
            )
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
            recovery.on_notice(step, current, alive, live, price, noticed, replace_workers)
            return
        if status.disruption is not None:
            # The notice was withdrawn (Karpenter could not replace the node, say): carry on.
            step.event(
                "Normal", "NoticeWithdrawn", f"the notice on {status.disruption.node} is gone"
            )
            status.disruption = None
            step.phase("Running")
        if (
            spot_fits is not None
            and all(pod.phase == "Running" for pod in alive.values())
            and recovery.policy_move(step, current, alive, live, price, spot_fits)
        ):
            return
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
        # The executor runs Ungate only once every CreateWorker and Nominate before it succeeded,
        # i.e. once the whole gang exists: ungating in this same step keeps the gang
        # all-or-nothing and spares a reconcile round before kube-scheduler may bind (a crash in
        # between leaves gated pods, which the branch below ungates).
        decision.add(
            *(
                Ungate(worker_pod_name(step.job.name, i, status.attempt, placement.replacement(i)))
                for i in missing
            ),
            *(Ungate(pod.name) for pod in alive.values() if pod.gated),
        )
    elif any(pod.gated for pod in alive.values()):
        # Every pod of the gang exists: let kube-scheduler bind them all at once (a nomination
        # lost to an operator restart is written first).
        gated = [pod for pod in sorted(alive.values(), key=worker_index) if pod.gated]
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
        recovery.periodic_checkpoint(step, alive)


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


def _waiting(job: JobView) -> TrainingJobStatus:
    """The status of a job the pass keeps waiting: Queued (from Pending), waiting since its
    creation unless it was already."""
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.generation
    if status.phase == "Pending":
        status.phase = "Queued"
    if status.queued_since is None:
        status.queued_since = job.created
    return status


def defer(
    job: JobView, until: datetime, reason: str, now: datetime
) -> tuple[TrainingJobStatus, Emit | None]:
    """The status of a job that waits for a lower-carbon window (spec.carbonDeferral) until
    `until`: Queued, `status.deferredUntil` set, `Placed=False` (CarbonDeferred) saying why; one
    event per window."""
    status = _waiting(job)
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
    # Asked for every waiting job on every pass, of the same view (a new status is a new view):
    # what it has been told is read off the view once.
    return kept(job, "_told", None, lambda: _told(job)) == reason


def _told(job: JobView) -> str | None:
    """The NoFit reason the job's status already says it waits for, if it says exactly that."""
    status, generation = job.status, job.generation
    if status.phase == "Pending" or status.queued_since is None:
        return None
    if status.observed_generation != generation:
        return None
    admitted = get_condition(status.conditions, "Admitted")
    placed = get_condition(status.conditions, "Placed")
    if (
        admitted is not None
        and (admitted.status, admitted.reason, admitted.message, admitted.observed_generation)
        == ("True", "Admitted", ADMITTED_MESSAGE, generation)
        and placed is not None
        and (placed.status, placed.reason, placed.observed_generation)
        == ("False", "NoFit", generation)
    ):
        return placed.message
    return None


def wait_for_spot(job: JobView, chosen: CapacityStatus, now: datetime) -> TrainingJobStatus:
    """The status of a job the deadline spot policy keeps waiting for spot (it is ahead of the
    line, or not behind by more than the tolerance): Queued, `Placed=False` (WaitingForSpot)
    saying why as of the choice (so waiting writes nothing new each pass), `status.capacity`
    recording it."""
    status = _waiting(job)
    status.capacity = chosen
    _admitted(status, job, now)
    status.conditions = set_condition(
        status.conditions, "Placed", "False", "WaitingForSpot", chosen.reason, now, job.generation
    )
    return status


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
    if before is not None and before.reason == recovery.INTERRUPTED:
        # An interrupted gang keeps saying so while it waits (it keeps its creation time, so it
        # stays ahead of newer jobs of its priority); the solver's reason follows.
        restart = status.last_restart
        cause = restart.reason if restart is not None else "an interruption"
        why, message = recovery.INTERRUPTED, f"{recovery.INTERRUPTED_WAITING} ({cause}): {reason}"
    status.conditions = set_condition(
        status.conditions, "Placed", "False", why, message, now, job.generation
    )
    # One Queued event per stay in the queue; the condition carries the latest reason (its numbers
    # change with every freed device, and an event each time would flood `kubectl describe`).
    changed = (
        before is None
        or before.reason != why
        or (
            why == recovery.INTERRUPTED
            and not before.message.startswith(recovery.INTERRUPTED_WAITING)
        )
    )
    return status, (Emit("Normal", "Queued", message) if changed else None)


def wait_inadmissible(
    job: JobView, refusal: Inadmissible, now: datetime
) -> tuple[TrainingJobStatus, Emit | None]:
    """The status of a job refused before placement (quota, pool access, budget, an unknown
    PriorityClass, no node it could ever use): Queued, holding nothing, the reason in the
    conditions; a Warning event each time the reason changes."""
    status = _waiting(job)
    before = next((c for c in status.conditions if c.type == "Placed"), None)
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
