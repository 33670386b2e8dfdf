"""What the TrainingJob domain reads of the cluster: the `Cluster` protocol plus jobs and their
worker pods, and the parse of a job object into what every pass and reconcile needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from corral.api import InvalidObject, TrainingJob, parse_object
from corral.api.names import CHECKPOINT_NOW_ANNOTATION
from corral.api.trainingjob import TrainingJobStatus
from corral.disruption.notices import parse_time
from corral.placement import PlacementRequest
from corral.scheduling.cluster import Cluster
from corral.training.pods import WorkerPod
from corral.training.step import JobView


def ledger_owner(key: str, attempt: int) -> str:
    """Who the ledger's planned workers of one attempt of a job belong to: an attempt's plan is
    released as a whole when the attempt ends."""
    return f"{key}#{attempt}"


def owners_of(key: str, owners: Iterable[str]) -> list[str]:
    """The ledger owners (attempts) of job `key` among `owners`."""
    return [owner for owner in owners if owner.rpartition("#")[0] == key]


@dataclass(frozen=True)
class JobRecord:
    """A TrainingJob as read: valid (`view` and `request`) or not (`problem` says why)."""

    key: str
    view: JobView | None = None
    request: PlacementRequest | None = None
    problem: str | None = None
    """Which field is wrong and how to fix it, when the job cannot be acted on."""

    @property
    def valid(self) -> bool:
        return self.view is not None and self.request is not None


HOLDING_PHASES = ("Placing", "Running", "Checkpointing")
"""Phases of a job whose gang holds capacity."""


class TrainingCluster(Cluster, Protocol):
    def training_jobs(self) -> Iterable[JobRecord]: ...

    def holding_jobs(self) -> Iterable[JobRecord]:
        """The jobs whose gang holds capacity (a phase of HOLDING_PHASES), in key order: with the
        waiting ones, the jobs present, whose demand decides between pools."""
        ...

    def training_job(self, key: str) -> JobRecord | None: ...

    def job_pods(self, key: str) -> list[WorkerPod]:
        """The worker pods the job owns (by the controller ownerReference's UID)."""
        ...


def job_record(obj: Mapping[str, Any]) -> JobRecord:
    """Parse a TrainingJob object; never raises (a bad object harms only itself)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    try:
        job = parse_object(dict(obj), expect="TrainingJob")
        assert isinstance(job, TrainingJob)
        request = PlacementRequest.from_training_job(job)
    except InvalidObject as exc:
        return JobRecord(key, problem=str(exc))
    except Exception as exc:  # defence in depth: a parser bug must not stop the others
        return JobRecord(key, problem=f"the object could not be read ({type(exc).__name__}: {exc})")
    meta_model = job.metadata
    if not (meta_model.name and meta_model.namespace and meta_model.creationTimestamp):
        return JobRecord(
            key, problem="metadata: name, namespace and creationTimestamp are required"
        )
    demand, demand_problem = _checkpoint_demand(meta_model.annotations)
    view = JobView(
        namespace=meta_model.namespace,
        name=meta_model.name,
        uid=meta_model.uid or "",
        generation=meta_model.generation or 0,
        created=meta_model.creationTimestamp,
        spec=job.spec,
        status=job.status or TrainingJobStatus(),
        checkpoint_demand=demand,
        checkpoint_demand_problem=demand_problem,
    )
    return JobRecord(key, view=view, request=request)


def _checkpoint_demand(annotations: Mapping[str, str]) -> tuple[datetime | None, str | None]:
    text = annotations.get(CHECKPOINT_NOW_ANNOTATION)
    if text is None:
        return None, None
    when = parse_time(text[:64])
    if when is None:
        return None, (
            f"metadata.annotations[{CHECKPOINT_NOW_ANNOTATION}]: {text[:64]!r} is not a time; "
            "set it to the current time in RFC 3339, e.g. $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        )
    return when, None
