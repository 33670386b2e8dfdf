"""TrainingJob controller: read the job and its pods, call the domain, execute its actions.

No decisions here: the lifecycle (`corral.training.lifecycle`) and the scheduling pass
(`corral.training.queueing`) decide; this module builds the pods they ask for, executes the
actions, and turns outcomes into work-queue entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from corral import metrics
from corral.api.conditions import set_condition
from corral.api.names import worker_pod_name
from corral.api.trainingjob import TrainingJobStatus
from corral.controllers.executor import (
    Blocked,
    Conflict,
    Gone,
    PodRejected,
    QuotaRefused,
    Target,
)
from corral.cost.chargeback import split_by_capacity_type, team_of
from corral.cost.charges import Charge
from corral.disruption.checkpoints import RequestId, resume_env
from corral.kube import builders
from corral.kube.rest import ApiError, custom_path
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.scheduling.actions import CreateWorker, Decision, Emit, WriteStatus
from corral.training import capacity, replacement
from corral.training.accounting import Price, placement_price
from corral.training.cluster import JobRecord, ledger_owner, owners_of
from corral.training.lifecycle import ACTIVE, quota_refused, reconcile, reject_pods
from corral.training.pods import WorkerPod
from corral.training.queueing import queue_pass
from corral.training.step import JobView, counts_batch_delay

if TYPE_CHECKING:
    from corral.controllers.runtime import Operator

log = logging.getLogger("corral.trainingjob")

Obj = dict[str, Any]
Refusal = Callable[[JobView, Sequence[WorkerPod], str, datetime, Price | None], Decision]
"""What a refusal of the job's pods decides: fail the job, or send it back to the queue."""


