"""Training workloads for the simulator: one job per row of a CSV or JSONL file.

The format is documented in docs/simulate.md. Each row is validated on its own and the first bad
row stops the load with `WorkloadError("FILE:LINE: field: what is wrong")`: the CLI prints it as
one line and exits 2. Times are seconds from the start of the simulation.

A row becomes the same TrainingJob a user would apply (`training_job`), so the simulator and the
operator place the same object.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from corral.api.errors import InvalidObject, describe_errors
from corral.api.meta import DNS_SUBDOMAIN
from corral.api.names import TEAM_LABEL
from corral.api.trainingjob import TrainingJob

LEVELS = {
    "zone": "topology.kubernetes.io/zone",
    "block": "network.corral.dev/block",
    "rack": "network.corral.dev/rack",
    "host": "kubernetes.io/hostname",
}
"""Short names accepted for topology levels (a full label key is accepted too)."""

CapacityName = Literal["spot", "on-demand", "reserved"]


class WorkloadError(ValueError):
    """A workload file that cannot be used; the message is one line naming file, line, field."""


class _Row(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: Annotated[str, Field(max_length=200, pattern=DNS_SUBDOMAIN)] | None = None
    submit: Annotated[float, Field(ge=0)]
    workers: Annotated[int, Field(ge=1, le=100000)] = 1
    devices_per_worker: Annotated[int, Field(ge=1, le=1024)] = 1
    duration: Annotated[float, Field(gt=0)] | None = None
    steps: Annotated[int, Field(ge=1)] | None = None
    step_seconds: Annotated[float, Field(gt=0)] | None = None
    priority: Annotated[int, Field(ge=-1000000, le=1000000)] = 0
    deadline: Annotated[float, Field(ge=0)] | None = None
    start_by: Annotated[float, Field(ge=0)] | None = None
    carbon_aware: bool = False
    topology_required: str | None = None
    topology_preferred: str | None = None
    accelerators: list[str] = Field(default_factory=list)
    capacity_types: list[CapacityName] = Field(default_factory=list)
    namespace: Annotated[str, Field(max_length=63, pattern=DNS_SUBDOMAIN)] = "default"
    team: Annotated[str, Field(max_length=63)] = ""
    objective: Literal["Default", "CostPerWork"] = "Default"
    throughput: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    cpu: Annotated[float, Field(ge=0)] = 0.0
    """CPUs per worker."""
    memory_gib: Annotated[float, Field(ge=0, alias="memoryGiB")] = 0.0
    """Memory per worker in GiB."""
    checkpoint_seconds: Annotated[float, Field(ge=0)] = 0.0
    fail_after: Annotated[float, Field(gt=0)] | None = None
    finish_at: Annotated[float, Field(ge=0)] | None = None
    fail_at: Annotated[float, Field(ge=0)] | None = None

    @field_validator("topology_required", "topology_preferred")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        return LEVELS.get(value, value) if value else None

    @model_validator(mode="after")
    def _run_time(self) -> _Row:
        replay = self.finish_at is not None
        if (
            not replay
            and self.duration is None
            and (self.steps is None or self.step_seconds is None)
        ):
            raise ValueError("duration: required (or steps with stepSeconds, or finishAt)")
        if self.duration is not None and self.steps is not None:
            raise ValueError("steps: give duration or steps with stepSeconds, not both")
        if self.deadline is not None and self.deadline <= self.submit:
            raise ValueError("deadline: must be after submit")
        if self.carbon_aware and self.start_by is None and self.deadline is None:
            raise ValueError("carbonAware: needs a deadline or startBy (a latest start)")
        return self


@dataclass(frozen=True)
class WorkloadJob:
    """One job of a workload: what it asks for, when, and how long it runs."""

    name: str
    submit: float
    """Seconds from the start of the simulation."""
    workers: int
    devices_per_worker: int
    duration: float
    """Seconds of work on its fastest accepted accelerator (see `run_seconds`)."""
    namespace: str = "default"
    team: str = ""
    priority: int = 0
    deadline: float | None = None
    start_by: float | None = None
    carbon_aware: bool = False
    required: str | None = None
    preferred: str | None = None
    accelerators: tuple[str, ...] = ()
    capacity_types: tuple[str, ...] = ()
    objective: str = "Default"
    throughput: tuple[tuple[str, float], ...] = ()
    cpu_millis: int = 0
    memory_mib: int = 0
    checkpoint_seconds: float = 0.0
    """The workload checkpoints every this many seconds of running (0: only when the operator
    asks, on a termination notice); also its `spec.checkpoint.intervalSeconds`. What an
    interruption loses is the work since the newest checkpoint."""
    fail_after: float | None = None
    """Seconds of running after which worker 0 fails, once (an injected application failure)."""
    finish_at: float | None = None
    """Replays: every worker exits 0 at this time (instead of after `duration` of running)."""
    fail_at: float | None = None
    """Replays: worker 0 exits 1 at this time, once."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def devices(self) -> int:
        return self.workers * self.devices_per_worker

    def run_seconds(self, accelerator_type: str) -> float:
        """Run time on a pool of this accelerator: `duration` scaled by the job's throughput of
        the type against its best type (unchanged when it gives no throughput)."""
        rates = dict(self.throughput)
        if not rates or accelerator_type not in rates:
            return self.duration
        return self.duration * max(rates.values()) / rates[accelerator_type]


