"""One reconcile step of a TrainingJob: observed state in, decisions out.

The step is level-triggered: it looks only at the job (spec and the status it last wrote) and the
worker pods that exist, never at what happened before, so an operator killed at any line and
started again makes the same decisions. Invariants the controller keeps by executing a decision in
order (status first, then pods):
- pods of the current attempt exist only while `status.placement` records their nodes;
- pods of another attempt are leftovers and are deleted;
- usage of an attempt is settled into `status.accounting` before its pods are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from corral.api.conditions import set_condition
from corral.api.meta import ConditionStatus
from corral.api.trainingjob import (
    PlacementStatus,
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingPhase,
    WorkerCounts,
)
from corral.cost.accounting import Usage, device_hours
from corral.training.pods import WorkerPod

NodeProblem = Callable[[str], str | None]
"""Why a planned node can no longer take a worker (gone, NotReady, cordoned), or None."""

TERMINAL: tuple[TrainingPhase, ...] = ("Succeeded", "Failed")


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


@dataclass(frozen=True)
class Price:
    per_device_hour: float
    currency: str


@dataclass(frozen=True)
class WorkerToCreate:
    index: int
    attempt: int
    node: str


@dataclass(frozen=True)
class JobEvent:
    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass
class Decision:
    status: TrainingJobStatus
    create: list[WorkerToCreate] = field(default_factory=list)
    ungate: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)
    ensure_service: bool = False
    wants_placement: bool = False
    """The job waits in the queue for the scheduler pass."""
    requeue_after: float | None = None
    """Seconds until a time-based check (bind timeout) is due."""


class _Step:
    """Mutable scratch state of one reconcile step."""

    def __init__(self, job: JobView, now: datetime):
        self.job = job
        self.now = now
        self.status = job.status.model_copy(deep=True)
        self.status.observed_generation = job.generation
        self.decision = Decision(status=self.status)

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.now, self.job.generation
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.decision.events.append(JobEvent(type_, reason, message))

    def phase(self, phase: TrainingPhase) -> None:
        self.status.phase = phase

    def enqueue(self) -> None:
        self.status.placement = None
        self.status.queued_since = self.now
        self.decision.wants_placement = True


def _usage(pods: Sequence[WorkerPod], devices: int) -> list[Usage]:
    return [Usage(devices, pod.start_time, pod.finish_time) for pod in pods if pod.start_time]


def _account(step: _Step, current: Sequence[WorkerPod], price: Price | None) -> float:
    """Refresh deviceHours/cost from settled usage plus the live attempt; returns the live part."""
    live = device_hours(_usage(current, step.job.spec.accelerators_per_worker), step.now)
    accounting = step.status.accounting
    step.status.device_hours = round(accounting.settled_device_hours + live, 6)
    if price is not None:
        step.status.cost = round(accounting.settled_cost + live * price.per_device_hour, 6)
        step.status.currency = price.currency
    return live


def _end_attempt(
    step: _Step, current: Sequence[WorkerPod], live: float, price: Price | None
) -> None:
    """Settle the attempt's usage, delete its pods, and move on to the next attempt."""
    step.status.accounting.settled_device_hours += live
    if price is not None:
        step.status.accounting.settled_cost += live * price.per_device_hour
    step.decision.delete.extend(pod.name for pod in current if not pod.deleting)
    step.decision.create, step.decision.ungate = [], []
    step.status.attempt += 1
    step.status.placement = None


def _count(pods: Sequence[WorkerPod], total: int) -> WorkerCounts:
    return WorkerCounts(
        total=total,
        bound=sum(1 for pod in pods if pod.node),
        running=sum(1 for pod in pods if pod.phase == "Running"),
        succeeded=sum(1 for pod in pods if pod.phase == "Succeeded"),
        failed=sum(1 for pod in pods if pod.phase == "Failed"),
    )


