"""kopf wiring: watch four kinds and hand every event to the operator runtime.

Only `on.event` handlers are used: they store nothing on the objects (no kopf annotations or
finalizers, so GitOps tools see no drift), and the runtime decides what to reconcile.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from corral.controllers.context import Context
from corral.controllers.runtime import Operator
from corral.kube.rest import KubeAPI


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.request_timeout = 60
    api = memo.get("api") or KubeAPI.from_environment()
    operator = Operator(Context(api=api))
    await operator.start()
    memo["operator"] = operator


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    operator: Operator | None = memo.get("operator")
    if operator is not None:
        await operator.stop()


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["operator"].on_node(event.get("type"), dict(event["object"]))


@kopf.on.event("", "v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["operator"].on_pod(event.get("type"), dict(event["object"]))


@kopf.on.event("corral.dev", "v1alpha1", "gpupools")
async def pool_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["operator"].on_pool(event.get("type"), dict(event["object"]))


@kopf.on.event("corral.dev", "v1alpha1", "trainingjobs")
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["operator"].on_job(event.get("type"), dict(event["object"]))


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    operator: Operator | None = memo.get("operator")
    return len(operator.ctx.queue) if operator else -1
