"""The training side of the scheduling pass: which jobs wait, and what each outcome writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.api.names import worker_pod_name
from corral.api.template import pod_spec
from corral.cost import deferral
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, Placement, PlacementRequest, candidate_pools, place
from corral.scheduling import cycle
from corral.scheduling.actions import Decision, Emit, RequeueAfter
from corral.scheduling.queue import Held, Inadmissible
from corral.scheduling.tenancy import PodFacts
from corral.training.accounting import budget_refusal
from corral.training.cluster import JobRecord, TrainingCluster, ledger_owner
from corral.training.lifecycle import admit, defer, refusal_unchanged, refuse, wait_inadmissible
from corral.training.step import JobView

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
    tenancy = cluster.tenancy
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
        priority = tenancy.priority(view.spec.priority_class_name)
        found.append(
            (
                record,
                cycle.Candidate(
                    key=record.key,
                    namespace=view.namespace,
                    priority=priority if priority is not None else tenancy.default_priority,
                    since=view.created,
                    request=request,
                    worker_name=lambda i, name=name, attempt=attempt: worker_pod_name(  # type: ignore[misc]
                        name, i, attempt
                    ),
                    owner=ledger_owner(record.key, attempt),
                    pod=PodFacts(
                        priority_class=view.spec.priority_class_name or tenancy.default_class,
                        terminating="activeDeadlineSeconds" in pod_spec(view.spec.template),
                    ),
                    refused=_refused(view, request, priority, cluster.snapshot),
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


def _refused(
    view: JobView, request: PlacementRequest, priority: int | None, snapshot: FleetSnapshot
) -> Inadmissible | None:
    """What the TrainingJob domain refuses before the pass: an unknown PriorityClass, a budget
    the next run would exceed."""
    if priority is None:
        return Inadmissible(
            "PriorityClassNotFound",
            f"spec.priorityClassName: there is no PriorityClass {view.spec.priority_class_name} "
            "(`kubectl get priorityclasses` lists them; an admin creates them)",
        )
    budget = view.spec.budget
    price = None
    if budget.cost is not None and budget.expected_duration_seconds is not None:
        prices = [
            snapshot.pools[pool].spec.pricing.per_device_hour(capacity)
            for pool in candidate_pools(snapshot, request)
            for capacity in request.capacity_types
            if snapshot.pools[pool].spec.capacity_type in ("auto", capacity)
        ]
        price = min(prices, default=None)
    problem = budget_refusal(view.spec, view.status, request.devices, price)
    return Inadmissible("BudgetExceeded", problem) if problem is not None else None


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
        solve=solve or place,
        tenancy=cluster.tenancy,
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
        if isinstance(result, Inadmissible):
            status, event = wait_inadmissible(view, result, now)
            decision = Decision(status)
            if event is not None:
                decision.add(event)
            verdicts.append(Verdict(record, decision))
            continue
        if isinstance(result, Held):
            reason, permanent = result.reason, False
        else:
            assert isinstance(result, NoFit)
            reason, permanent = result.reason, result.permanent
        if not permanent and refusal_unchanged(view, reason):
            continue  # already told exactly this: nothing to write
        status, event = refuse(view, reason, permanent, now)
        decision = Decision(status)
        if event is not None:
            decision.add(event)
        verdicts.append(Verdict(record, decision))
    return verdicts
