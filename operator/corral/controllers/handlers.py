"""kopf wiring: kopf hosts the operator (start-up, clean-up, liveness, the queue probe).

The cache is fed by Corral's own informers (controllers/informer.py) rather than kopf's watch
streams: those deliver per object and never tell a handler that a relist happened, and the
operator must notice deletions missed across a relist. kopf stores nothing on the objects (no
annotations or finalizers), so GitOps tools see no drift.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from corral.controllers.clock import SystemClock
from corral.controllers.events import EventRecorder
from corral.controllers.leader import LeaderElection, start_election
from corral.controllers.runtime import POOLS_KEY, SCHEDULE_KEY, Operator
from corral.kube.rest import KubeAPI

log = logging.getLogger("corral")


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    # kopf serves no resource of its own here: no need for it to discover CRDs and namespaces
    # (nor for the RBAC that discovery takes).
    settings.scanning.disabled = True
    api = memo.get("api") or KubeAPI.from_environment()
    clock = SystemClock()
    events = EventRecorder(api, clock=clock.now)
    events.start()
    operator = Operator(
        api,
        clock=clock,
        post_event=events,
        usage_refresh_seconds=float(memo.get("usage_refresh_seconds") or 60.0),
        prometheus_url=memo.get("prometheus_url"),
        autoscaler_interval=float(memo.get("autoscaler_interval") or 15.0),
    )
    memo["operator"] = operator
    memo["events"] = events
    election: LeaderElection | None = memo.get("leader_election")
    if election is not None:
        # A standby keeps its informers warm and its work queue idle until the Lease is its.
        operator.leading.clear()
        elector, task = start_election(
            api,
            election,
            on_started_leading=lambda: _lead(operator),
            on_stopped_leading=lambda: _stop_leading(operator, memo),
        )
        memo["elector"], memo["elector_task"] = elector, task
    await operator.start()


def _lead(operator: Operator) -> None:
    if operator.synced:
        # Placements a previous leader recorded since this replica synced hold their devices
        # before the first pass; every key is looked at again (level-triggered).
        operator.jobs.assume_placements()
        for key in list(operator.cache.jobs):
            operator.queue.add(key)
        operator.queue.add(SCHEDULE_KEY)
        operator.queue.add(POOLS_KEY)
    operator.leading.set()


def _stop_leading(operator: Operator, memo: kopf.Memo) -> None:
    operator.leading.clear()
    if memo.get("stopping"):
        return  # released on shutdown
    # controller-runtime's rule: a replica that lost its Lease exits (non-zero) and comes back
    # as a standby; its writes are fenced from this moment on.
    log.error("leadership lost: stopping (the process exits non-zero)")
    lost: asyncio.Event | None = memo.get("leadership_lost")
    if lost is not None:
        lost.set()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    memo["stopping"] = True
    operator: Operator | None = memo.get("operator")
    events: EventRecorder | None = memo.get("events")
    task: asyncio.Task[None] | None = memo.get("elector_task")
    try:
        if events is not None:
            await events.stop()
        if operator is not None:
            await operator.stop()
    finally:
        # Last: no write follows the release, and the standby takes over at once.
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    operator: Operator | None = memo.get("operator")
    return len(operator.queue) if operator else -1
