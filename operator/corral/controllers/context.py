"""What every controller of the operator shares: the API, the cache, the queue and the clock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.controllers.cache import ClusterCache
from corral.controllers.workqueue import WorkQueue
from corral.kube import builders
from corral.kube.rest import ApiError, KubeAPI, core_path

log = logging.getLogger("corral")

SCHEDULE_KEY = "schedule"
POOLS_KEY = "pools"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    api: KubeAPI
    cache: ClusterCache = field(default_factory=ClusterCache)
    queue: WorkQueue = field(default_factory=WorkQueue)
    clock: Callable[[], datetime] = utcnow

    async def post_event(
        self, involved: dict[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """Events are best effort: a lost event must never fail a reconcile. Each is logged too,
        so the operator's log tells the same story as `kubectl describe`."""
        meta = involved.get("metadata") or {}
        who = (
            f"{meta.get('namespace')}/{meta.get('name')}"
            if meta.get("namespace")
            else meta.get("name")
        )
        log.log(
            logging.WARNING if type_ == "Warning" else logging.INFO,
            "%s %s: %s: %s",
            involved.get("kind"),
            who,
            reason,
            message,
        )
        body = builders.event(
            involved=involved, type_=type_, reason=reason, message=message, now=self.clock()
        )
        namespace = body["metadata"]["namespace"]
        try:
            await self.api.create(core_path("events", namespace), body)
        except ApiError as exc:
            log.warning(
                "could not post event %s on %s: %s",
                reason,
                involved.get("metadata", {}).get("name"),
                exc,
            )