def _job(row: _Row, number: int) -> WorkloadJob:
    duration = row.duration
    if duration is None and row.steps is not None and row.step_seconds is not None:
        duration = row.steps * row.step_seconds
    if duration is None:  # a replay: the run ends at finishAt, whenever it started
        assert row.finish_at is not None
        duration = max(1.0, row.finish_at - row.submit)
    return WorkloadJob(
        name=row.name or f"job-{number:06d}",
        submit=row.submit,
        workers=row.workers,
        devices_per_worker=row.devices_per_worker,
        duration=duration,
        namespace=row.namespace,
        team=row.team,
        priority=row.priority,
        deadline=row.deadline,
        start_by=row.start_by,
        carbon_aware=row.carbon_aware,
        required=row.topology_required,
        preferred=row.topology_preferred,
        accelerators=tuple(row.accelerators),
        capacity_types=tuple(row.capacity_types),
        objective=row.objective,
        throughput=tuple(sorted(row.throughput.items())),
        cpu_millis=round(row.cpu * 1000),
        memory_mib=round(row.memory_gib * 1024),
        checkpoint_seconds=row.checkpoint_seconds,
        fail_after=row.fail_after,
        finish_at=row.finish_at,
        fail_at=row.fail_at,
    )


_LIST_FIELDS = ("accelerators", "capacityTypes")
_MAP_FIELDS = ("throughput",)


def _csv_record(record: Mapping[str, str | None]) -> dict[str, Any]:
    """A CSV row as the JSONL object it stands for: empty cells unset, `a|b` lists, `k=v|k=v`
    maps."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key is None:
            raise ValueError("more cells than the header has columns")
        value = (value or "").strip()
        if not value:
            continue
        if key in _LIST_FIELDS:
            out[key] = [part.strip() for part in value.split("|") if part.strip()]
        elif key in _MAP_FIELDS:
            pairs = [part.split("=", 1) for part in value.split("|") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError(f"{key}: write type=rate pairs separated by |, e.g. H100=3|A100=1")
            out[key] = {k.strip(): v.strip() for k, v in pairs}
        elif key == "carbonAware":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def _records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for record in reader:
            line = reader.line_num
            try:
                yield line, _csv_record(record)
            except ValueError as exc:
                raise WorkloadError(f"{path}:{line}: {exc}") from None
        return
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{line}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise WorkloadError(f"{path}:{line}: a row is a JSON object")
        yield line, record


def load(path: str | Path) -> list[WorkloadJob]:
    """Every job of a workload file (`.csv`, or JSON Lines for any other suffix), by submit time."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None
    jobs: list[WorkloadJob] = []
    seen: dict[str, int] = {}
    for line, record in _records(path, text):
        try:
            row = _Row.model_validate(record)
        except ValidationError as exc:
            raise WorkloadError(f"{path}:{line}: {describe_errors(exc)[0]}") from None
        job = _job(row, len(jobs))
        if job.key in seen:
            raise WorkloadError(f"{path}:{line}: name: {job.key} is also on line {seen[job.key]}")
        seen[job.key] = line
        jobs.append(job)
    if not jobs:
        raise WorkloadError(f"{path}: no jobs")
    return sorted(jobs, key=lambda j: (j.submit, j.key))


