"""Small builders for lifecycle tests: `job("j").workers(2).placed("h1", "h2")`, `worker(0).running()`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.api.trainingjob import PlacementStatus, TrainingJobSpec, TrainingJobStatus
from corral.scheduling.actions import (
    Action,
    CreateWorker,
    Decision,
    DeletePod,
    Emit,
    EnsureService,
    RequeueAfter,
    Ungate,
    WantsPlacement,
)
from corral.training.pods import WorkerPod
from corral.training.step import JobView

T0 = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class JobBuilder:
    def __init__(self, name: str):
        self._name = name
        self._spec: dict[str, Any] = {
            "workers": 2,
            "acceleratorsPerWorker": 8,
            "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
        }
        self._status = TrainingJobStatus()

    def workers(self, n: int) -> JobBuilder:
        self._spec["workers"] = n
        return self

    def gpus(self, n: int) -> JobBuilder:
        self._spec["acceleratorsPerWorker"] = n
        return self

    def spec(self, **fields: Any) -> JobBuilder:
        self._spec.update(fields)
        return self

    def phase(self, phase: Any) -> JobBuilder:
        self._status.phase = phase
        return self

    def status(self, **fields: Any) -> JobBuilder:
        for key, value in fields.items():
            setattr(self._status, key, value)
        return self

    def placed(self, *nodes: str, since: float = 0.0) -> JobBuilder:
        self._status.placement = PlacementStatus(
            pool="p",
            level="network.corral.dev/rack",
            domain="r1",
            nodes=list(nodes),
            time=at(since),
        )
        if self._status.phase in ("Pending", "Queued"):
            self._status.phase = "Placing"
        return self

    def obj(self) -> JobView:
        return JobView(
            namespace="ns",
            name=self._name,
            uid="uid-1",
            generation=1,
            created=T0,
            spec=TrainingJobSpec.model_validate(self._spec),
            status=self._status.model_copy(deep=True),
        )


def job(name: str = "j") -> JobBuilder:
    return JobBuilder(name)


def worker(index: int, attempt: int = 0, job_name: str = "j") -> WorkerPod:
    """A gated, unbound worker pod as Corral creates it."""
    return WorkerPod(
        name=f"{job_name}-w{index}-r{attempt}",
        uid=f"pod-{job_name}-{index}-{attempt}",
        index=index,
        restart=attempt,
        phase="Pending",
        node=None,
        planned_node=None,
        gated=True,
        deleting=False,
        start_time=None,
        finish_time=None,
        failure=None,
    )


def ungated(pod: WorkerPod) -> WorkerPod:
    return replace(pod, gated=False)


def bound(pod: WorkerPod, node: str) -> WorkerPod:
    return replace(pod, gated=False, node=node)


def running(pod: WorkerPod, node: str, since: float = 0.0) -> WorkerPod:
    return replace(pod, gated=False, node=node, phase="Running", start_time=at(since))


def succeeded(pod: WorkerPod, node: str, start: float = 0.0, end: float = 3600.0) -> WorkerPod:
    return replace(
        pod, gated=False, node=node, phase="Succeeded", start_time=at(start), finish_time=at(end)
    )


def failed(
    pod: WorkerPod, node: str, why: str = "container t exited with code 1 (Error)"
) -> WorkerPod:
    return replace(
        pod,
        gated=False,
        node=node,
        phase="Failed",
        start_time=at(0),
        finish_time=at(60),
        failure=why,
    )


def no_problem(node: str) -> str | None:
    return None


@dataclass
class Seen:
    """A decision read the way tests ask about it: what is created, deleted, ungated, told."""

    decision: Decision

    @property
    def status(self) -> TrainingJobStatus:
        assert isinstance(self.decision.status, TrainingJobStatus)
        return self.decision.status

    @property
    def actions(self) -> list[Action]:
        return self.decision.actions

    @property
    def create(self) -> list[CreateWorker]:
        return [a for a in self.actions if isinstance(a, CreateWorker)]

    @property
    def delete(self) -> list[str]:
        return [a.name for a in self.actions if isinstance(a, DeletePod)]

    @property
    def ungate(self) -> list[str]:
        return [a.name for a in self.actions if isinstance(a, Ungate)]

    @property
    def events(self) -> list[Emit]:
        return [a for a in self.actions if isinstance(a, Emit)]

    @property
    def wants_placement(self) -> bool:
        return any(isinstance(a, WantsPlacement) for a in self.actions)

    @property
    def ensure_service(self) -> bool:
        return any(isinstance(a, EnsureService) for a in self.actions)

    @property
    def requeue_after(self) -> float | None:
        delays = [a.seconds for a in self.actions if isinstance(a, RequeueAfter)]
        return min(delays) if delays else None