def budget_exceeded(spec: TrainingJobSpec, status: TrainingJobStatus) -> str | None:
    """Why the job has used up its budget, or None."""
    if spec.budget.device_hours is not None and status.device_hours >= spec.budget.device_hours:
        return (
            f"used {status.device_hours:.1f} of its budget of {spec.budget.device_hours:g} "
            "device-hours (spec.budget.deviceHours)"
        )
    if spec.budget.cost is not None and status.cost >= spec.budget.cost:
        return (
            f"cost {status.cost:.2f} reached its budget of {spec.budget.cost:g} (spec.budget.cost)"
        )
    return None


def reconcile(
    job: JobView,
    pods: Sequence[WorkerPod],
    now: datetime,
    node_problem: NodeProblem,
    price: Price | None,
) -> Decision:
    """The next step for one job. `pods` are all worker pods labelled with the job."""
    step = _Step(job, now)
    spec, status = job.spec, step.status
    current = [pod for pod in pods if pod.restart == status.attempt]
    step.decision.delete.extend(
        pod.name for pod in pods if pod.restart != status.attempt and not pod.deleting
    )
    status.workers = _count(current, spec.workers)
    if status.phase in TERMINAL:
        # Usage is frozen at the end. Free the devices of anything still running; keep finished
        # pods for their logs.
        step.decision.delete.extend(p.name for p in current if not p.terminated and not p.deleting)
        return step.decision
    live = _account(step, current, price)

    if spec.suspend:
        if status.phase != "Suspended":
            _end_attempt(step, current, live, price)
            status.queued_since = None
            step.phase("Suspended")
            step.condition(
                "Suspended", "True", "Suspended", "spec.suspend is true: workers deleted"
            )
            step.condition("Running", "False", "Suspended", "the job is suspended")
            step.event("Normal", "Suspended", f"deleted {len(current)} worker(s); the job is kept")
        return step.decision
    if status.phase == "Suspended":
        step.condition("Suspended", "False", "Resumed", "spec.suspend is false")
        step.event("Normal", "Resumed", "queued for placement again")
        step.phase("Queued")
        step.enqueue()
        return step.decision

    over_budget = budget_exceeded(spec, status)
    if over_budget:
        _end_attempt(step, current, live, price)
        _fail(step, "BudgetExceeded", f"The job {over_budget}")
        return step.decision

    placement = status.placement
    if placement is None:
        # Waiting for the scheduler pass; pods of this attempt cannot exist without a placement.
        step.decision.delete.extend(p.name for p in current if not p.deleting)
        if status.phase == "Pending":
            step.phase("Queued")
        if status.queued_since is None:
            status.queued_since = job.created
        step.decision.wants_placement = True
        return step.decision

    return _reconcile_placed(step, current, live, placement, node_problem, price)


def reject_pods(
    job: JobView, pods: Sequence[WorkerPod], message: str, now: datetime, price: Price | None
) -> Decision:
    """The API server refused to create the job's worker pods (an invalid template, or an
    admission policy such as Pod Security): retrying cannot help, so the job fails with the API
    server's words, and the workers already made are removed."""
    step = _Step(job, now)
    current = [pod for pod in pods if pod.restart == step.status.attempt]
    live = _account(step, current, price)
    _end_attempt(step, current, live, price)
    _fail(step, "PodRejected", f"the API server refused the worker pods: {message}")
    return step.decision


def _fail(step: _Step, reason: str, message: str) -> None:
    step.phase("Failed")
    step.status.completion_time = step.now
    step.condition("Failed", "True", reason, message)
    step.condition("Running", "False", reason, message)
    step.event("Warning", reason, message)


def _replace(
    step: _Step, current: Sequence[WorkerPod], live: float, price: Price | None, why: str
) -> Decision:
    _end_attempt(step, current, live, price)
    step.phase("Recovering" if step.status.start_time else "Queued")
    step.enqueue()
    step.condition("Placed", "False", "Replacing", why)
    step.event("Warning", "Replaced", f"Re-placing the whole gang: {why}")
    return step.decision