class TrainingJobController:
    def __init__(self, operator: Operator):
        self.op = operator
        self._usage_due: dict[str, float] = {}
        """Job key -> monotonic time its usage is next brought up to date."""
        self._reported_usage: dict[str, Charge] = {}
        self._blocked: dict[str, str] = {}
        """Job key -> what blocks it, already told in an event."""
        self._status_written: dict[str, float] = {}
        """Job key -> monotonic time of its last status write (worker counts are batched)."""

    # -- building -------------------------------------------------------------------------------

    def target(
        self, obj: Obj, record: JobRecord, decided: TrainingJobStatus | None = None
    ) -> Target:
        """`decided`: the status the decision writes first, which workers it creates follow
        (a worker replaced in place resumes from the checkpoint that same write records)."""
        view = record.view
        meta = obj.get("metadata") or {}

        def worker(action: CreateWorker) -> tuple[Obj, dict[str, int]] | None:
            assert view is not None and record.request is not None
            status = decided or view.status
            placement = status.placement
            pool = self.op.cluster.pool(placement.pool) if placement else None
            if pool is None:
                return None
            checkpoint = status.last_checkpoint
            pod = builders.worker_pod(
                namespace=view.namespace,
                job=view.name,
                uid=view.uid,
                spec=view.spec,
                index=action.index,
                attempt=action.attempt,
                node=action.node,
                pool=placement.pool if placement else "",
                resource_name=pool.spec.resource_name,
                pool_tolerations=pool.spec.tolerations,
                resume_env=resume_env(checkpoint),
                replacement=action.replacement,
            )
            return pod, record.request.worker_requests(pool.spec.resource_name)

        def service() -> Obj:
            assert view is not None
            return builders.rendezvous_service(
                namespace=view.namespace,
                job=view.name,
                uid=view.uid,
                port=view.spec.rendezvous.port,
            )

        return Target(
            obj=obj,
            kind="TrainingJob",
            status_path=custom_path(
                "trainingjobs", meta.get("namespace"), meta.get("name"), "status"
            ),
            ledger_owner=lambda attempt: ledger_owner(record.key, attempt),
            worker=worker if view is not None else None,
            service=service if view is not None else None,
        )

    # -- reconciling ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cluster = self.op.cluster
        obj = self.op.cache.jobs.get(key)
        record = cluster.training_job(key)
        if obj is None or record is None:
            self.forget(key)
            return
        if record.view is None or record.request is None:
            await self._refuse_invalid(obj, record.problem or "invalid")
            return
        view = record.view
        now = self.op.clock.now()
        mono = self.op.clock.monotonic()
        due = self._usage_due.get(key)
        refresh = due is not None and mono >= due
        pods = cluster.job_pods(key)
        placement = view.status.placement
        price = placement_price(
            cluster.snapshot,
            cluster.pool(placement.pool) if placement else None,
            placement.nodes if placement else [],
        )
        decision = reconcile(
            view,
            pods,
            now,
            cluster.snapshot.node_problem,
            price,
            refresh,
            cluster.node_notice,
            overcommitted=cluster.snapshot.overcommitted,
            replace_workers=replacement.bind(cluster.snapshot, record.request),
            spot_fits=capacity.fits_spot(cluster.snapshot, record.request),
        )
        assert isinstance(decision.status, TrainingJobStatus)
        target = self.target(obj, record, decision.status)
        actions = decision.actions
        last = self._status_written.get(key)
        held = counts_batch_delay(
            view.status, decision.status, None if last is None else mono - last
        )
        if held is not None:
            actions = [a for a in actions if not isinstance(a, WriteStatus)]
            self.op.queue.add_after(key, held)
        try:
            outcome = await self.op.executor.execute(target, actions)
        except QuotaRefused as exc:
            log.info("%s: a ResourceQuota refused a worker, back to the queue: %s", key, exc)
            await self._after_refusal(key, str(exc), quota_refused)
            return
        except PodRejected as exc:
            log.warning("%s: worker pods refused: %s", key, exc)
            await self._after_refusal(key, str(exc), reject_pods)
            return
        except Blocked as exc:
            if self._blocked.get(key) != str(exc):
                self._blocked[key] = str(exc)
                self.op.post_event(obj, "Warning", "Blocked", str(exc))
            raise
        self._blocked.pop(key, None)
        if outcome.status_written:
            self._status_written[key] = mono
            self._report_usage(view, decision.status)
            _observe_disruption(view.status, decision.status, now)
        self.op.count_events(outcome.events, view.namespace)
        if placement is not None and any(e.reason == "RaceLost" for e in outcome.events):
            metrics.GANG_RACES.labels(pool=placement.pool).inc()
        if outcome.wants_placement:
            self.op.schedule_pass()
        if outcome.requeue_after is not None:
            self.op.queue.add_after(key, outcome.requeue_after + 0.5)
        if outcome.wrote_pods:
            self.op.queue.add(key)  # the answers are cached: the next step (ungate) can follow
        status = decision.status
        assert isinstance(status, TrainingJobStatus)
        if status.phase in ACTIVE:
            if due is None or refresh:
                due = mono + self.op.usage_refresh_seconds
                self._usage_due[key] = due
            self.op.queue.add_after(key, due - mono)
        else:
            self._usage_due.pop(key, None)

    def forget(self, key: str) -> None:
        """The job is gone: every per-job entry goes, and its planned workers leave the ledger."""
        self._usage_due.pop(key, None)
        self._reported_usage.pop(key, None)
        self._blocked.pop(key, None)
        self._status_written.pop(key, None)
        ledger = self.op.cache.ledger
        for owner in owners_of(key, ledger.owners()):
            ledger.forget(owner)

    async def _after_refusal(self, key: str, message: str, decide: Refusal) -> None:
        """Decide on a refusal from what is stored now: the status written and the pods made so
        far (fail the job, or send it back to the queue)."""
        obj = self.op.cache.jobs.get(key)
        record = self.op.cluster.training_job(key)
        if obj is None or record is None or record.view is None:
            return
        decision = decide(
            record.view, self.op.cluster.job_pods(key), message, self.op.clock.now(), None
        )
        outcome = await self.op.executor.execute(self.target(obj, record), decision.actions)
        if outcome.requeue_after is not None:
            self.op.queue.add_after(key, outcome.requeue_after + 0.5)

    async def _refuse_invalid(self, obj: Obj, problem: str) -> None:
        try:
            status = TrainingJobStatus.model_validate(obj.get("status") or {})
        except Exception:
            status = TrainingJobStatus()  # a status we cannot read is replaced, not trusted
        if status.phase == "Failed":
            return
        now = self.op.clock.now()
        generation = (obj.get("metadata") or {}).get("generation")
        status.phase = "Failed"
        status.observed_generation = generation if isinstance(generation, int) else None
        status.conditions = set_condition(
            status.conditions, "Failed", "True", "InvalidSpec", problem, now, generation
        )
        decision = Decision(status)
        decision.add(Emit("Warning", "InvalidSpec", problem))
        target = Target.status_of(obj, "TrainingJob", "trainingjobs")
        try:
            await self.op.executor.execute(target, decision.actions)
        except Gone:
            return

    # -- the scheduling pass --------------------------------------------------------------------

    async def run_pass(self) -> None:
        now = self.op.clock.now()
        verdicts = queue_pass(self.op.cluster, now, solve=_timed_place)
        for verdict in verdicts:
            key = verdict.record.key
            obj = self.op.cache.jobs.get(key)
            view = verdict.record.view
            assert view is not None
            owner = ledger_owner(key, view.status.attempt)
            if obj is None:
                self.op.cache.ledger.forget(owner)
                continue
            try:
                outcome = await self.op.executor.execute(
                    self.target(obj, verdict.record), verdict.decision.actions
                )
            except (Conflict, Gone, ApiError) as exc:
                if verdict.placement is not None:
                    self.op.cache.ledger.forget(owner)
                if isinstance(exc, Conflict):
                    await self.op.refresh("TrainingJob", key)
                    self.op.schedule_pass()
                elif not isinstance(exc, Gone):
                    log.warning("could not record the decision for %s: %s", key, exc)
                    self.op.schedule_pass(after=1.0)
                continue
            if outcome.status_written:
                self._status_written[key] = self.op.clock.monotonic()
            if outcome.requeue_after is not None:
                # A job kept waiting for a time (spot, a lower-carbon window) is looked at again
                # then: its reconcile asks for a pass.
                self.op.queue.add_after(key, outcome.requeue_after + 0.5)
            if verdict.placement is not None:
                _observe_queue_time(view, now)
                self.op.queue.add(key)

    def assume_placements(self) -> None:
        """After a (re)start: placements recorded in status hold their devices until their pods
        exist, before the first scheduling pass."""
        cluster = self.op.cluster
        for record in cluster.training_jobs():
            view, request = record.view, record.request
            if view is None or request is None or view.status.placement is None:
                continue
            placement = view.status.placement
            pool = cluster.pool(placement.pool)
            if pool is None:
                continue
            cluster.ledger.assume(
                ledger_owner(record.key, view.status.attempt),
                view.namespace,
                {
                    worker_pod_name(
                        view.name, index, view.status.attempt, placement.replacement(index)
                    ): node
                    for index, node in enumerate(placement.nodes)
                },
                request.worker_requests(pool.spec.resource_name),
            )

    # -- metrics ----------------------------------------------------------------------------------

    def _report_usage(self, view: JobView, status: Any) -> None:
        """Advance the usage counters by what grew since last seen (first sight is the baseline),
        labelled by namespace, team (`corral.dev/team`), pool and the capacity type of the
        workers' nodes."""
        assert isinstance(status, TrainingJobStatus)
        placement = view.status.placement or status.placement
        now = Charge(status.device_hours, status.cost, status.energy_kwh, status.carbon_grams)
        last = self._reported_usage.get(view.key)
        self._reported_usage[view.key] = now
        if last is None or placement is None:
            return
        grown = Charge(
            now.device_hours - last.device_hours,
            now.cost - last.cost,
            now.energy_kwh - last.energy_kwh,
            now.carbon_grams - last.carbon_grams,
        )
        if grown.device_hours <= 0:
            return
        pool = self.op.cluster.pool(placement.pool)
        snapshot = self.op.cluster.snapshot
        workers: list[tuple[str, float]] = []
        for node in placement.nodes:
            kind = snapshot.capacity_type_of(node) or "on-demand"
            workers.append((kind, pool.spec.pricing.per_device_hour(kind) if pool else 0.0))
        obj = self.op.cache.jobs.get(view.key) or {}
        team = team_of((obj.get("metadata") or {}).get("labels"))
        currency = status.currency or "USD"
        for capacity_type, part in split_by_capacity_type(grown, workers).items():
            labels = {
                "namespace": view.namespace,
                "team": team,
                "pool": placement.pool,
                "capacity_type": capacity_type,
            }
            metrics.DEVICE_HOURS.labels(**labels).inc(part.device_hours)
            if part.cost > 0:
                metrics.COST.labels(**labels, currency=currency).inc(part.cost)
            if part.energy_kwh > 0:
                metrics.ENERGY_KWH.labels(**labels).inc(part.energy_kwh)
            if part.carbon_grams > 0:
                metrics.CARBON_GRAMS.labels(**labels).inc(part.carbon_grams)


