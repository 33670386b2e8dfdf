"""Kubernetes Events, aggregated and rate-limited as client-go's EventCorrelator does, and sent
off the work queue's path.

- Dedupe: an Event equal to one already posted (same object uid, type, reason, message) is not
  created again; the existing one's `count` and `lastTimestamp` are patched (`kubectl describe`
  shows "x5 over 10m").
- Aggregate: more than MAX_SIMILAR distinct messages for one object, type and reason within
  SIMILAR_WINDOW become one Event "(combined from similar events): <latest message>".
- Spam filter: a token bucket per object (burst 25, one token per 5 minutes), so a flapping job
  costs etcd at most ~25 writes and then one per 5 minutes, whatever it does.

`EventCorrelator` is the pure part (time passed in). `EventRecorder.post` is synchronous and never
waits: it logs the event, correlates it and puts the write on a bounded queue that a background
task sends; when the queue is full the write is dropped and counted. Repeated updates of one
Event that are still waiting are coalesced into the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral import metrics
from corral.api.meta import format_time
from corral.kube import builders
from corral.kube.errors import ApiError
from corral.kube.rest import KubeAPI, core_path

log = logging.getLogger("corral.events")

Obj = dict[str, Any]

BURST = 25
REFILL_SECONDS = 300.0
MAX_SIMILAR = 10
SIMILAR_WINDOW_SECONDS = 600.0
CACHE_ENTRIES = 4096
COMBINED_PREFIX = "(combined from similar events): "
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class CreateEvent:
    key: tuple[str, ...]
    body: Obj


@dataclass(frozen=True)
class PatchEvent:
    key: tuple[str, ...]
    namespace: str
    name: str
    patch: Obj
    body: Obj
    """The whole Event as it now stands: created instead if the old one is gone (events expire
    from etcd after an hour)."""


EventWrite = CreateEvent | PatchEvent


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def touch(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class _Bucket:
    tokens: float
    at: datetime


@dataclass
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: datetime | None = None


@dataclass
class _Posted:
    body: Obj
    count: int


class EventCorrelator:
    """Pure: decides, for each event, to create, to patch a count, or to drop it."""

    def __init__(
        self,
        *,
        component: str = "corral",
        burst: int = BURST,
        refill_seconds: float = REFILL_SECONDS,
        max_similar: int = MAX_SIMILAR,
        similar_window_seconds: float = SIMILAR_WINDOW_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
    ):
        self.component = component
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_similar = max_similar
        self.similar_window_seconds = similar_window_seconds
        self._buckets = _LRU(cache_entries)
        self._similar = _LRU(cache_entries)
        self._posted = _LRU(cache_entries)

    def correlate(
        self, involved: Obj, type_: str, reason: str, message: str, now: datetime
    ) -> EventWrite | None:
        """The write to make, or None when the object's budget is spent."""
        obj = _object_key(involved)
        if self._similar_beyond_limit((*obj, type_, reason), message, now):
            # One Event for all of them, keyed without the message: later ones update it.
            message = COMBINED_PREFIX + message
            key = (*obj, type_, reason, COMBINED_PREFIX)
        else:
            key = (*obj, type_, reason, message)
        posted = self._posted.get(key)
        if posted is None:
            body = builders.event(
                involved=involved,
                type_=type_,
                reason=reason,
                message=message,
                now=now,
                component=self.component,
            )
            posted = _Posted(body, 1)
            write: EventWrite = CreateEvent(key, body)
        else:
            posted.count += 1
            stamp = format_time(now)
            posted.body = {**posted.body, "count": posted.count, "lastTimestamp": stamp}
            meta = posted.body["metadata"]
            write = PatchEvent(
                key,
                meta["namespace"],
                meta["name"],
                {"count": posted.count, "lastTimestamp": stamp, "message": message},
                posted.body,
            )
        # Observed (and counted) even when filtered: the next write carries the true count.
        self._posted.touch(key, posted)
        if not self._take_token(obj, now):
            return None
        return write

    def _similar_beyond_limit(
        self, similar_key: tuple[str, ...], message: str, now: datetime
    ) -> bool:
        record: _Similar | None = self._similar.get(similar_key)
        if record is None or (
            record.last is not None
            and (now - record.last).total_seconds() > self.similar_window_seconds
        ):
            record = _Similar()
        record.messages.add(message)
        record.last = now
        self._similar.touch(similar_key, record)
        return len(record.messages) > self.max_similar

    def _take_token(self, obj: tuple[str, ...], now: datetime) -> bool:
        bucket: _Bucket | None = self._buckets.get(obj)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, (now - bucket.at).total_seconds())
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed / self.refill_seconds)
            bucket.at = now
        self._buckets.touch(obj, bucket)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