def _reconcile_placed(
    step: _Step,
    current: Sequence[WorkerPod],
    live: float,
    placement: PlacementStatus,
    node_problem: NodeProblem,
    price: Price | None,
) -> Decision:
    spec, status, now = step.job.spec, step.status, step.now
    decision = step.decision
    decision.ensure_service = True
    alive = {pod.index: pod for pod in current if not pod.deleting}

    failed = sorted((pod for pod in current if pod.phase == "Failed"), key=lambda p: p.index)
    if failed:
        first = failed[0]
        why = f"worker {first.index} failed: {first.failure}"
        if status.restarts < spec.max_restarts:
            _end_attempt(step, current, live, price)
            status.restarts += 1
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
            decision.delete.extend(p.name for p in current if not p.terminated and not p.deleting)
            _fail(step, "BackoffLimitExceeded", f"{why}; maxRestarts={spec.max_restarts} reached")
        return decision

    if len(alive) == spec.workers and all(pod.phase == "Succeeded" for pod in alive.values()):
        step.phase("Succeeded")
        status.completion_time = now
        step.condition(
            "Succeeded", "True", "AllWorkersSucceeded", f"{spec.workers} worker(s) succeeded"
        )
        step.condition("Running", "False", "Completed", "the job completed")
        step.event("Normal", "Succeeded", f"All {spec.workers} worker(s) succeeded")
        return decision

    shape = (len(placement.nodes), placement.devices_per_worker or spec.accelerators_per_worker)
    if shape != (spec.workers, spec.accelerators_per_worker):
        return _replace(
            step,
            current,
            live,
            price,
            f"the spec changed from {shape[0]} x {shape[1]} to "
            f"{spec.workers} x {spec.accelerators_per_worker} devices",
        )

    # A planned node that went bad before its worker was bound invalidates the plan.
    for index in range(spec.workers):
        pod = alive.get(index)
        if pod is not None and pod.node:
            continue
        problem = node_problem(placement.nodes[index])
        if problem:
            return _replace(step, current, live, price, f"worker {index}: {problem}")

    missing = [index for index in range(spec.workers) if index not in alive]
    if missing:
        decision.create = [WorkerToCreate(i, status.attempt, placement.nodes[i]) for i in missing]
        if len(missing) < spec.workers and any(pod.node for pod in alive.values()):
            step.event(
                "Warning",
                "WorkerRecreated",
                f"Recreating worker(s) {', '.join(map(str, missing))} on the same plan",
            )
        placement.time = now
    elif any(pod.gated for pod in alive.values()):
        # Every pod of the gang exists: let kube-scheduler bind them all at once.
        decision.ungate = sorted(pod.name for pod in alive.values() if pod.gated)

    unbound = missing or [pod.index for pod in alive.values() if not pod.node]
    if unbound:
        started = placement.time or now
        waited = (now - started).total_seconds()
        if waited >= spec.placement_timeout_seconds:
            return _replace(
                step,
                current,
                live,
                price,
                f"worker(s) {', '.join(map(str, sorted(unbound)))} not bound within "
                f"{spec.placement_timeout_seconds}s (capacity taken meanwhile?)",
            )
        decision.requeue_after = spec.placement_timeout_seconds - waited
        if status.phase not in ("Placing", "Recovering"):
            step.phase("Placing")
        return decision

    all_running = all(pod.phase in ("Running", "Succeeded") for pod in alive.values())
    if all_running and status.phase != "Running":
        step.phase("Running")
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
    return decision


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
        "the job passed admission",
        now,
        job.generation,
    )


def refuse(
    job: JobView, reason: str, permanent: bool, now: datetime
) -> tuple[TrainingJobStatus, JobEvent | None]:
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
        return status, JobEvent("Warning", "Unschedulable", reason)
    before = next((c for c in status.conditions if c.type == "Placed"), None)
    if status.phase == "Pending":
        status.phase = "Queued"
    if status.queued_since is None:
        status.queued_since = job.created
    _admitted(status, job, now)
    status.conditions = set_condition(
        status.conditions, "Placed", "False", "NoFit", reason, now, job.generation
    )
    # One Queued event per stay in the queue; the condition carries the latest reason (its numbers
    # change with every freed device, and an event each time would flood `kubectl describe`).
    changed = before is None or before.reason != "NoFit"
    return status, (JobEvent("Normal", "Queued", reason) if changed else None)