def _timed_place(snapshot: Any, request: PlacementRequest) -> Placement | NoFit:
    started = time.perf_counter()
    try:
        return place(snapshot, request)
    finally:
        metrics.PLACEMENT_SECONDS.observe(time.perf_counter() - started)


def _observe_disruption(before: TrainingJobStatus, after: Any, now: datetime) -> None:
    """The disruption metrics, from what a status write changed (written once, counted once)."""
    assert isinstance(after, TrainingJobStatus)
    restart = after.last_restart
    pool = before.placement.pool if before.placement else ""
    if after.interruptions > before.interruptions and restart is not None:
        metrics.INTERRUPTIONS.labels(
            pool=pool, source=restart.source or "node-failure", kind="TrainingJob"
        ).inc()
        if restart.lost_work_seconds is not None:
            metrics.LOST_WORK_SECONDS.labels(pool=pool).observe(restart.lost_work_seconds)
    checkpoint = after.last_checkpoint
    if checkpoint is not None and (
        before.last_checkpoint is None or before.last_checkpoint.id != checkpoint.id
    ):
        request = RequestId.parse(checkpoint.id)
        if request is not None:
            waited = max(0.0, (now - request.time).total_seconds())
            metrics.CHECKPOINT_SECONDS.labels(pool=pool).observe(waited)
    if (
        after.phase == "Running"
        and before.phase != "Running"
        and restart is not None
        and restart.reason not in ("AppError", "CapacityPolicy")
        and restart.since is not None
        and after.interruptions > 0
        and before.phase == "Recovering"
    ):
        recovered_on = after.placement.pool if after.placement else pool
        recovered = max(0.0, (now - restart.since).total_seconds())
        metrics.RECOVERY_SECONDS.labels(pool=recovered_on).observe(recovered)


def _observe_queue_time(view: JobView, now: datetime) -> None:
    waited = (now - (view.status.queued_since or view.created)).total_seconds()
    metrics.JOB_QUEUE_SECONDS.observe(max(0.0, waited))
