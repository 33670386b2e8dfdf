"""The scheduling pass: offer capacity to waiting TrainingJobs in queue order.

Runs whenever a job starts waiting or capacity may have freed (a pod ended or went away, a node
became usable, a pool changed). Each placement is entered in the snapshot as assumed pods before
the next job is tried, so two gangs of one pass can never be given the same devices.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from corral import metrics
from corral.api import TrainingJob
from corral.controllers.context import Context
from corral.controllers.trainingjob import TrainingJobController, job_view
from corral.kube.rest import ApiError
from corral.placement import NoFit, Placement, PlacementRequest, candidate_pools, place
from corral.training.lifecycle import JobView, admit, refuse
from corral.training.queue import Held, QueueEntry, schedule

log = logging.getLogger("corral.scheduler")

WAITING_PHASES = ("Pending", "Queued", "Recovering")


@dataclass
class _Waiting:
    obj: dict[str, Any]
    view: JobView
    request: PlacementRequest


class Scheduler:
    def __init__(self, ctx: Context, jobs: TrainingJobController):
        self.ctx = ctx
        self.jobs = jobs

    def waiting(self) -> dict[str, _Waiting]:
        found: dict[str, _Waiting] = {}
        for key, obj in self.ctx.cache.jobs.items():
            status = obj.get("status") or {}
            if status.get("placement") or status.get("phase", "Pending") not in WAITING_PHASES:
                continue  # placed, running or finished: not worth validating on every pass
            parsed = self.jobs.parse(obj)
            if not isinstance(parsed, TrainingJob) or parsed.spec.suspend:
                continue
            view = job_view(obj, parsed)
            if view.status.phase not in WAITING_PHASES or view.status.placement is not None:
                continue
            found[key] = _Waiting(obj, view, PlacementRequest.from_training_job(parsed))
        return found

    async def run_pass(self) -> None:
        waiting = self.waiting()
        if not waiting:
            return
        snapshot = self.ctx.cache.snapshot
        entries = [
            QueueEntry(
                key=key,
                priority=w.view.spec.priority,
                since=w.view.created,
                pools=frozenset(candidate_pools(snapshot, w.request)),
            )
            for key, w in waiting.items()
        ]
        now = self.ctx.clock()

        def try_place(entry: QueueEntry) -> Placement | NoFit:
            started = time.perf_counter()
            result = place(snapshot, waiting[entry.key].request)
            metrics.PLACEMENT_SECONDS.observe(time.perf_counter() - started)
            if isinstance(result, Placement):
                w = waiting[entry.key]
                w.view = _admitted(w.view, result, now)
                self.jobs.assume(w.view)
            return result

        outcomes = schedule(
            entries,
            try_place,
            fits=lambda r: isinstance(r, Placement),
            permanent=lambda r: isinstance(r, NoFit) and r.permanent,
        )
        for outcome in outcomes:
            w = waiting[outcome.entry.key]
            try:
                await self._apply(w, outcome.result)
            except ApiError as exc:
                log.warning("could not record the decision for %s: %s", outcome.entry.key, exc)
                if isinstance(outcome.result, Placement):
                    self.jobs.release_assumed(w.view, w.view.status.attempt)
                if exc.status != 404:
                    self.ctx.queue.add_after("schedule", 1.0)

    async def _apply(self, w: _Waiting, result: Placement | NoFit | Held) -> None:
        now = self.ctx.clock()
        if isinstance(result, Placement):
            original = w.view.status
            await self.jobs.write_status(w.obj, w.view.status)
            waited = (now - (original.queued_since or w.view.created)).total_seconds()
            metrics.JOB_QUEUE_SECONDS.observe(max(0.0, waited))
            await self.ctx.post_event(w.obj, "Normal", "Placed", result.explanation)
            self.ctx.queue.add(w.view.key)
            return
        if isinstance(result, Held):
            reason, permanent = result.reason, False
        else:
            reason, permanent = result.reason, result.permanent
        status, event = refuse(w.view, reason, permanent, now)
        await self.jobs.write_status(w.obj, status)
        if event is not None:
            await self.ctx.post_event(w.obj, event.type, event.reason, event.message)


def _admitted(view: JobView, placement: Placement, now: datetime) -> JobView:
    status = admit(
        view,
        placement.pool,
        placement.span_level,
        placement.span_domain,
        list(placement.assignments),
        placement.explanation,
        now,
    )
    return replace(view, status=status)
