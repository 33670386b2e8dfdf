"""The training side of the scheduling pass: which jobs wait, and what each outcome writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.api.names import worker_pod_name
from corral.cost import deferral
from corral.placement import NoFit, Placement, candidate_pools
from corral.scheduling import cycle
from corral.scheduling.actions import Decision, Emit, RequeueAfter
from corral.scheduling.queue import Held
from corral.training.cluster import JobRecord, TrainingCluster, ledger_owner
from corral.training.lifecycle import admit, defer, refuse

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


def _defer_flexible(
    cluster: TrainingCluster, entries: list[tuple[JobRecord, cycle.Candidate]], now: datetime
) -> tuple[list[tuple[JobRecord, cycle.Candidate]], list[Verdict]]:
    """Split off the jobs that wait for a lower-carbon window of their pools (corral.cost.deferral),
    with the verdict that says so; the rest go to the pass."""
    kept, verdicts = [], []
    for record, candidate in entries:
        view = record.view
        assert view is not None
        if view.spec.carbon_deferral is None:
            kept.append((record, candidate))
            continue
        until = view.status.deferred_until
        if until is not None and until > now:
            continue  # already waiting for that window; woken when it opens
        pools = {
            name: cluster.snapshot.pools[name].spec.carbon
            for name in candidate_pools(cluster.snapshot, candidate.request)
        }
        wait = deferral.for_job(view.spec, now, pools)
        if wait is None:
            kept.append((record, candidate))
            continue
        status, event = defer(view, wait.until, wait.reason, now)
        decision = Decision(status)
        if event is not None:
            decision.add(event)
        decision.add(RequeueAfter((wait.until - now).total_seconds()))
        verdicts.append(Verdict(record, decision))
    return kept, verdicts


def queue_pass(
    cluster: TrainingCluster, now: datetime, solve: cycle.Solve | None = None
) -> list[Verdict]:
    """One scheduling pass over the waiting TrainingJobs, in queue order. A job that waits for a
    lower-carbon window (spec.carbonDeferral) is not offered capacity and holds no pool."""
    entries, verdicts = _defer_flexible(cluster, waiting(cluster, now), now)
    if not entries:
        return verdicts
    records = {record.key: record for record, _ in entries}
    outcomes = cycle.run(
        [candidate for _, candidate in entries],
        cluster.snapshot,
        cluster.ledger,
        **({"solve": solve} if solve is not None else {}),
    )
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
