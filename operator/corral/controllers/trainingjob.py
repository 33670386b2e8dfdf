"""TrainingJob controller: read the job and its pods, call the lifecycle, write the decision.

A decision is executed in an order that keeps the lifecycle's invariants if the operator dies
between any two writes: status first (it records placements, attempts and settled usage), then
deletions, then the rendezvous Service, then new pods, then ungating, then events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from corral import metrics
from corral.api import GPUPool, InvalidObject, TrainingJob, parse_object
from corral.api.conditions import set_condition
from corral.api.names import worker_pod_name
from corral.api.trainingjob import TrainingJobStatus
from corral.controllers.context import SCHEDULE_KEY, Context
from corral.kube import builders
from corral.kube.patches import merge_patch
from corral.kube.rest import ApiError, core_path, custom_path
from corral.training.lifecycle import Decision, JobView, Price, reconcile, reject_pods
from corral.training.pods import WorkerPod

log = logging.getLogger("corral.trainingjob")

ACCOUNTING_REFRESH_SECONDS = 60.0
"""How often a running job's deviceHours and cost are brought up to date."""

Obj = dict[str, Any]


def job_view(obj: Obj, job: TrainingJob) -> JobView:
    meta = job.metadata
    assert meta.name and meta.namespace and meta.creationTimestamp
    return JobView(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid or "",
        generation=meta.generation or 0,
        created=meta.creationTimestamp,
        spec=job.spec,
        status=job.status or TrainingJobStatus(),
    )


