"""The operator's runtime: seed the cache, feed it events, and run the work queue.

One worker processes keys one at a time (a job's reconcile, the scheduling pass, the pool status
sync), so decisions never race each other; the writes of one decision run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, get_args

from corral import metrics
from corral.api import TrainingJob
from corral.api.trainingjob import TrainingPhase
from corral.controllers.cache import object_key
from corral.controllers.context import POOLS_KEY, SCHEDULE_KEY, Context
from corral.controllers.gpupool import POOL_STATUS_INTERVAL_SECONDS, GPUPoolController
from corral.controllers.scheduler import Scheduler
from corral.controllers.trainingjob import TrainingJobController, job_view
from corral.kube.rest import ApiError, core_path, custom_path

log = logging.getLogger("corral")

Obj = dict[str, Any]
PHASES: tuple[str, ...] = get_args(TrainingPhase)


class Operator:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.jobs = TrainingJobController(ctx)
        self.scheduler = Scheduler(ctx, self.jobs)
        self.pools = GPUPoolController(ctx)
        self._tasks: list[asyncio.Task[None]] = []
        self._pools_pending = False
        self._failures: dict[str, int] = {}

    async def start(self) -> None:
        api = self.ctx.api
        (nodes, _), (pods, _), (pools, _), (jobs, _) = await asyncio.gather(
            api.list(core_path("nodes")),
            api.list(core_path("pods")),
            api.list(custom_path("gpupools")),
            api.list(custom_path("trainingjobs")),
        )
        for item, kind, version in (
            *((n, "Node", "v1") for n in nodes),
            *((p, "Pod", "v1") for p in pods),
            *((p, "GPUPool", "corral.dev/v1alpha1") for p in pools),
            *((j, "TrainingJob", "corral.dev/v1alpha1") for j in jobs),
        ):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", version)
        self.ctx.cache.seed(nodes, pods, pools, jobs)
        # Placements recorded before a restart hold their devices until their pods exist.
        for key, obj in self.ctx.cache.jobs.items():
            parsed = self.jobs.parse(obj)
            if isinstance(parsed, TrainingJob):
                self.jobs.assume(job_view(obj, parsed))
            self.ctx.queue.add(key)
        self.ctx.queue.add(SCHEDULE_KEY)
        self.ctx.queue.add(POOLS_KEY)
        log.info(
            "cache seeded: %d nodes, %d pods, %d pools, %d jobs",
            len(nodes),
            len(pods),
            len(pools),
            len(jobs),
        )
        self._tasks = [
            asyncio.create_task(self.ctx.queue.run_timers(), name="corral-timers"),
            asyncio.create_task(self._work(), name="corral-worker"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ctx.api.close()

    async def _work(self) -> None:
        while True:
            key = await self.ctx.queue.get()
            try:
                await self._dispatch(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status == 403 and "being terminated" in exc.message:
                    # The namespace is going away and takes the job with it: nothing to do.
                    log.info("%s: its namespace is being deleted; not retrying", key)
                    self._failures.pop(key, None)
                else:
                    self._retry(key, exc)
            except Exception as exc:
                self._retry(key, exc)
            finally:
                self.ctx.queue.done(key)

    def _retry(self, key: str, exc: Exception) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(60.0, 0.5 * 2 ** min(failures, 7))
        log.error(
            "reconcile of %s failed (attempt %d): %s; retrying in %.1fs",
            key,
            failures,
            exc,
            delay,
            exc_info=not isinstance(exc, ApiError),
        )
        self.ctx.queue.add_after(key, delay)

    async def _dispatch(self, key: str) -> None:
        if key == SCHEDULE_KEY:
            await self.scheduler.run_pass()
        elif key == POOLS_KEY:
            self._pools_pending = False
            await self.pools.sync()
            self._update_job_gauge()
        else:
            await self.jobs.reconcile(key)

    def _update_job_gauge(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for obj in self.ctx.cache.jobs.values():
            phase = (obj.get("status") or {}).get("phase") or "Pending"
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            metrics.JOBS.labels(phase=phase).set(count)

    def _mark_pools(self) -> None:
        """Coalesce: at most one pool status sync per interval, however many events arrive."""
        if not self._pools_pending:
            self._pools_pending = True
            self.ctx.queue.add_after(POOLS_KEY, POOL_STATUS_INTERVAL_SECONDS)

    # -- events -------------------------------------------------------------------------------

    def on_node(self, kind: str | None, obj: Obj) -> None:
        if not self.ctx.cache.apply_node(kind, obj):
            return
        self._mark_pools()
        self.ctx.queue.add(SCHEDULE_KEY)
        name = (obj.get("metadata") or {}).get("name")
        for key, job in self.ctx.cache.jobs.items():
            if name in (((job.get("status") or {}).get("placement") or {}).get("nodes") or ()):
                self.ctx.queue.add(key)

    def on_pod(self, kind: str | None, obj: Obj) -> None:
        stored = self.ctx.cache.pods.get(object_key(obj))
        job_key = self.ctx.cache.apply_pod(kind, obj)
        if job_key:
            self.ctx.queue.add(job_key)
        was = (stored or {}).get("status", {}).get("phase")
        now = (obj.get("status") or {}).get("phase")
        bound_changed = (stored or {}).get("spec", {}).get("nodeName") != (
            obj.get("spec") or {}
        ).get("nodeName")
        if kind == "DELETED" or stored is None or was != now or bound_changed:
            self._mark_pools()
        if kind == "DELETED" or (now in ("Succeeded", "Failed") and was != now):
            self.ctx.queue.add(SCHEDULE_KEY)  # devices freed

    def on_pool(self, kind: str | None, obj: Obj) -> None:
        self.ctx.cache.apply_pool(kind, obj)
        self._mark_pools()
        self.ctx.queue.add(SCHEDULE_KEY)

    def on_job(self, kind: str | None, obj: Obj) -> None:
        key = object_key(obj)
        if kind == "DELETED":
            stored = self.ctx.cache.jobs.get(key, obj)
            parsed = self.jobs.parse(stored)
            if isinstance(parsed, TrainingJob):
                view = job_view(stored, parsed)
                self.jobs.release_assumed(view, view.status.attempt)
            self.ctx.cache.apply_job(kind, obj)
            self.ctx.queue.add(SCHEDULE_KEY)
            self._mark_pools()
            return
        if self.ctx.cache.apply_job(kind, obj):
            self.ctx.queue.add(key)
