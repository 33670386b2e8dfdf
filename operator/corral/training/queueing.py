"""The training side of the scheduling pass: which jobs wait, and what each outcome writes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from corral.api.names import worker_pod_name
from corral.api.template import pod_spec
from corral.api.trainingjob import CapacityChoice, CapacityStatus, TrainingJobStatus
from corral.cost import deferral
from corral.fleet.memo import kept
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, Placement, PlacementRequest, candidate_pools, place
from corral.scheduling import cycle
from corral.scheduling.actions import Decision, Emit, RequeueAfter
from corral.scheduling.queue import Held, Inadmissible
from corral.scheduling.tenancy import PodFacts, Tenancy
from corral.training import capacity
from corral.training.accounting import budget_refusal
from corral.training.cluster import JobRecord, TrainingCluster, ledger_owner
from corral.training.lifecycle import (
    admit,
    defer,
    refusal_unchanged,
    refuse,
    wait_for_spot,
    wait_inadmissible,
)
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
        # A job waits through many passes as the same record (a new status is a new record):
        # its candidate is built once per record and tenancy. Not for a job with a cost
        # budget, whose refusal reads the pools' prices.
        build = partial(_candidate, record, view, request, tenancy, cluster.snapshot)
        keep = view.spec.budget.cost is None
        found.append((record, kept(record, "_candidate", tenancy, build) if keep else build()))
    return found


def _candidate(
    record: JobRecord,
    view: JobView,
    request: PlacementRequest,
    tenancy: Tenancy,
    snapshot: FleetSnapshot,
) -> cycle.Candidate:
    name, attempt = view.name, view.status.attempt
    priority = tenancy.priority(view.spec.priority_class_name)
    return cycle.Candidate(
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
        refused=_refused(view, request, priority, snapshot),
    )


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


@dataclass
class _Choice:
    """The deadline spot policy's decision for one waiting job, to record with its verdict."""

    status: CapacityStatus
    event: Emit | None


def _capacity_policy(
    cluster: TrainingCluster, entries: list[tuple[JobRecord, cycle.Candidate]], now: datetime
) -> tuple[list[tuple[JobRecord, cycle.Candidate]], list[Verdict], dict[str, _Choice]]:
    """The deadline spot policy (corral.training.capacity) for jobs it applies to: each is
    offered only the capacity it chose, or waits for spot (holding no pool, looked at again
    within POLICY_SECONDS and whenever capacity changes)."""
    kept, verdicts, choices = [], [], {}
    for record, candidate in entries:
        view = record.view
        assert view is not None
        if not capacity.applies(view.spec) or not capacity.offers_choice(
            cluster.snapshot, candidate.request
        ):
            kept.append((record, candidate))
            continue
        status = view.status
        available = capacity.spot_available(cluster.snapshot, candidate.request)
        decision = capacity.decide(view.spec, status, view.created, now, "none", available)
        if decision is None:
            waiting_rate = capacity.waiting_for_rate(status, now)
            choices[record.key] = _Choice(waiting_rate, None)
            kept.append((record, candidate))
            continue
        chosen, changed = capacity.record(status, decision, now)
        event = Emit("Normal", "CapacityPolicy", decision.reason) if changed else None
        if decision.capacity != "none":
            request = capacity.restrict(candidate.request, decision.capacity)
            choices[record.key] = _Choice(chosen, event)
            kept.append((record, dataclasses.replace(candidate, request=request)))
            continue
        waiting_status = wait_for_spot(view, chosen, now)
        result = Decision(waiting_status)
        if event is not None:
            result.add(event)
        result.add(RequeueAfter(capacity.POLICY_SECONDS))
        verdicts.append(Verdict(record, result))
    return kept, verdicts, choices


def _unchanged(view: JobView, choice: _Choice | None) -> bool:
    """Whether the policy's choice adds nothing to the job's status (nor an event)."""
    return choice is None or (choice.event is None and choice.status == view.status.capacity)


def _record_choice(
    snapshot: FleetSnapshot,
    status: TrainingJobStatus,
    decision: Decision,
    choice: _Choice,
    result: object,
    now: datetime,
) -> None:
    """The policy's choice goes into the verdict's status (with what the gang was placed on,
    and the learned rate counting from its start) and its event, if the choice changed."""
    status.capacity = choice.status
    if isinstance(result, Placement):
        pool = snapshot.pools[result.pool]
        kinds = {pool.capacity_types.get(node) for node in result.assignments}
        placed: CapacityChoice = "spot" if kinds == {"spot"} else "on-demand"
        status.capacity = choice.status.model_copy(update={"placed": placed})
        status.capacity = capacity.started(status, now)
    if choice.event is not None:
        decision.add(choice.event)


def _holding(cluster: TrainingCluster) -> list[PlacementRequest]:
    """The requests of the jobs that hold capacity: with the waiting ones, the jobs present."""
    return [record.request for record in cluster.holding_jobs() if record.request is not None]


def queue_pass(
    cluster: TrainingCluster, now: datetime, solve: cycle.Solve | None = None
) -> list[Verdict]:
    """One scheduling pass over the waiting TrainingJobs, in queue order. A job that waits for a
    lower-carbon window (spec.carbonDeferral) or for spot (the deadline spot policy) is not
    offered capacity and holds no pool."""
    entries, verdicts = _defer_flexible(cluster, waiting(cluster, now), now)
    entries, waiting_spot, choices = _capacity_policy(cluster, entries, now)
    verdicts += waiting_spot
    if not entries:
        return verdicts
    records = {record.key: record for record, _ in entries}
    outcomes = cycle.run(
        [candidate for _, candidate in entries],
        cluster.snapshot,
        cluster.ledger,
        solve=solve or place,
        tenancy=cluster.tenancy,
        holding=lambda: _holding(cluster),
    )
    for outcome in outcomes:
        record = records[outcome.entry.key]
        view = record.view
        assert view is not None
        result = outcome.result
        choice = choices.get(record.key)
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
        elif isinstance(result, Inadmissible):
            status, event = wait_inadmissible(view, result, now)
            decision = Decision(status)
            if event is not None:
                decision.add(event)
        else:
            if isinstance(result, Held):
                reason, permanent = result.reason, False
            else:
                assert isinstance(result, NoFit)
                reason, permanent = result.reason, result.permanent
            if not permanent and refusal_unchanged(view, reason) and _unchanged(view, choice):
                continue  # already told exactly this: nothing to write
            status, event = refuse(view, reason, permanent, now)
            decision = Decision(status)
            if event is not None:
                decision.add(event)
        if choice is not None:
            _record_choice(cluster.snapshot, status, decision, choice, result, now)
        verdicts.append(
            Verdict(record, decision, result if isinstance(result, Placement) else None)
        )
    return verdicts
