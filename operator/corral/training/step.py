"""The scratch state of one TrainingJob reconcile step, shared by the lifecycle
(`training.lifecycle`) and interruption recovery (`training.recovery`): the job as read, the
status being decided, the actions so far, and the helpers both use to end an attempt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.api.conditions import set_condition
from corral.api.meta import ConditionStatus
from corral.api.trainingjob import TrainingJobSpec, TrainingJobStatus, TrainingPhase, WorkerCounts
from corral.cost.charges import Charge
from corral.scheduling.actions import (
    CreateWorker,
    Decision,
    DeletePod,
    Emit,
    ReleaseAssumed,
    Ungate,
    WantsPlacement,
)
from corral.training import accounting
from corral.training.accounting import Price
from corral.training.pods import WorkerPod

NodeProblem = Callable[[str], str | None]
"""Why a planned node can no longer take a worker (gone, NotReady, cordoned), or None."""


@dataclass(frozen=True)
class JobView:
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    spec: TrainingJobSpec
    status: TrainingJobStatus
    checkpoint_demand: datetime | None = None
    """`corral.dev/checkpoint-now` read as a time (a checkpoint asked for by a person)."""
    checkpoint_demand_problem: str | None = None
    """The annotation is there but is not a time: what is wrong and how to fix it."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Step:
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


def count_workers(pods: Sequence[WorkerPod], total: int) -> WorkerCounts:
    return WorkerCounts(
        total=total,
        bound=sum(1 for pod in pods if pod.node),
        running=sum(1 for pod in pods if pod.phase == "Running"),
        succeeded=sum(1 for pod in pods if pod.phase == "Succeeded"),
        failed=sum(1 for pod in pods if pod.phase == "Failed"),
    )


COUNTS_BATCH_SECONDS = 1.0
"""Worker counts that alone changed are written at most once a second per job, the latest then,
as the Job controller batches pod events: a 64-worker gang binding and starting over two seconds
is a few status writes, not one per pod event (each a write of the whole job to every watcher of
TrainingJobs, on the API server that is binding and starting those very pods)."""


def counts_batch_delay(
    before: TrainingJobStatus, after: TrainingJobStatus, since_last_write: float | None
) -> float | None:
    """How long to hold a status write back, or None to write it now: only a change of worker
    counts alone is held, and only within COUNTS_BATCH_SECONDS of the job's last status write.
    Phases, conditions, placements and usage are never held."""
    if since_last_write is None or since_last_write >= COUNTS_BATCH_SECONDS:
        return None
    if before == after or before.model_copy(update={"workers": after.workers}) != after:
        return None
    return COUNTS_BATCH_SECONDS - since_last_write


def end_attempt(
    step: Step, current: Sequence[WorkerPod], live: Charge, price: Price | None
) -> None:
    """Settle the attempt's usage, delete its pods, and move on to the next attempt."""
    accounting.settle(step.status, live, price)
    step.delete(current)
    step.decision.drop(CreateWorker)
    step.decision.drop(Ungate)
    step.decision.add(ReleaseAssumed(step.status.attempt))
    step.status.attempt += 1
    step.status.placement = None


def worker_index(pod: WorkerPod) -> int:
    return pod.index