def row(job: WorkloadJob) -> dict[str, Any]:
    """The JSONL object of a job (defaults left out): `dump` writes these."""
    out: dict[str, Any] = {"name": job.name, "submit": round(job.submit, 3)}
    defaults = WorkloadJob(name="", submit=0, workers=0, devices_per_worker=0, duration=0)
    for field in fields(WorkloadJob):
        if field.name in ("name", "submit"):
            continue
        value = getattr(job, field.name)
        if value == getattr(defaults, field.name) and field.name not in (
            "workers",
            "devices_per_worker",
            "duration",
        ):
            continue
        key = {
            "required": "topologyRequired",
            "preferred": "topologyPreferred",
            "cpu_millis": "cpu",
            "memory_mib": "memoryGiB",
        }.get(field.name, to_camel(field.name))
        if field.name == "cpu_millis":
            value = value / 1000
        elif field.name == "memory_mib":
            value = value / 1024
        elif field.name == "throughput":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, float):
            value = round(value, 3)
        out[key] = value
    return out


def dump(jobs: Iterable[WorkloadJob], path: str | Path) -> None:
    """Write jobs as JSON Lines (what `load` reads back)."""
    Path(path).write_text("".join(json.dumps(row(job)) + "\n" for job in jobs))


def training_job(job: WorkloadJob, epoch: datetime) -> TrainingJob:
    """The TrainingJob of a workload row, created at `epoch + submit`."""
    resources: dict[str, Any] = {}
    if job.cpu_millis:
        resources["cpu"] = f"{job.cpu_millis}m"
    if job.memory_mib:
        resources["memory"] = f"{job.memory_mib}Mi"
    container: dict[str, Any] = {"name": "trainer", "image": "trainer:sim"}
    if resources:
        container["resources"] = {"requests": resources}
    spec: dict[str, Any] = {
        "workers": job.workers,
        "acceleratorsPerWorker": job.devices_per_worker,
        "template": {"spec": {"containers": [container]}},
        "placementObjective": job.objective,
        # Restarts are the simulator's to count; an injected failure must not fail the job.
        "maxRestarts": 10,
        "checkpoint": {"intervalSeconds": round(job.checkpoint_seconds)},
    }
    if job.priority:
        spec["priorityClassName"] = priority_class_name(job.priority)
    if job.throughput:
        spec["throughput"] = dict(job.throughput)
    if job.accelerators:
        spec["accelerator"] = {"types": list(job.accelerators)}
    if job.capacity_types:
        spec["capacity"] = {"types": list(job.capacity_types)}
    topology = {}
    if job.required:
        topology["required"] = job.required
    if job.preferred:
        topology["preferred"] = job.preferred
    if topology:
        spec["topology"] = topology
    if job.deadline is not None:
        spec["deadline"] = _time(epoch, job.deadline)
    if job.carbon_aware:
        deferral: dict[str, Any] = {"expectedDurationSeconds": max(1, round(job.duration))}
        if job.start_by is not None:
            deferral["startBy"] = _time(epoch, job.start_by)
        spec["carbonDeferral"] = deferral
    labels = {TEAM_LABEL: job.team} if job.team else {}
    body = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": job.name,
            "namespace": job.namespace,
            "labels": labels,
            "creationTimestamp": _time(epoch, job.submit),
            "uid": f"sim-{job.namespace}-{job.name}",
            "generation": 1,
        },
        "spec": spec,
    }
    try:
        return TrainingJob.model_validate(body)
    except ValidationError as exc:
        raise InvalidObject(describe_errors(exc)) from None


def priority_class_name(priority: int) -> str:
    """The PriorityClass a row of this priority names. TrainingJobs are queued by their
    PriorityClass (spec.priority is ignored); rows of priority 0 name none."""
    return f"sim-priority-{priority}" if priority >= 0 else f"sim-priority-minus-{-priority}"


def priority_classes(jobs: Iterable[WorkloadJob]) -> list[dict[str, Any]]:
    """The PriorityClasses the workload's rows name: one per non-zero priority."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": priority_class_name(value)},
            "value": value,
        }
        for value in sorted({job.priority for job in jobs if job.priority})
    ]


def _time(epoch: datetime, seconds: float) -> str:
    return (epoch + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
