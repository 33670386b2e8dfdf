"""kopf wiring: kopf hosts the operator (start-up, clean-up, liveness, the queue probe).

The cache is fed by Corral's own informers (controllers/informer.py) rather than kopf's watch
streams: those deliver per object and never tell a handler that a relist happened, and the
operator must notice deletions missed across a relist. kopf stores nothing on the objects (no
annotations or finalizers), so GitOps tools see no drift.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from corral.controllers.clock import SystemClock
from corral.controllers.runtime import ApiEvents, Operator
from corral.kube.rest import KubeAPI


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    api = memo.get("api") or KubeAPI.from_environment()
    clock = SystemClock()
    operator = Operator(
        api,
        clock=clock,
        post_event=ApiEvents(api, clock),
        usage_refresh_seconds=float(memo.get("usage_refresh_seconds") or 60.0),
        prometheus_url=memo.get("prometheus_url"),
    )
    memo["operator"] = operator
    await operator.start()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    operator: Operator | None = memo.get("operator")
    if operator is not None:
        await operator.stop()


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    operator: Operator | None = memo.get("operator")
    return len(operator.queue) if operator else -1
