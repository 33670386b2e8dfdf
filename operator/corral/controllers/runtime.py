"""The operator's runtime: informers feed the cache, events mark keys, one worker decides.

One worker processes keys one at a time (a job's reconcile, the scheduling pass, the pool status
sync), so decisions never race each other; the writes of one decision run concurrently. Nothing is
decided before every informer has listed once (Karpenter's `Synced()` gate), and nothing is
written unless this replica leads (see `leading`).

What marks work, and what does not: an object's own status write never does (the cache drops
its echo); a job's spec or a pod of the job does; a node's capacity-relevant change, a pod
that frees devices and a pool's spec change run the scheduling pass; pool status is recomputed
at most every POOL_STATUS_INTERVAL_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, get_args

from corral import metrics
from corral.api.trainingjob import TrainingPhase
from corral.controllers.cache import Change, ClusterCache, capacity_view, controller_uid
from corral.controllers.clock import Clock, SystemClock
from corral.controllers.executor import Blocked, Executor, PostEvent
from corral.controllers.gpupool import POOL_STATUS_INTERVAL_SECONDS, GPUPoolController
from corral.controllers.hooks import HookCaller
from corral.controllers.inferenceservice import (
    ADMISSION,
    CAPACITY,
    InferenceServiceController,
)
from corral.controllers.inferenceservice import KEY_PREFIX as INFERENCE_PREFIX
from corral.controllers.informer import Informer, Resource
from corral.controllers.live import LiveCluster
from corral.controllers.notices import NoticeProblems
from corral.controllers.trainingjob import TrainingJobController
from corral.controllers.workqueue import WorkQueue
from corral.kube.client import Client
from corral.kube.rest import ApiError
from corral.scheduling.actions import Emit
from corral.sources.metrics import MetricsSource

log = logging.getLogger("corral")

Obj = dict[str, Any]
PHASES: tuple[str, ...] = get_args(TrainingPhase)
SCHEDULE_KEY = "schedule"
POOLS_KEY = "pools"
USAGE_REFRESH_SECONDS = 60.0

RESOURCES = (
    Resource("Node", "v1", "nodes", namespaced=False),
    Resource("Pod", "v1", "pods", namespaced=True),
    Resource("GPUPool", "corral.dev/v1alpha1", "gpupools", namespaced=False),
    Resource("TrainingJob", "corral.dev/v1alpha1", "trainingjobs", namespaced=True),
    Resource("InferenceService", "corral.dev/v1alpha1", "inferenceservices", namespaced=True),
    # Only the Services Corral makes (a job's rendezvous Service, an InferenceService's Service).
    Resource(
        "Service",
        "v1",
        "services",
        namespaced=True,
        label_selector="app.kubernetes.io/managed-by=corral",
    ),
    # Admission: pool access by namespace labels, quotas, priorities (scheduling/admission.py).
    Resource("Namespace", "v1", "namespaces", namespaced=False),
    Resource("ResourceQuota", "v1", "resourcequotas", namespaced=True),
    Resource("PriorityClass", "scheduling.k8s.io/v1", "priorityclasses", namespaced=False),
)


class Operator:
    def __init__(
        self,
        api: Client,
        clock: Clock | None = None,
        post_event: PostEvent | None = None,
        usage_refresh_seconds: float = USAGE_REFRESH_SECONDS,
        metrics: MetricsSource | None = None,
        prometheus_url: str | None = None,
        autoscaler_interval: float = 15.0,
    ):
        self.api = api
        self.clock: Clock = clock or SystemClock()
        self.cache = ClusterCache()
        self.cluster = LiveCluster(self.cache)
        self.queue = WorkQueue(self.clock)
        self.usage_refresh_seconds = usage_refresh_seconds
        self.post_event: PostEvent = post_event if post_event is not None else _log_event
        self.hooks = HookCaller(api, self.cache, self.queue.add, self.post_event, self.clock)
        self.executor = Executor(api, self.cache, self.post_event, self.hooks.call)
        self.notice_problems = NoticeProblems(self.post_event)
        self.jobs = TrainingJobController(self)
        self.inference = InferenceServiceController(
            self,
            metrics=metrics,
            tick_seconds=autoscaler_interval,
            default_prometheus=prometheus_url,
        )
        self.pools = GPUPoolController(self)
        self.informers = [Informer(api, r, self, self.clock) for r in RESOURCES]
        self.leading = asyncio.Event()
        """Set while this replica may decide and write (always, without leader election)."""
        self.leading.set()
        self.synced = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pools_pending = False
        self._failures: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the informers and, once all have synced, the worker."""
        for informer in self.informers:
            self._tasks.append(
                asyncio.create_task(
                    informer.run(), name=f"corral-informer-{informer.resource.kind}"
                )
            )
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
        self.synced = True
        self.jobs.assume_placements()
        for key in self.cache.jobs:
            self.queue.add(key)
        for key in self.cache.inference_services:
            self.queue.add(INFERENCE_PREFIX + key)
        self.queue.add(SCHEDULE_KEY)
        self.queue.add(POOLS_KEY)
        log.info(
            "cache seeded: %d nodes, %d pods, %d pools, %d jobs",
            len(self.cache.nodes),
            len(self.cache.pods),
            len(self.cache.pools),
            len(self.cache.jobs),
        )
        self._tasks += [
            asyncio.create_task(self.queue.run_timers(), name="corral-timers"),
            asyncio.create_task(self._work(), name="corral-worker"),
            asyncio.create_task(self.inference.run_ticks(), name="corral-autoscaler"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.hooks.close()
        await self.inference.metrics.close()
        await self.api.close()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [*self._tasks, *self.hooks.tasks]

    # -- the worker -----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.leading.wait()
                await self._dispatch(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Blocked as exc:
                self._retry(key, exc, quiet=True)
            except ApiError as exc:
                if exc.is_namespace_terminating:
                    # The namespace is going away and takes the object with it.
                    log.info("%s: its namespace is being deleted; not retrying", key)
                    self._failures.pop(key, None)
                else:
                    self._retry(key, exc)
            except Exception as exc:
                self._retry(key, exc)
            finally:
                self.queue.done(key)

    def _retry(self, key: str, exc: Exception, quiet: bool = False) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(60.0, 0.5 * 2 ** min(failures, 7))
        log.log(
            logging.INFO if quiet else logging.ERROR,
            "reconcile of %s failed (attempt %d): %s; retrying in %.1fs",
            key,
            failures,
            exc,
            delay,
            exc_info=not quiet and not isinstance(exc, ApiError),
        )
        self.queue.add_after(key, delay)

    async def _dispatch(self, key: str) -> None:
        if key == SCHEDULE_KEY:
            await self.jobs.run_pass()
        elif key == POOLS_KEY:
            self._pools_pending = False
            await self.pools.sync()
            self._update_job_gauge()
        elif key.startswith(INFERENCE_PREFIX):
            await self.inference.reconcile(key.removeprefix(INFERENCE_PREFIX))
        else:
            await self.jobs.reconcile(key)

    # -- helpers for controllers ----------------------------------------------------------------

    def schedule_pass(self, after: float = 0.0) -> None:
        self.queue.add_after(SCHEDULE_KEY, after)

    def mark_pools(self) -> None:
        """Coalesce: at most one pool status sync per interval, however many events arrive."""
        if not self._pools_pending:
            self._pools_pending = True
            self.queue.add_after(POOLS_KEY, POOL_STATUS_INTERVAL_SECONDS)

    async def refresh(self, kind: str, key: str) -> None:
        """Read one object again after a conflict (its watch event may still be on the way)."""
        resource = next(r for r in RESOURCES if r.kind == kind)
        try:
            current = await self.api.get(resource.object_path(key))
        except ApiError as exc:
            if exc.status == 404:
                self.on_event(kind, "DELETED", _meta_only(key), "list")
                return
            raise
        current.setdefault("kind", kind)
        current.setdefault("apiVersion", resource.api_version)
        self.on_event(kind, "SYNC", current, "list")

    def count_events(self, events: Iterable[Emit], namespace: str) -> None:
        for event in events:
            if event.reason == "Restarted":
                metrics.JOB_RESTARTS.labels(namespace=namespace).inc()

    def _update_job_gauge(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for obj in self.cache.jobs.values():
            phase = (obj.get("status") or {}).get("phase") or "Pending"
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            metrics.JOBS.labels(phase=phase).set(count)

    # -- the informers' sink --------------------------------------------------------------------

    def keys(self, kind: str) -> set[str]:
        return self.cache.keys(kind)

    def awaiting_echo(self, kind: str, key: str) -> bool:
        return self.cache.awaiting_echo(kind, key)

    def on_event(self, kind: str, type_: str, obj: Obj, source: str) -> None:
        if type_ == "DELETED":
            # Routing needs the object as it was (a synthesised DELETED carries only the name).
            stored = self.cache.objects.get(kind, {}).get(_key_of(obj))
            obj = stored or obj
        change = self.cache.apply(kind, type_, obj, source)
        if change is not None:
            ROUTES.get(kind, _ignore)(self, change)


def _route_node(op: Operator, change: Change) -> None:
    if (
        change.old is not None
        and change.new is not None
        and capacity_view(change.old) == capacity_view(change.new)
    ):
        return  # heartbeats
    op.notice_problems.observe(change.key, change.new)
    op.mark_pools()
    op.schedule_pass()
    op.inference.wake(CAPACITY)
    for key, job in op.cache.jobs.items():
        nodes = ((job.get("status") or {}).get("placement") or {}).get("nodes") or ()
        if change.key in nodes:
            op.queue.add(key)
    # InferenceServices with a replica there (a notice makes them replace it).
    for namespace, name in list(op.cache.snapshot.pods_on.get(change.key, ())):
        owner = controller_uid(op.cache.pods.get(f"{namespace}/{name}") or {})
        routed = op.cache.by_uid.get(owner) if owner is not None else None
        if routed is not None and routed.startswith(INFERENCE_PREFIX):
            op.queue.add(routed)


def _route_pod(op: Operator, change: Change) -> None:
    pod = change.new or change.old or {}
    owner = controller_uid(pod)
    if owner is not None and owner in op.cache.by_uid:
        op.queue.add(op.cache.by_uid[owner])
    old_status = (change.old or {}).get("status") or {}
    new_status = (change.new or {}).get("status") or {}
    bound_changed = ((change.old or {}).get("spec") or {}).get("nodeName") != (
        (change.new or {}).get("spec") or {}
    ).get("nodeName")
    if (
        change.new is None
        or change.old is None
        or bound_changed
        or (old_status.get("phase") != new_status.get("phase"))
    ):
        op.mark_pools()
    if change.new is None or (
        new_status.get("phase") in ("Succeeded", "Failed")
        and old_status.get("phase") != new_status.get("phase")
    ):
        op.schedule_pass()  # devices freed
        op.inference.wake(CAPACITY)


def _route_pool(op: Operator, change: Change) -> None:
    if (
        change.old is not None
        and change.new is not None
        and change.old.get("spec") == change.new.get("spec")
    ):
        return  # a status write (ours, or anyone's): nothing placement reads changed
    op.mark_pools()
    op.schedule_pass()
    op.inference.wake(ADMISSION | CAPACITY)


def _route_job(op: Operator, change: Change) -> None:
    if change.new is None:
        op.jobs.forget(change.key)
        op.schedule_pass()
        op.mark_pools()
        return
    op.queue.add(change.key)


def _route_service(op: Operator, change: Change) -> None:
    if change.new is None:  # someone deleted a Service Corral made: its owner ensures it again
        owner = controller_uid(change.old or {})
        if owner is not None and owner in op.cache.by_uid:
            op.queue.add(op.cache.by_uid[owner])


def _route_inference(op: Operator, change: Change) -> None:
    if change.new is None:
        op.inference.forget(change.key)
        op.schedule_pass()
        op.mark_pools()
        return
    op.queue.add(INFERENCE_PREFIX + change.key)


def _route_tenancy(op: Operator, change: Change) -> None:
    """A Namespace's labels, a ResourceQuota or a PriorityClass changed: admission may differ.
    (The cache keeps only what admission reads, so any change that reaches here matters.)
    InferenceServices refused by admission are woken too: of the namespace for a Namespace
    (its key is its name) or a ResourceQuota, everywhere for a PriorityClass."""
    op.schedule_pass()
    namespace = None if change.kind == "PriorityClass" else change.key.partition("/")[0]
    op.inference.wake(ADMISSION, namespace)


def _ignore(op: Operator, change: Change) -> None:
    return None


ROUTES: dict[str, Callable[[Operator, Change], None]] = {
    "Node": _route_node,
    "Pod": _route_pod,
    "GPUPool": _route_pool,
    "TrainingJob": _route_job,
    "InferenceService": _route_inference,
    "Service": _route_service,
    "Namespace": _route_tenancy,
    "ResourceQuota": _route_tenancy,
    "PriorityClass": _route_tenancy,
}


def _key_of(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _meta_only(key: str) -> Obj:
    namespace, _, name = key.rpartition("/")
    return {"metadata": {"name": name, **({"namespace": namespace} if namespace else {})}}


def _log_event(involved: Obj, type_: str, reason: str, message: str) -> None:
    meta = involved.get("metadata") or {}
    log.log(
        logging.WARNING if type_ == "Warning" else logging.INFO,
        "%s %s/%s: %s: %s",
        involved.get("kind"),
        meta.get("namespace"),
        meta.get("name"),
        reason,
        message,
    )
