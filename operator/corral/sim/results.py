"""What a simulation run produced: per-job outcomes, fleet time series, charges, decisions; and
the summary figures computed from them (the `summary.json` of `corral simulate`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.cost.chargeback import Chargeback
from corral.cost.charges import ZERO, Charge

SIZE_CLASSES: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1),
    ("2-8", 2, 8),
    ("9-64", 9, 64),
    ("65+", 65, 1 << 30),
)
"""Job sizes (devices) the report breaks queueing delay down by."""


@dataclass(frozen=True)
class Decision:
    """One placement, in the order the scheduling passes made them."""

    time: float
    job: str
    pool: str
    nodes: tuple[str, ...]


@dataclass
class JobOutcome:
    key: str
    namespace: str
    team: str
    devices: int
    submit: float
    deadline: float | None = None
    first_placed: float | None = None
    finished: float | None = None
    failed: bool = False
    pool: str | None = None
    restarts: int = 0
    interruptions: int = 0
    lost_device_seconds: float = 0.0
    """Device-time of work thrown away: run since the last checkpoint when an attempt ended."""
    deferred_seconds: float = 0.0
    """Time spent waiting for a lower-carbon window (spec.carbonDeferral)."""
    queued_seconds: float = 0.0
    """Total time waiting for placement, every attempt (as the job's status.queuedSeconds)."""
    work_units: float = 0.0
    """Work done, in the units of the job's throughput (device-hours x rate), for cost per work."""
    charge: Charge = ZERO

    @property
    def queue_delay(self) -> float | None:
        """From submission to the first placement, less the time the job chose to wait for a
        lower-carbon window: the wait for capacity."""
        if self.first_placed is None:
            return None
        return max(0.0, self.first_placed - self.submit - self.deferred_seconds)

    @property
    def missed_deadline(self) -> bool | None:
        if self.deadline is None:
            return None
        return self.finished is None or self.finished > self.deadline


@dataclass
class Series:
    """The fleet sampled at regular ticks."""

    time: list[float] = field(default_factory=list)
    allocated: list[int] = field(default_factory=list)
    capacity: list[int] = field(default_factory=list)
    fragmentation: list[float] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    spot_up: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectiveOutcome:
    name: str
    type: str
    percentile: float
    target_seconds: float
    minutes_meeting: float | None
    """Share of the minutes with requests whose requests met the objective (its percentile of
    the requests arriving in that minute within the target)."""


@dataclass
class ServiceOutcome:
    """One InferenceService over its load."""

    key: str
    namespace: str
    team: str
    trace: str
    start: float
    end: float
    requests: int
    served: int
    objectives: list[ObjectiveOutcome]
    minutes: int
    """Minutes with requests, each judged."""
    minutes_meeting_all: float | None
    p95_latency: float | None
    p95_ttft: float | None
    replica_seconds: float
    device_seconds: float
    charge: Charge
    scale_ups: int
    scale_downs: int
    unplaced_episodes: int
    """Times the service began waiting for a replica it could not place (or admit)."""
    unplaced_replica_seconds: float
    peak_replicas: int
    samples_time: list[float] = field(default_factory=list)
    samples_desired: list[int] = field(default_factory=list)
    samples_ready: list[int] = field(default_factory=list)
    samples_replicas: list[int] = field(default_factory=list)
    samples_rate: list[float] = field(default_factory=list)


@dataclass
class RunResult:
    policy: str
    seed: int
    arrival_end: float
    """Time of the last arrival: utilisation is measured over [0, arrival_end]."""
    end: float
    """When the simulation stopped (every job finished, or the time limit)."""
    events: int
    wall_seconds: float
    jobs: list[JobOutcome]
    series: Series
    chargeback: Chargeback
    decisions: list[Decision]
    allocated_device_seconds: float
    """Integral of allocated devices over [0, arrival_end]."""
    capacity_device_seconds: float
    currency: str = "USD"
    services: list[ServiceOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    losses: list[tuple[float, float]] = field(default_factory=list)
    """(when, device-seconds) of work thrown away, as it happened."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds else math.inf


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def size_class(devices: int) -> str:
    for name, low, high in SIZE_CLASSES:
        if low <= devices <= high:
            return name
    return SIZE_CLASSES[-1][0]


def _delays(jobs: Iterable[JobOutcome]) -> list[float]:
    return [d for d in (job.queue_delay for job in jobs) if d is not None]


def _charge_dict(charge: Charge) -> dict[str, float]:
    return {
        "deviceHours": round(charge.device_hours, 3),
        "cost": round(charge.cost, 2),
        "energyKWh": round(charge.energy_kwh, 3),
        "carbonKg": round(charge.carbon_grams / 1000.0, 3),
    }


def _time_mean(series: Series, values: Sequence[float], until: float) -> float | None:
    picked = [v for t, v in zip(series.time, values, strict=True) if t <= until]
    return mean(picked)


def summary(result: RunResult) -> dict[str, Any]:
    """The figures of one run, as `summary.json` writes them."""
    jobs = result.jobs
    delays = _delays(jobs)
    finished = [j for j in jobs if j.finished is not None and not j.failed]
    by_size: dict[str, Any] = {}
    for name, _, _ in SIZE_CLASSES:
        group = [j for j in jobs if size_class(j.devices) == name]
        if not group:
            continue
        sized = _delays(group)
        by_size[name] = {
            "jobs": len(group),
            "meanQueueSeconds": _round(mean(sized)),
            "p95QueueSeconds": _round(percentile(sized, 0.95)),
        }
    deadlines = [j for j in jobs if j.deadline is not None]
    total = result.chargeback.total()
    work = sum(j.work_units for j in jobs)
    utilisation = (
        result.allocated_device_seconds / result.capacity_device_seconds
        if result.capacity_device_seconds
        else 0.0
    )
    return {
        "policy": result.policy,
        "seed": result.seed,
        "jobs": {
            "submitted": len(jobs),
            "finished": len(finished),
            "failed": sum(1 for j in jobs if j.failed),
            "unfinished": sum(1 for j in jobs if j.finished is None),
            "restarts": sum(j.restarts for j in jobs),
            "interruptions": sum(j.interruptions for j in jobs),
        },
        "queueing": {
            "meanSeconds": _round(mean(delays)),
            "p50Seconds": _round(percentile(delays, 0.5)),
            "p95Seconds": _round(percentile(delays, 0.95)),
            "p99Seconds": _round(percentile(delays, 0.99)),
            "bySize": by_size,
        },
        "utilisation": round(utilisation, 4),
        "meanFragmentation": _round(
            _time_mean(result.series, result.series.fragmentation, result.arrival_end), 4
        ),
        "arrivalWindowSeconds": round(result.arrival_end, 1),
        "makespanSeconds": round(result.end, 1),
        "lostDeviceHours": round(sum(j.lost_device_seconds for j in jobs) / 3600.0, 3),
        "deferredJobs": sum(1 for j in jobs if j.deferred_seconds > 0),
        "deadlines": {
            "jobs": len(deadlines),
            "missed": sum(1 for j in deadlines if j.missed_deadline),
        },
        "economics": {
            "currency": result.currency,
            **_charge_dict(total),
            "workUnits": round(work, 3),
            "costPerWorkUnit": _round(total.cost / work, 6) if work else None,
            "byNamespace": {
                k[0]: _charge_dict(v) for k, v in result.chargeback.by("namespace").items()
            },
            "byTeam": {
                k[0] or "(none)": _charge_dict(v) for k, v in result.chargeback.by("team").items()
            },
            "byPool": {
                f"{k[0]}/{k[1]}": _charge_dict(v)
                for k, v in result.chargeback.by("pool", "capacity_type").items()
            },
        },
        "inference": _inference(result),
        "simulation": {
            "events": result.events,
            "wallSeconds": round(result.wall_seconds, 3),
            "eventsPerSecond": round(result.events_per_second),
        },
        "notes": list(result.notes),
    }


def _inference(result: RunResult) -> dict[str, Any] | None:
    if not result.services:
        return None
    out: dict[str, Any] = {}
    for service in result.services:
        out[service.key] = {
            "trace": service.trace,
            "requests": service.requests,
            "served": service.served,
            "minutes": service.minutes,
            "sloAttainment": _round(service.minutes_meeting_all, 4),
            "objectives": {
                o.name: {
                    "type": o.type,
                    "percentile": o.percentile,
                    "targetMs": round(o.target_seconds * 1000, 1),
                    "minutesMeeting": _round(o.minutes_meeting, 4),
                }
                for o in service.objectives
            },
            "p95LatencySeconds": _round(service.p95_latency, 3),
            "p95TimeToFirstTokenSeconds": _round(service.p95_ttft, 3),
            "replicaHours": round(service.replica_seconds / 3600.0, 3),
            "peakReplicas": service.peak_replicas,
            **_charge_dict(service.charge),
            "scaleUps": service.scale_ups,
            "scaleDowns": service.scale_downs,
            "unplacedScaleUps": service.unplaced_episodes,
            "unplacedReplicaHours": round(service.unplaced_replica_seconds / 3600.0, 3),
        }
    return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


RATIO_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mean queue", ("queueing", "meanSeconds")),
    ("p95 queue", ("queueing", "p95Seconds")),
    ("utilisation", ("utilisation",)),
    ("fragmentation", ("meanFragmentation",)),
    ("cost", ("economics", "cost")),
    ("carbon kg", ("economics", "carbonKg")),
    ("lost dev-h", ("lostDeviceHours",)),
)


def pick(data: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = data
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def comparison(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures of several policies on one input, each with its ratio to the first policy."""
    base = summaries[0]
    rows = []
    for data in summaries:
        row: dict[str, Any] = {"policy": data["policy"]}
        for label, path in RATIO_FIELDS:
            value, reference = pick(data, path), pick(base, path)
            row[label] = value
            row[f"{label} ratio"] = (
                round(value / reference, 3) if value is not None and reference else None
            )
        rows.append(row)
    return {"baseline": base["policy"], "rows": rows}


def comparison_table(table: dict[str, Any]) -> str:
    """The comparison as a plain-text table (ratios against the first policy)."""
    labels = [label for label, _ in RATIO_FIELDS]
    header = f"{'policy':<14}" + "".join(f"{label:>22}" for label in labels)
    lines = [header, "-" * len(header)]
    for row in table["rows"]:
        cells = []
        for label in labels:
            value, ratio = row[label], row[f"{label} ratio"]
            shown = "-" if value is None else f"{value:.4g}"
            if ratio is not None and row["policy"] != table["baseline"]:
                shown += f" ({ratio:.2f}x)"
            cells.append(f"{shown:>22}")
        lines.append(f"{row['policy']:<14}" + "".join(cells))
    lines.append(f"(ratios against {table['baseline']})")
    return "\n".join(lines)