def _object_key(involved: Obj) -> tuple[str, ...]:
    meta = involved.get("metadata") or {}
    return (
        str(involved.get("kind") or ""),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventRecorder:
    """`post()` from anywhere (synchronous, never blocks); a background task sends."""

    def __init__(
        self,
        api: KubeAPI,
        *,
        clock: Callable[[], datetime] = utcnow,
        correlator: EventCorrelator | None = None,
        queue_size: int = QUEUE_SIZE,
    ):
        self.api = api
        self.clock = clock
        self.correlator = correlator or EventCorrelator()
        self.queue_size = queue_size
        self._order: deque[tuple[str, ...]] = deque()
        self._pending: dict[tuple[str, ...], EventWrite] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def post(self, involved: Obj, type_: str, reason: str, message: str) -> None:
        meta = involved.get("metadata") or {}
        who = (
            f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
        )
        # The log tells the same story as `kubectl describe`, including what the filter drops.
        log.log(
            logging.WARNING if type_ == "Warning" else logging.INFO,
            "%s %s: %s: %s",
            involved.get("kind"),
            who,
            reason,
            message,
        )
        write = self.correlator.correlate(involved, type_, reason, message, self.clock())
        if write is None:
            metrics.EVENTS.labels("rate_limited").inc()
            return
        waiting = self._pending.get(write.key)
        if waiting is not None:
            # Still unsent: send the latest state once. A create stays a create.
            self._pending[write.key] = (
                CreateEvent(write.key, _body(write)) if isinstance(waiting, CreateEvent) else write
            )
            return
        if len(self._order) >= self.queue_size:
            metrics.EVENTS.labels("dropped").inc()
            return
        self._pending[write.key] = write
        self._order.append(write.key)
        self._idle.clear()
        self._wakeup.set()

    __call__ = post
    """The runtime's PostEvent: `recorder(involved, type, reason, message)`."""

    @property
    def pending(self) -> int:
        """Writes waiting to be sent. (Not __len__: an empty recorder must stay truthy.)"""
        return len(self._order)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="corral-events")

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Send what is queued (for at most `drain_seconds`), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await self._idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def drained(self) -> None:
        """Returns once every queued write was sent (or failed)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            while not self._order:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            key = self._order.popleft()
            write = self._pending.pop(key)
            await self._send(write)

    async def _send(self, write: EventWrite) -> None:
        body = _body(write)
        namespace = body["metadata"]["namespace"]
        try:
            if isinstance(write, PatchEvent):
                try:
                    await self.api.patch(core_path("events", namespace, write.name), write.patch)
                    metrics.EVENTS.labels("aggregated").inc()
                    return
                except ApiError as exc:
                    if not exc.is_not_found:
                        raise
            await self.api.create(core_path("events", namespace), body)
            metrics.EVENTS.labels("created").inc()
        except ApiError as exc:
            if exc.is_already_exists:
                return  # the same Event, from an attempt whose answer was lost
            metrics.EVENTS.labels("failed").inc()
            log.warning(
                "could not post event %s on %s: %s",
                body.get("reason"),
                body["involvedObject"].get("name"),
                exc,
            )


def _body(write: EventWrite) -> Obj:
    return write.body
