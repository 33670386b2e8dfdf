"""The operator's view of the cluster, fed by its informers and by the answers to its own writes.

Three rules keep it true and cheap:
- **Echoes change nothing.** The answer to each write is stored at once (no decision is made on a
  state older than the operator's own last write) and remembered as awaiting its echo. The watch
  is ordered, so any watch event of that object before the echo is older than the write and is
  ignored, and the echo itself (same resourceVersion as stored) is a no-op: the operator's own
  writes never trigger more work. resourceVersions are compared for equality only.
- **Deletions are never missed.** The informers synthesise a DELETED for every object a relist
  lacks; every per-object entry and index is forgotten on delete.
- **Only what is read is kept.** managedFields, last-applied annotations, node images and pod
  details the operator never reads are stripped before caching.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

from corral.api import GPUPool, InvalidObject, parse_object
from corral.controllers.informer import object_key
from corral.disruption.notices import node_usability
from corral.fleet import FleetSnapshot
from corral.scheduling.ledger import Ledger

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RECENT_VERSIONS = 4096
"""How many (object, resourceVersion) pairs seen on watches are remembered, to recognise a watch
event that overtook the answer to the write that caused it."""


@dataclass(frozen=True)
class Change:
    kind: str
    key: str
    old: Obj | None
    new: Obj | None
    """None when the object was deleted."""


def _rv(obj: Obj | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _uid(obj: Obj | None) -> str | None:
    uid = ((obj or {}).get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def controller_uid(obj: Obj) -> str | None:
    """UID of the object's controller ownerReference (what ownership is decided by)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


TENANCY_KINDS: dict[str, tuple[str, ...]] = {
    "Namespace": ("kind",),
    "ResourceQuota": ("kind", "spec", "status"),
    "PriorityClass": ("kind", "value", "globalDefault"),
}


def _same_content(old: Obj, new: Obj) -> bool:
    """Equal but for the resourceVersion."""

    def content(obj: Obj) -> Obj:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
        return {**obj, "metadata": meta}

    return content(old) == content(new)


def _keep(source: Any, fields: tuple[str, ...]) -> Obj:
    return {k: source[k] for k in fields if isinstance(source, dict) and k in source}


