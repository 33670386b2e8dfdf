"""An in-memory Kubernetes API for unit tests: the `Client` interface without a cluster.

What it keeps of the real API server's behaviour, because the operator's correctness depends on
it: resourceVersions (one counter, opaque strings to the caller), `metadata.generation` bumped on
spec changes of custom resources, the status subresource (a status write changes only status, a
main write never changes status), merge and JSON patches, optimistic concurrency (a patch carrying
`metadata.resourceVersion` or a delete with preconditions fails with 409 when stale), graceful
deletion of bound pods, ownerReference garbage collection, and ordered watch streams with a
bounded history (a watch from a compacted version answers 410 Gone).

What it adds for tests: every request counted by verb and resource; faults injected by verb and
resource (409, 410, 429, 500, timeouts, optionally after the write was applied); a crash point
after the k-th write; and the parts of kube-scheduler and the kubelet that tests need
(`schedule`, `start`, `finish`, `finish_deletions`), which write as other actors and are not
counted as the operator's requests.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.api.meta import format_time
from corral.kube.rest import ApiError

Obj = dict[str, Any]
ResourceKey = tuple[str, str]
"""(group, resource): ("", "pods"), ("corral.dev", "trainingjobs")."""
ObjectKey = tuple[str, str]
"""(namespace, name); namespace "" for cluster-scoped objects."""

CLUSTER_SCOPED = {
    ("", "nodes"),
    ("", "namespaces"),
    ("corral.dev", "gpupools"),
    ("scheduling.k8s.io", "priorityclasses"),
}
WITHOUT_STATUS_SUBRESOURCE = {("", "events"), ("", "configmaps"), ("coordination.k8s.io", "leases")}
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


class Crashed(BaseException):
    """Raised by the write after the crash point: a BaseException, so that no `except Exception`
    of the code under test can swallow it — the process "died" between two writes."""


@dataclass
class Fault:
    verb: str
    """GET, LIST, WATCH, POST, PUT, PATCH or DELETE."""
    resource: str
    """"pods", "trainingjobs/status", ... ("*" for any)."""
    status: int
    """HTTP status to answer; 0 is a timeout (the client's ConnectionError)."""
    times: int = 1
    after_apply: bool = False
    """Apply the write, then fail: the client cannot tell whether it happened."""
    name: str | None = None
    """Only requests for this object name."""
    message: str | None = None
    """What the error says (the API server's words matter to some callers: "exceeded quota")."""

    def matches(self, verb: str, resource: str, name: str | None) -> bool:
        return (
            self.times > 0
            and self.verb == verb
            and self.resource in ("*", resource)
            and (self.name is None or self.name == name)
        )


@dataclass(frozen=True)
class Path:
    group: str
    version: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> ResourceKey:
        return (self.group, self.resource)

    @property
    def counted_as(self) -> str:
        return self.resource + (f"/{self.subresource}" if self.subresource else "")


def parse_path(path: str) -> Path:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "NotFound", f"no such path {path}")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, "NotFound", f"no such path {path}")
    return Path(
        group,
        version,
        rest[0],
        namespace,
        rest[1] if len(rest) > 1 else None,
        rest[2] if len(rest) > 2 else None,
    )


