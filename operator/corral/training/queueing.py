"""The training side of the scheduling pass: which jobs wait, and what each outcome writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.api.names import worker_pod_name
from corral.placement import NoFit, Placement
from corral.scheduling import cycle
from corral.scheduling.actions import Decision, Emit
from corral.scheduling.queue import Held
from corral.training.cluster import JobRecord, TrainingCluster, ledger_owner
from corral.training.lifecycle import admit, refuse

WAITING_PHASES = ("Pending", "Queued", "Recovering")


@dataclass
class Verdict:
    """What the pass decided for one waiting job."""

    record: JobRecord
    decision: Decision
    placement: Placement | None = None
    """Set when the job was placed: its workers are in the ledger until the write fails."""


def waiting(cluster: TrainingCluster, now: datetime) -> list[tuple[JobRecord, cycle.Candidate]]:
    """Valid jobs waiting for placement, not suspended and not backing off."""
    found = []
    for record in cluster.training_jobs():
        view, request = record.view, record.request
        if view is None or request is None:
            continue
        status = view.status
        if status.placement is not None or status.phase not in WAITING_PHASES:
            continue
        if view.spec.suspend:
            continue
        requeue = status.requeue_state
        if requeue is not None and requeue.requeue_at is not None and requeue.requeue_at > now:
            continue
        name, attempt = view.name, status.attempt
        found.append(
            (
                record,
                cycle.Candidate(
                    key=record.key,
                    namespace=view.namespace,
                    priority=view.spec.priority,
                    since=view.created,
                    request=request,
                    worker_name=lambda i, name=name, attempt=attempt: worker_pod_name(  # type: ignore[misc]
                        name, i, attempt
                    ),
                    owner=ledger_owner(record.key, attempt),
                ),
            )
        )
    return found


def queue_pass(
    cluster: TrainingCluster, now: datetime, solve: cycle.Solve | None = None
) -> list[Verdict]:
    """One scheduling pass over the waiting TrainingJobs, in queue order."""
    entries = waiting(cluster, now)
    if not entries:
        return []
    records = {record.key: record for record, _ in entries}
    outcomes = cycle.run(
        [candidate for _, candidate in entries],
        cluster.snapshot,
        cluster.ledger,
        **({"solve": solve} if solve is not None else {}),
    )
    verdicts = []
    for outcome in outcomes:
        record = records[outcome.entry.key]
        view = record.view
        assert view is not None
        result = outcome.result
        if isinstance(result, Placement):
            status = admit(
                view,
                result.pool,
                result.span_level,
                result.span_domain,
                list(result.assignments),
                result.explanation,
                now,
            )
            decision = Decision(status)
            decision.add(Emit("Normal", "Placed", result.explanation))
            verdicts.append(Verdict(record, decision, result))
            continue
        if isinstance(result, Held):
            reason, permanent = result.reason, False
        else:
            assert isinstance(result, NoFit)
            reason, permanent = result.reason, result.permanent
        status, event = refuse(view, reason, permanent, now)
        decision = Decision(status)
        if event is not None:
            decision.add(event)
        verdicts.append(Verdict(record, decision))
    return verdicts