def strip(kind: str, obj: Obj) -> Obj:
    """What the operator reads of an object (a new dict; the input is left alone)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    out = {**obj, "metadata": meta}
    if kind in TENANCY_KINDS:
        # Admission reads a namespace's labels, a quota's hard/scopes/used, a class's value.
        kept = _keep(meta, ("name", "namespace", "uid", "resourceVersion", "labels"))
        return {**_keep(obj, TENANCY_KINDS[kind]), "metadata": kept}
    if kind == "Node":
        status = obj.get("status") or {}
        out["status"] = {
            **_keep(status, ("allocatable", "capacity")),
            "conditions": [
                _keep(c, ("type", "status", "reason", "message"))
                for c in status.get("conditions") or []
                if isinstance(c, dict)
            ],
        }
    elif kind == "Pod":
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}

        def containers(field: str) -> list[Obj]:
            return [
                _keep(c, ("name", "resources", "restartPolicy"))
                for c in spec.get(field) or []
                if isinstance(c, dict)
            ]

        out["spec"] = {
            **_keep(
                spec,
                (
                    "nodeName",
                    "schedulingGates",
                    "overhead",
                    "priority",
                    "priorityClassName",
                    "schedulerName",
                    "terminationGracePeriodSeconds",
                ),
            ),
            "containers": containers("containers"),
            "initContainers": containers("initContainers"),
        }
        out["status"] = {
            **_keep(
                status,
                (
                    "phase",
                    "reason",
                    "message",
                    "startTime",
                    "podIP",
                    "nominatedNodeName",
                    "conditions",
                ),
            ),
            "containerStatuses": [
                {
                    "name": c.get("name"),
                    "state": {"terminated": (c.get("state") or {}).get("terminated")}
                    if (c.get("state") or {}).get("terminated")
                    else {},
                }
                for c in status.get("containerStatuses") or []
                if isinstance(c, dict)
            ],
        }
    return out


class ClusterCache:
    KINDS = (
        "Node",
        "Pod",
        "GPUPool",
        "TrainingJob",
        "InferenceService",
        "Service",
        "Namespace",
        "ResourceQuota",
        "PriorityClass",
    )

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Obj]] = {kind: {} for kind in self.KINDS}
        self.snapshot = FleetSnapshot(notices=node_usability)
        self.ledger = Ledger(self.snapshot)
        self.owned: dict[str, set[str]] = defaultdict(set)
        """Controller owner UID -> keys of the pods it owns."""
        self.invalid_pools: dict[str, str] = {}
        self.by_uid: dict[str, str] = {}
        """UID of a Corral object (TrainingJob, InferenceService) -> its work-queue key, to route
        its pods' events."""
        self._pending: dict[tuple[str, str], str] = {}
        """(kind, key) -> resourceVersion of the operator's own write not yet echoed."""
        self._recent: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._tombstones: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        """(kind, key) -> UID of an object recently seen deleted: the late answer of a write to
        that same object (an immediate pod deletion's answer arrives after its DELETED event)
        must not bring it back."""
        self.versions: dict[str, int] = dict.fromkeys(self.KINDS, 0)
        """Kind -> how many changes the cache took in (readers rebuild what they derive)."""

    # -- reads ----------------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, Obj]:
        return self.objects["Node"]

    @property
    def pods(self) -> dict[str, Obj]:
        return self.objects["Pod"]

    @property
    def pools(self) -> dict[str, Obj]:
        return self.objects["GPUPool"]

    @property
    def jobs(self) -> dict[str, Obj]:
        return self.objects["TrainingJob"]

    @property
    def inference_services(self) -> dict[str, Obj]:
        return self.objects["InferenceService"]

    @property
    def services(self) -> dict[str, Obj]:
        return self.objects["Service"]

    def keys(self, kind: str) -> set[str]:
        return set(self.objects.setdefault(kind, {}))

    def awaiting_echo(self, kind: str, key: str) -> bool:
        return (kind, key) in self._pending

    def owned_pods(self, uid: str) -> list[Obj]:
        return [self.pods[k] for k in sorted(self.owned.get(uid, ())) if k in self.pods]

    # -- writes -----------------------------------------------------------------------------------

    def apply(self, kind: str, type_: str, obj: Obj, source: str) -> Change | None:
        """Take in one object as seen on a watch or list ("watch"/"list") or as the answer to
        the operator's own write ("write"). Returns what changed, or None."""
        store = self.objects.setdefault(kind, {})
        key = object_key(obj)
        if type_ == "DELETED":
            self._pending.pop((kind, key), None)
            old = store.pop(key, None)
            gone_uid = _uid(old) or _uid(obj)
            self._tombstones[(kind, key)] = gone_uid
            if len(self._tombstones) > RECENT_VERSIONS:
                self._tombstones.popitem(last=False)
            if old is None:
                return None
            self._index(kind, key, old, None)
            self.versions[kind] = self.versions.get(kind, 0) + 1
            return Change(kind, key, old, None)
        rv = _rv(obj)
        old = store.get(key)
        pending = self._pending.get((kind, key))
        if source == "write":
            if rv is None or (kind, key, rv) in self._recent or _rv(old) == rv:
                return None  # the watch was faster: what is stored is as new or newer
            if old is None and (kind, key) in self._tombstones:
                gone_uid = self._tombstones[(kind, key)]
                if gone_uid is None or gone_uid == _uid(obj):
                    return None  # its DELETED came first: the object is gone
            self._pending[(kind, key)] = rv
        elif source == "watch":
            if rv is not None:
                self._recent[(kind, key, rv)] = None
                if len(self._recent) > RECENT_VERSIONS:
                    self._recent.popitem(last=False)
            if old is not None and _rv(old) == rv:
                if pending == rv:
                    del self._pending[(kind, key)]
                return None  # the echo of a write already stored
            if pending is not None:
                if pending != rv:
                    return None  # from before our write: the stream has not reached it yet
                del self._pending[(kind, key)]
        else:  # a (re)list is the truth as of its resourceVersion
            self._pending.pop((kind, key), None)
            if old is not None and _rv(old) == rv:
                return None
        new = strip(kind, obj)
        if kind == "ResourceQuota":
            # Even a quota whose figures read the same has been recounted: it counts the pods
            # created before it moved (the ledger stops counting them itself).
            self.ledger.quotas_moved(key.rpartition("/")[0])
        if kind in TENANCY_KINDS and old is not None and _same_content(old, new):
            store[key] = new
            return None  # a resourceVersion bump of nothing admission reads
        store[key] = new
        self._index(kind, key, old, new)
        self.versions[kind] = self.versions.get(kind, 0) + 1
        return Change(kind, key, old, new)

    def forget(self, kind: str, key: str) -> Change | None:
        """Drop an object the operator knows is gone (a 404 on its own request)."""
        namespace, _, name = key.rpartition("/")
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return self.apply(kind, "DELETED", {"metadata": meta}, "write")

    # -- indexes ----------------------------------------------------------------------------------

    def _index(self, kind: str, key: str, old: Obj | None, new: Obj | None) -> None:
        if kind == "Pod":
            self._index_pod(key, old, new)
        elif kind == "Node":
            if new is None:
                self.snapshot.remove_node(key)
            elif old is None or capacity_view(old) != capacity_view(new):
                self.snapshot.upsert_node(new)
        elif kind == "GPUPool":
            self._index_pool(key, old, new)
        elif kind in ("TrainingJob", "InferenceService"):
            # Work-queue keys: a TrainingJob's is its namespace/name, an InferenceService's
            # carries a prefix (corral.controllers.inferenceservice.KEY_PREFIX).
            routed = key if kind == "TrainingJob" else f"cis:{key}"
            for obj, present in ((old, False), (new, True)):
                uid = ((obj or {}).get("metadata") or {}).get("uid")
                if uid:
                    if present:
                        self.by_uid[uid] = routed
                    else:
                        self.by_uid.pop(uid, None)

    def _index_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        namespace, _, name = key.rpartition("/")
        old_owner = controller_uid(old) if old else None
        new_owner = controller_uid(new) if new else None
        if old_owner and old_owner != new_owner:
            self.owned[old_owner].discard(key)
            if not self.owned[old_owner]:
                del self.owned[old_owner]
        if new_owner:
            self.owned[new_owner].add(key)
        self.ledger.observed((namespace, name), gone=new is None)
        if new is None:
            self.snapshot.remove_pod(namespace, name)
        else:
            try:
                self.snapshot.upsert_pod(new)
            except ValueError as exc:  # a pod without a name cannot come from the API server
                log.warning("pod %s not counted: %s", key, exc)

    def _index_pool(self, key: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self.invalid_pools.pop(key, None)
            self.snapshot.remove_pool(key)
            return
        if (
            old is not None
            and old.get("spec") == new.get("spec")
            and key not in self.invalid_pools
            and key in self.snapshot.pools
        ):
            return  # a status write: nothing placement reads changed
        try:
            pool = parse_object(new, expect="GPUPool")
        except InvalidObject as exc:
            self.invalid_pools[key] = str(exc)
            self.snapshot.remove_pool(key)
            return
        except Exception as exc:  # defence in depth: one pool must not stop the others
            self.invalid_pools[key] = f"the object could not be read ({type(exc).__name__})"
            self.snapshot.remove_pool(key)
            return
        assert isinstance(pool, GPUPool)
        self.invalid_pools.pop(key, None)
        self.snapshot.upsert_pool(pool)


def capacity_view(node: Obj) -> tuple[Any, ...]:
    """What of a node matters to placement; kwok and kubelets bump status every few seconds."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    # Termination notices also come as node conditions (the kubelet's shutdown message, the
    # lifecycle conditions proposed upstream) and as Corral's deadline annotation.
    conditions = tuple(
        (c.get("type"), c.get("status"), c.get("message"))
        for c in status.get("conditions") or []
        if isinstance(c, dict)
    )
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        spec.get("unschedulable"),
        repr(spec.get("taints")),
        repr(status.get("allocatable")),
        ready,
        conditions,
        (meta.get("annotations") or {}).get("corral.dev/terminating-deadline"),
    )