class TrainingJobController:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._services: dict[str, str] = {}
        """Job key -> uid of the job whose rendezvous Service is known to exist."""
        self._reported_usage: dict[str, tuple[float, float]] = {}

    # -- reading ------------------------------------------------------------------------------

    def parse(self, obj: Obj) -> TrainingJob | str:
        """The validated job, or why it is invalid (with the field path)."""
        try:
            job = parse_object(obj, expect="TrainingJob")
        except InvalidObject as exc:
            return str(exc)
        assert isinstance(job, TrainingJob)
        return job

    def pool(self, name: str) -> GPUPool | None:
        obj = self.ctx.cache.pools.get(name)
        if obj is None:
            return None
        try:
            pool = parse_object(obj, expect="GPUPool")
        except InvalidObject:
            return None
        return pool if isinstance(pool, GPUPool) else None

    def worker_pods(self, key: str) -> list[WorkerPod]:
        """The job's pods that read as Corral workers (hand-edited labels drop a pod out)."""
        return [p for p in (WorkerPod.from_pod(pod) for pod in self.ctx.cache.job_pods(key)) if p]

    def node_problem(self, name: str) -> str | None:
        node = self.ctx.cache.nodes.get(name)
        if node is None:
            return f"node {name} no longer exists"
        if (node.get("spec") or {}).get("unschedulable"):
            return f"node {name} is cordoned"
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            return f"node {name} is NotReady"
        return None

    def price(self, view: JobView) -> Price | None:
        placement = view.status.placement
        pool = self.pool(placement.pool) if placement else None
        if placement is None or pool is None:
            return None
        per_worker = [
            pool.spec.pricing.per_device_hour(
                self.ctx.cache.snapshot.capacity_type_of(node) or "on-demand"
            )
            for node in placement.nodes
        ]
        average = sum(per_worker) / len(per_worker) if per_worker else 0.0
        return Price(per_device_hour=average, currency=pool.spec.pricing.currency)

    # -- reconciling --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        obj = self.ctx.cache.jobs.get(key)
        if obj is None:
            self._reported_usage.pop(key, None)
            self._services.pop(key, None)
            return
        parsed = self.parse(obj)
        if isinstance(parsed, str):
            await self._refuse_invalid(obj, parsed)
            return
        view = job_view(obj, parsed)
        pods = self.worker_pods(key)
        decision = reconcile(view, pods, self.ctx.clock(), self.node_problem, self.price(view))
        try:
            await self.execute(obj, view, decision)
        except PodRejected as exc:
            log.warning("%s: worker pods refused: %s", key, exc)
            await self._fail_rejected(key, str(exc))
            return
        if decision.wants_placement:
            self.ctx.queue.add(SCHEDULE_KEY)
        if decision.requeue_after is not None:
            self.ctx.queue.add_after(key, decision.requeue_after + 0.5)
        elif decision.status.phase in ("Running", "Placing", "Recovering", "Checkpointing"):
            self.ctx.queue.add_after(key, ACCOUNTING_REFRESH_SECONDS)

    async def _fail_rejected(self, key: str, message: str) -> None:
        """Fail the job from what is stored now: the status written and the pods made so far."""
        obj = self.ctx.cache.jobs.get(key)
        parsed = self.parse(obj) if obj is not None else None
        if obj is None or not isinstance(parsed, TrainingJob):
            return
        view = job_view(obj, parsed)
        pods = self.worker_pods(key)
        decision = reject_pods(view, pods, message, self.ctx.clock(), self.price(view))
        await self.execute(obj, view, decision)

    async def _refuse_invalid(self, obj: Obj, problem: str) -> None:
        status = TrainingJobStatus.model_validate(obj.get("status") or {})
        if status.phase == "Failed":
            return
        now = self.ctx.clock()
        generation = (obj.get("metadata") or {}).get("generation")
        status.phase = "Failed"
        status.observed_generation = generation
        status.conditions = set_condition(
            status.conditions, "Failed", "True", "InvalidSpec", problem, now, generation
        )
        await self.write_status(obj, status)
        await self.ctx.post_event(obj, "Warning", "InvalidSpec", problem)

    async def write_status(self, obj: Obj, status: TrainingJobStatus) -> Obj:
        """Patch only what changed; the answer goes to the cache at once."""
        patch = merge_patch(obj.get("status") or {}, status.to_wire())
        if not patch:
            return obj
        meta = obj["metadata"]
        answer = await self.ctx.api.patch(
            custom_path("trainingjobs", meta["namespace"], meta["name"], "status"),
            {"status": patch},
        )
        self.ctx.cache.apply_job("MODIFIED", answer)
        metrics.STATUS_WRITES.labels(kind="TrainingJob").inc()
        return answer

    async def execute(self, obj: Obj, view: JobView, decision: Decision) -> None:
        ns = view.namespace
        try:
            obj = await self.write_status(obj, decision.status)
        except ApiError as exc:
            if exc.status == 404:
                return  # deleted meanwhile; ownerReferences clean up
            raise
        self._report_usage(view, decision.status)
        await _gather(self._delete_pod(ns, name) for name in decision.delete)
        if decision.status.attempt != view.status.attempt or decision.status.placement is None:
            self.release_assumed(view, view.status.attempt)
        if decision.ensure_service and self._services.get(view.key) != view.uid:
            service = builders.rendezvous_service(
                namespace=ns, job=view.name, uid=view.uid, port=view.spec.rendezvous.port
            )
            await self._create(core_path("services", ns), service)
            self._services[view.key] = view.uid
        if decision.create:
            pods = [self.worker_pod(view, c.index, c.attempt, c.node) for c in decision.create]
            await _gather(self._create_pod(ns, pod) for pod in pods if pod is not None)
        await _gather(self._ungate(ns, name) for name in decision.ungate)
        for event in decision.events:
            await self.ctx.post_event(obj, event.type, event.reason, event.message)
            if event.reason == "Restarted":
                metrics.JOB_RESTARTS.labels(namespace=ns).inc()

    def worker_pod(self, view: JobView, index: int, attempt: int, node: str) -> Obj | None:
        placement = view.status.placement
        pool = self.pool(placement.pool) if placement else None
        if placement is None or pool is None:
            return None
        checkpoint = view.status.last_checkpoint
        return builders.worker_pod(
            namespace=view.namespace,
            job=view.name,
            uid=view.uid,
            spec=view.spec,
            index=index,
            attempt=attempt,
            node=node,
            pool=placement.pool,
            resource_name=pool.spec.resource_name,
            pool_tolerations=pool.spec.tolerations,
            resume_from=checkpoint.id if checkpoint else None,
        )

    # -- the assumed ledger -------------------------------------------------------------------

    def assume(self, view: JobView) -> None:
        """Count the planned workers' devices now, before their pods exist."""
        placement = view.status.placement
        if placement is None:
            return
        for index, node in enumerate(placement.nodes):
            name = worker_pod_name(view.name, index, view.status.attempt)
            if f"{view.namespace}/{name}" in self.ctx.cache.pods:
                continue
            pod = self.worker_pod(view, index, view.status.attempt, node)
            if pod is not None:
                self.ctx.cache.snapshot.upsert_pod(pod)

    def release_assumed(self, view: JobView, attempt: int) -> None:
        """Forget planned workers of an attempt that were never created."""
        for index in range(view.spec.workers):
            name = worker_pod_name(view.name, index, attempt)
            if f"{view.namespace}/{name}" not in self.ctx.cache.pods:
                self.ctx.cache.snapshot.remove_pod(view.namespace, name)

    # -- writes -------------------------------------------------------------------------------

    async def _create(self, path: str, body: Obj) -> Obj | None:
        try:
            return await self.ctx.api.create(path, body)
        except ApiError as exc:
            if exc.status == 409:
                return None  # made before a restart: deterministic names make this idempotent
            raise

    async def _create_pod(self, namespace: str, pod: Obj) -> None:
        try:
            answer = await self._create(core_path("pods", namespace), pod)
        except ApiError as exc:
            if _is_rejection(exc):
                raise PodRejected(exc.message) from exc
            raise
        if answer is not None:
            self.ctx.cache.apply_pod("ADDED", answer)

    async def _delete_pod(self, namespace: str, name: str) -> None:
        try:
            answer = await self.ctx.api.delete(core_path("pods", namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                self.ctx.cache.forget_pod(namespace, name)
                return
            raise
        if answer.get("kind") == "Pod":
            self.ctx.cache.apply_pod("MODIFIED", answer)

    async def _ungate(self, namespace: str, name: str) -> None:
        try:
            answer = await self.ctx.api.patch(
                core_path("pods", namespace, name),
                [{"op": "remove", "path": "/spec/schedulingGates"}],
                patch_type="json",
            )
        except ApiError as exc:
            if exc.status in (404, 422):
                return  # gone, or already ungated
            raise
        self.ctx.cache.apply_pod("MODIFIED", answer)

    def _report_usage(self, view: JobView, status: TrainingJobStatus) -> None:
        """Advance the usage counters by what grew since last seen (first sight is the baseline)."""
        pool = status.placement.pool if status.placement else (self._reported_pool(view) or "")
        last = self._reported_usage.get(view.key)
        self._reported_usage[view.key] = (status.device_hours, status.cost)
        if last is None or not pool:
            return
        hours, cost = status.device_hours - last[0], status.cost - last[1]
        if hours > 0:
            metrics.DEVICE_HOURS.labels(namespace=view.namespace, pool=pool).inc(hours)
        if cost > 0:
            metrics.COST.labels(
                namespace=view.namespace, pool=pool, currency=status.currency or "USD"
            ).inc(cost)

    def _reported_pool(self, view: JobView) -> str | None:
        return view.status.placement.pool if view.status.placement else None


class PodRejected(Exception):
    """The API server (validation or an admission policy) refused a worker pod."""


def _is_rejection(exc: ApiError) -> bool:
    """Invalid (422), or forbidden by admission (403) — but not the operator's own RBAC, and not
    a namespace being deleted, which are no fault of the job."""
    if exc.status == 422:
        return True
    return (
        exc.status == 403
        and "cannot create resource" not in exc.message
        and "being terminated" not in exc.message
    )


async def _gather(calls: Any) -> None:
    tasks: list[Awaitable[None]] = list(calls)
    if tasks:
        await asyncio.gather(*tasks)
