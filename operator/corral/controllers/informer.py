"""A list+watch reflector per kind, in the manner of client-go's: the cache's only feed.

LIST once (paginated), then WATCH from the list's resourceVersion with bookmarks, re-watching from
the last version seen whenever a stream ends. When the version is too old (410 Gone: the watch was
down across an etcd compaction), LIST again and diff: every object the cache holds that the new
list lacks was deleted while nobody was looking, and a DELETED is synthesised for it — so no
phantom pod keeps holding devices and no phantom node receives a gang. `synced` is set once the
first list has been delivered: the runtime makes no decision before every informer has synced.

kopf's own watch streams are not used for this: they deliver per-object, batched, and never tell
a handler that a relist happened, so deletions missed across a relist could not be detected.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from corral import metrics
from corral.controllers.clock import Clock, SystemClock
from corral.kube.client import Client, group_path
from corral.kube.rest import ApiError

log = logging.getLogger("corral.informer")

Obj = dict[str, Any]


class Sink(Protocol):
    def on_event(self, kind: str, type_: str, obj: Obj, source: str) -> None:
        """`type_`: ADDED, MODIFIED, DELETED, or SYNC (an object of a (re)list);
        `source`: "watch" or "list"."""
        ...

    def keys(self, kind: str) -> set[str]:
        """Keys (`namespace/name` or `name`) of the objects of `kind` the sink holds."""
        ...

    def awaiting_echo(self, kind: str, key: str) -> bool:
        """The sink stored an answer to its own write that no watch event has confirmed yet."""
        ...


@dataclass(frozen=True)
class Resource:
    kind: str
    api_version: str
    """`v1` or `group/version`."""
    plural: str
    namespaced: bool
    label_selector: str | None = None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def collection(self) -> str:
        return group_path(self.group, self.version, self.plural)

    def object_path(self, key: str) -> str:
        namespace, _, name = key.rpartition("/")
        return group_path(self.group, self.version, self.plural, namespace or None, name)


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    def __init__(
        self,
        api: Client,
        resource: Resource,
        sink: Sink,
        clock: Clock | None = None,
        watch_timeout_seconds: int = 290,
    ):
        self.api = api
        self.resource = resource
        self.sink = sink
        self.clock: Clock = clock or SystemClock()
        self.watch_timeout_seconds = watch_timeout_seconds
        self.synced = asyncio.Event()
        self.relists = 0
        self._params = {"labelSelector": resource.label_selector} if resource.label_selector else {}

    async def run(self) -> None:
        version: str | None = None
        failures = 0
        while True:
            try:
                if version is None:
                    version = await self._relist()
                    self.synced.set()
                version = await self._watch(version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status == 410:
                    log.info("%s: watch expired (%s); listing again", self.resource.kind, exc)
                    version = None
                    continue
                failures += 1
                await self._backoff(failures, exc)
                if failures >= 3:
                    version = None  # something is off with the stream: start from a list
            except Exception as exc:
                failures += 1
                await self._backoff(failures, exc)
                version = None

    async def _backoff(self, failures: int, exc: Exception) -> None:
        delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * (0.75 + random.random() / 2)
        log.warning("%s: list/watch failed (%s); retrying in %.1fs", self.resource.kind, exc, delay)
        await self.clock.sleep(delay)

    async def _relist(self) -> str:
        kind = self.resource.kind
        items, version = await self.api.list(self.resource.collection(), self._params)
        seen: set[str] = set()
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", self.resource.api_version)
            seen.add(object_key(item))
            self.sink.on_event(kind, "SYNC", item, "list")
        if self.synced.is_set():
            self.relists += 1
            metrics.INFORMER_RELISTS.labels(kind=kind).inc()
        for key in sorted(self.sink.keys(kind) - seen):
            if self.sink.awaiting_echo(kind, key):
                # Our own write may be newer than the list: ask rather than guess.
                try:
                    current = await self.api.get(self.resource.object_path(key))
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                else:
                    current.setdefault("kind", kind)
                    current.setdefault("apiVersion", self.resource.api_version)
                    self.sink.on_event(kind, "SYNC", current, "list")
                    continue
            namespace, _, name = key.rpartition("/")
            gone = {"metadata": {"name": name, **({"namespace": namespace} if namespace else {})}}
            self.sink.on_event(kind, "DELETED", gone, "list")
        return version

    async def _watch(self, version: str) -> str:
        kind = self.resource.kind
        async for event in self.api.watch(
            self.resource.collection(),
            resource_version=version,
            timeout_seconds=self.watch_timeout_seconds,
            params=self._params,
        ):
            type_ = event.get("type")
            obj = event.get("object") or {}
            if type_ == "ERROR":
                code = obj.get("code")
                raise ApiError(
                    int(code) if isinstance(code, int) else 500,
                    str(obj.get("reason") or "Error"),
                    str(obj.get("message") or obj),
                )
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if type_ == "BOOKMARK":
                continue
            if type_ not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", self.resource.api_version)
            self.sink.on_event(kind, str(type_), obj, "watch")
        return version