# -- label selectors ----------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    """The label selector syntax of `?labelSelector=` (equality, set and existence terms)."""
    for term in _split_selector(selector or ""):
        term = term.strip()
        if not term:
            continue
        if match := _SET_TERM.match(term):
            key, op, values = (
                match.group(1),
                match.group(2),
                {v.strip() for v in match.group(3).split(",")},
            )
            if (labels.get(key) in values) != (op == "in") or (op == "in" and key not in labels):
                return False
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.split("==" if "==" in term else "=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


# -- patches ------------------------------------------------------------------------------------


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def apply_json_patch(target: Obj, operations: list[Obj]) -> Obj:
    """RFC 6902 (add, remove, replace, test); a failing operation is 422, as the API server says."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        parent: Any = doc
        for part in parts[:-1]:
            try:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            except (KeyError, IndexError, ValueError):
                raise ApiError(
                    422, "Invalid", f"jsonpatch {op['op']}: doc is missing path {op['path']}"
                ) from None
        last = parts[-1]
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiError(422, "Invalid", f"jsonpatch test failed at {op['path']}")
        elif kind == "remove":
            try:
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            except (KeyError, IndexError, ValueError):
                raise ApiError(
                    422, "Invalid", f"jsonpatch remove: doc is missing path {op['path']}"
                ) from None
        elif kind in ("add", "replace"):
            value = copy.deepcopy(op.get("value"))
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"jsonpatch replace: missing {op['path']}")
                parent[last] = value
        else:
            raise ApiError(422, "Invalid", f"jsonpatch: unsupported op {kind}")
    return doc


# -- the fake -----------------------------------------------------------------------------------


@dataclass
class _Watch:
    key: ResourceKey
    namespace: str | None
    selector: str | None
    queue: asyncio.Queue[Obj | ApiError | None] = field(default_factory=asyncio.Queue)


def _meta(obj: Obj) -> Obj:
    meta = obj.setdefault("metadata", {})
    assert isinstance(meta, dict)
    return meta


class FakeAPI:
    def __init__(self, clock: Callable[[], datetime] | None = None, history: int = 10_000):
        self.clock = clock or (lambda: datetime.now(UTC))
        self.objects: dict[ResourceKey, dict[ObjectKey, Obj]] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        """(verb, resource[/subresource]) -> count of the operator's requests."""
        self.log: list[tuple[str, str]] = []
        """(verb, path) of every request, in order."""
        self.faults: list[Fault] = []
        self.graceful_pods = True
        """Deleting a bound, running pod sets deletionTimestamp; `finish_deletions` removes it."""
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._uid = itertools.count(1)
        self._history: list[tuple[int, ResourceKey, Obj]] = []
        self._history_limit = history
        self._floor = 0
        """Watches from a version below this answer 410 Gone."""
        self._watches: list[_Watch] = []
        self._writes = 0
        self.delivering = True
        """False while watches are cut off (`disconnect`): events only go to the history."""
        self.crash_after: int | None = None
        """Raise Crashed on the write after this many writes (None: never)."""

    # -- tests' controls --------------------------------------------------------------------

    def fail(
        self,
        verb: str,
        resource: str,
        status: int,
        *,
        times: int = 1,
        after_apply: bool = False,
        name: str | None = None,
        message: str | None = None,
    ) -> Fault:
        fault = Fault(verb, resource, status, times, after_apply, name, message)
        self.faults.append(fault)
        return fault

    def writes(self, resource: str | None = None) -> int:
        """The operator's write requests so far (of one resource[/subresource], or all)."""
        return sum(
            count
            for (verb, res), count in self.requests.items()
            if verb in WRITE_VERBS and (resource is None or res == resource)
        )

    def expire_watches(self) -> None:
        """Compact the history: every open watch ends with 410 Gone, and so does any watch from
        a version seen so far (what the API server does after etcd compaction)."""
        self._floor = self._last_rv + 1
        self._history.clear()
        for watch in self._watches:
            watch.queue.put_nowait(ApiError(410, "Expired", "too old resource version"))

    def disconnect(self) -> None:
        """Open watches stop receiving events (a network partition): what happens meanwhile
        is only in the history, or lost if `reconnect(expire=True)` compacts it."""
        self.delivering = False

    def reconnect(self, expire: bool) -> None:
        """End the partition: watches end and re-watch from their last version (replaying the
        history), or, with `expire`, the history is compacted and they must list again."""
        self.delivering = True
        if expire:
            self.expire_watches()
        else:
            self.end_watches()

    def end_watches(self) -> None:
        """Close every open watch normally (a server-side timeout): clients re-watch."""
        for watch in self._watches:
            watch.queue.put_nowait(None)

    def put(self, obj: Obj) -> Obj:
        """Store an object as another actor would (not counted): nodes from kwok, pods of other
        workloads, objects a user applied."""
        path = _object_path(obj)
        existing = self.objects.get(path.key, {}).get((path.namespace or "", path.name or ""))
        obj = copy.deepcopy(obj)
        if existing is None:
            self._init_meta(obj, path)
            return self._store(path, obj, "ADDED")
        meta = _meta(obj)
        for field_name in ("uid", "creationTimestamp"):
            meta[field_name] = existing["metadata"].get(field_name)
        meta["generation"] = existing["metadata"].get("generation", 1) + (
            existing.get("spec") != obj.get("spec")
        )
        return self._store(path, obj, "MODIFIED")

    def remove(self, obj_or_path: Obj | str) -> None:
        """Delete as another actor would (not counted)."""
        path = (
            parse_path(obj_or_path) if isinstance(obj_or_path, str) else _object_path(obj_or_path)
        )
        self._delete_now(path.key, (path.namespace or "", path.name or ""))

    def obj(self, path: str) -> Obj | None:
        p = parse_path(path)
        found = self.objects.get(p.key, {}).get((p.namespace or "", p.name or ""))
        return copy.deepcopy(found) if found is not None else None

    def items(self, group: str, resource: str, namespace: str | None = None) -> list[Obj]:
        return [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(self.objects.get((group, resource), {}).items())
            if namespace is None or ns == namespace
        ]

    # -- kube-scheduler and kubelet (other actors: not counted) ----------------------------

    def schedule(self, limit: int | None = None) -> int:
        """Bind every ungated, unbound pod (the first `limit` of them, by key) to the node its
        required affinity names, if the node exists and has room for its requests; else mark
        it Unschedulable. Returns binds made."""
        from corral.fleet.resources import offered, pod_requests

        bound = 0
        nodes = self.objects.get(("", "nodes"), {})
        pods = self.objects.get(("", "pods"), {})
        for key, pod in sorted(pods.items()):
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or spec.get("schedulingGates") or _terminating(pod):
                continue
            if limit is not None and bound >= limit:
                break
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue  # another scheduler's pod (one that may never come)
            target = _required_node(spec)
            node = nodes.get(("", target)) if target else None
            why = None
            if node is None:
                why = f"0/{len(nodes)} nodes are available: node {target} not found"
            else:
                free = offered((node.get("status") or {}).get("allocatable"))
                for other in pods.values():
                    if (other.get("spec") or {}).get("nodeName") == target and _active(other):
                        for name, amount in pod_requests(other.get("spec") or {}).items():
                            free[name] = free.get(name, 0) - amount
                short = [
                    name
                    for name, amount in pod_requests(spec).items()
                    if amount > free.get(name, 0)
                ]
                if short:
                    why = f"0/1 nodes are available: 1 Insufficient {short[0]}."
            updated = copy.deepcopy(pod)
            conditions = [
                c
                for c in (updated.setdefault("status", {}).get("conditions") or [])
                if c.get("type") != "PodScheduled"
            ]
            if why is None:
                updated["spec"]["nodeName"] = target
                conditions.append({"type": "PodScheduled", "status": "True"})
                bound += 1
            else:
                conditions.append(
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": why,
                    }
                )
            updated["status"]["conditions"] = conditions
            if updated != pod:
                self._store(Path("", "v1", "pods", key[0], key[1], None), updated, "MODIFIED")
        return bound

    def start(self, limit: int | None = None) -> int:
        """Every bound Pending pod (the first `limit`, by key) starts Running. Returns how many
        started."""
        started = 0
        for key, pod in sorted(self.objects.get(("", "pods"), {}).items()):
            if limit is not None and started >= limit:
                break
            status = pod.get("status") or {}
            if (pod.get("spec") or {}).get("nodeName") and status.get("phase", "Pending") == (
                "Pending"
            ):
                updated = copy.deepcopy(pod)
                updated["status"].update(
                    phase="Running",
                    startTime=format_time(self.clock()),
                    containerStatuses=[
                        {"name": c.get("name"), "state": {"running": {}}}
                        for c in updated["spec"].get("containers") or []
                    ],
                )
                self._store(Path("", "v1", "pods", key[0], key[1], None), updated, "MODIFIED")
                started += 1
        return started

    def finish(self, namespace: str, name: str, exit_code: int = 0) -> None:
        """A pod's containers exit: Succeeded (0) or Failed."""
        pods = self.objects.get(("", "pods"), {})
        pod = copy.deepcopy(pods[(namespace, name)])
        stamp = format_time(self.clock())
        pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        pod["status"]["containerStatuses"] = [
            {
                "name": c.get("name"),
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "finishedAt": stamp,
                    }
                },
            }
            for c in pod["spec"].get("containers") or []
        ]
        self._store(Path("", "v1", "pods", namespace, name, None), pod, "MODIFIED")

    def finish_deletions(self) -> int:
        """The kubelet confirms graceful deletions: terminating pods go away."""
        gone = [key for key, pod in self.objects.get(("", "pods"), {}).items() if _terminating(pod)]
        for key in gone:
            self._delete_now(("", "pods"), key)
        return len(gone)

    def tick(self) -> None:
        """One round of the other actors: deletions finish, pods bind, bound pods start."""
        self.finish_deletions()
        self.schedule()
        self.start()

    # -- the Client interface ---------------------------------------------------------------

    async def list(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> tuple[list[Obj], str]:
        p = self._request("LIST", path)
        selector = (params or {}).get("labelSelector")
        items = [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(self.objects.get(p.key, {}).items())
            if (p.namespace is None or ns == p.namespace)
            and selector_matches(selector, _meta(obj).get("labels") or {})
        ]
        await asyncio.sleep(0)
        return items, str(self._last_rv)

    async def get(self, path: str) -> Obj:
        p = self._request("GET", path)
        await asyncio.sleep(0)
        return copy.deepcopy(self._existing(p))

    async def create(self, path: str, body: Obj) -> Obj:
        p = self._request("POST", path)
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._uid):05x}"
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        if p.namespace:
            meta["namespace"] = p.namespace
        target = Path(p.group, p.version, p.resource, p.namespace, name, None)
        objects = self.objects.setdefault(p.key, {})
        if (p.namespace or "", name) in objects:
            raise ApiError(409, "AlreadyExists", f'{p.resource} "{name}" already exists')
        self._init_meta(obj, target)
        if p.group == "corral.dev":
            obj.pop("status", None)
        elif p.resource == "pods":
            obj["status"] = {"phase": "Pending"}
        return await self._written("POST", p, self._store(target, obj, "ADDED"))

    async def replace(self, path: str, body: Obj) -> Obj:
        p = self._request("PUT", path)
        current = self._existing(p)
        wanted = _meta(body).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise _conflict(p)
        return await self._written("PUT", p, self._update(p, current, copy.deepcopy(body)))

    async def patch(self, path: str, body: Any, patch_type: str = "merge") -> Obj:
        p = self._request("PATCH", path)
        current = self._existing(p)
        if patch_type == "merge":
            wanted = (body.get("metadata") or {}).get("resourceVersion") if body else None
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise _conflict(p)
            result = apply_merge_patch(current, body)
        elif patch_type == "json":
            result = apply_json_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"fake: no {patch_type} patches")
        return await self._written("PATCH", p, self._update(p, current, result))

    async def delete(
        self,
        path: str,
        *,
        grace_seconds: int | None = None,
        propagation: str = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj:
        p = self._request("DELETE", path)
        current = self._existing(p)
        meta = current["metadata"]
        for key, value in (preconditions or {}).items():
            if meta.get(key) != value:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {key} in precondition: {value}, "
                    f"{key} in object meta: {meta.get(key)}",
                )
        okey = (p.namespace or "", p.name or "")
        if (
            p.resource == "pods"
            and self.graceful_pods
            and grace_seconds != 0
            and (current.get("spec") or {}).get("nodeName")
            and _active(current)
        ):
            if meta.get("deletionTimestamp"):
                return await self._written("DELETE", p, copy.deepcopy(current))
            updated = copy.deepcopy(current)
            updated["metadata"]["deletionTimestamp"] = format_time(self.clock())
            updated["metadata"]["deletionGracePeriodSeconds"] = (
                30 if grace_seconds is None else grace_seconds
            )
            return await self._written("DELETE", p, self._store(p, updated, "MODIFIED"))
        gone = self._delete_now(p.key, okey)
        assert gone is not None
        if p.resource == "pods":
            # As the API server answers an immediate pod deletion: the object of the DELETED
            # event (its final resourceVersion), marked deleted.
            gone["metadata"]["deletionTimestamp"] = format_time(self.clock())
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
        return await self._written("DELETE", p, gone)

    async def watch(
        self,
        path: str,
        *,
        resource_version: str,
        timeout_seconds: int = 290,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Obj]:
        p = self._request("WATCH", path)
        since = int(resource_version or "0")
        if since < self._floor - 1:
            raise ApiError(410, "Expired", f"too old resource version: {since}")
        watch = _Watch(p.key, p.namespace, (params or {}).get("labelSelector"))
        for rv, key, event in self._history:
            if rv > since and self._wants(watch, key, event["object"]):
                watch.queue.put_nowait(copy.deepcopy(event))
        self._watches.append(watch)
        try:
            while True:
                item = await watch.queue.get()
                if item is None:
                    return
                if isinstance(item, ApiError):
                    raise item
                yield item
        finally:
            self._watches.remove(watch)

    async def close(self) -> None:
        self.end_watches()

    # -- internals ----------------------------------------------------------------------------

    def _request(self, verb: str, path: str) -> Path:
        p = parse_path(path)
        self.requests[(verb, p.counted_as)] += 1
        self.log.append((verb, path))
        if verb in WRITE_VERBS:
            if self.crash_after is not None and self._writes >= self.crash_after:
                raise Crashed(f"crash before write {self._writes + 1}: {verb} {path}")
            self._writes += 1
        for fault in self.faults:
            if not fault.after_apply and fault.matches(verb, p.counted_as, p.name):
                fault.times -= 1
                raise _fault_error(fault)
        return p

    async def _written(self, verb: str, p: Path, answer: Obj) -> Obj:
        for fault in self.faults:
            if fault.after_apply and fault.matches(verb, p.counted_as, p.name):
                fault.times -= 1
                raise _fault_error(fault)
        await asyncio.sleep(0)
        return copy.deepcopy(answer)

    def _existing(self, p: Path) -> Obj:
        obj = self.objects.get(p.key, {}).get((p.namespace or "", p.name or ""))
        if obj is None:
            raise ApiError(404, "NotFound", f'{p.resource} "{p.name}" not found')
        return obj

    def _init_meta(self, obj: Obj, p: Path) -> None:
        meta = _meta(obj)
        meta["name"] = p.name
        if p.namespace:
            meta["namespace"] = p.namespace
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta["creationTimestamp"] = format_time(self.clock())
        if p.group == "corral.dev" or p.resource in ("deployments",):
            meta["generation"] = 1

    def _update(self, p: Path, current: Obj, result: Obj) -> Obj:
        """A main write keeps status; a status write keeps everything but status."""
        result = copy.deepcopy(result)
        meta = _meta(result)
        for field_name in ("uid", "creationTimestamp", "name", "namespace", "generation"):
            if field_name in current["metadata"]:
                meta[field_name] = current["metadata"][field_name]
            else:
                meta.pop(field_name, None)
        has_status_subresource = p.key not in WITHOUT_STATUS_SUBRESOURCE
        if p.subresource == "status":
            result = {**copy.deepcopy(current), "status": result.get("status")}
            if result["status"] is None:
                del result["status"]
        elif has_status_subresource:
            if "status" in current:
                result["status"] = copy.deepcopy(current["status"])
            else:
                result.pop("status", None)
            if "generation" in meta and _spec_of(result) != _spec_of(current):
                meta["generation"] += 1
        return self._store(p, result, "MODIFIED")

    def _store(self, p: Path, obj: Obj, kind: str) -> Obj:
        rv = next(self._rv)
        self._last_rv = rv
        _meta(obj)["resourceVersion"] = str(rv)
        objects = self.objects.setdefault(p.key, {})
        objects[(p.namespace or "", p.name or _meta(obj)["name"])] = obj
        self._emit(rv, p.key, kind, obj)
        return obj

    def _delete_now(self, key: ResourceKey, okey: ObjectKey) -> Obj | None:
        obj = self.objects.get(key, {}).pop(okey, None)
        if obj is None:
            return None
        rv = next(self._rv)
        self._last_rv = rv
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._emit(rv, key, "DELETED", gone)
        uid = obj["metadata"].get("uid")
        for dep_key, objects in list(self.objects.items()):
            for dep_okey, dependent in list(objects.items()):
                owners = _meta(dependent).get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in owners):
                    self._delete_now(dep_key, dep_okey)
        return gone

    def _emit(self, rv: int, key: ResourceKey, kind: str, obj: Obj) -> None:
        event = {"type": kind, "object": copy.deepcopy(obj)}
        self._history.append((rv, key, event))
        if len(self._history) > self._history_limit:
            dropped = self._history.pop(0)
            self._floor = dropped[0] + 1
        if not self.delivering:
            return
        for watch in self._watches:
            if self._wants(watch, key, obj):
                watch.queue.put_nowait(copy.deepcopy(event))

    @staticmethod
    def _wants(watch: _Watch, key: ResourceKey, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        return (
            watch.key == key
            and (watch.namespace is None or meta.get("namespace") == watch.namespace)
            and selector_matches(watch.selector, meta.get("labels") or {})
        )


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _conflict(p: Path) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {p.resource} "{p.name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _fault_error(fault: Fault) -> ApiError:
    if fault.status == 0:
        return ApiError(0, "ConnectionError", "fake: request timed out")
    reasons = {
        409: "Conflict",
        410: "Expired",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
    }
    return ApiError(
        fault.status, reasons.get(fault.status, "Error"), fault.message or f"fake: {fault.status}"
    )


def _object_path(obj: Obj) -> Path:
    api_version = obj.get("apiVersion") or "v1"
    group, _, version = api_version.rpartition("/")
    kind = obj.get("kind") or ""
    resource = _PLURALS.get(kind, kind.lower() + "s")
    meta = obj.get("metadata") or {}
    namespace = None if (group, resource) in CLUSTER_SCOPED else meta.get("namespace") or "default"
    return Path(group, version or "v1", resource, namespace, meta.get("name"), None)


_PLURALS = {
    "Node": "nodes",
    "Pod": "pods",
    "GPUPool": "gpupools",
    "TrainingJob": "trainingjobs",
    "InferenceService": "inferenceservices",
    "PriorityClass": "priorityclasses",
    "ResourceQuota": "resourcequotas",
    "Namespace": "namespaces",
}


def _terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _required_node(spec: Obj) -> str | None:
    """The node a pod's required node affinity (matchFields metadata.name In [x]) or hostname
    nodeSelector pins it to."""
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for expr in [*(term.get("matchFields") or []), *(term.get("matchExpressions") or [])]:
            if (
                expr.get("key") in ("metadata.name", "kubernetes.io/hostname")
                and expr.get("operator") == "In"
            ):
                values = expr.get("values") or []
                if values:
                    return str(values[0])
    selector = spec.get("nodeSelector") or {}
    host = selector.get("kubernetes.io/hostname")
    return str(host) if host else None


def objects_named(items: Iterable[Obj]) -> list[str]:
    return sorted(_meta(obj).get("name", "") for obj in items)
