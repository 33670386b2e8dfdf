"""The operator's view of the cluster, fed by watch events and by the answers to its own writes.

Objects are kept as the API returns them. Each write's answer is stored at once, and a watch
event older than what is stored (by resourceVersion) is ignored, so the operator never decides on
a state older than its own last write — the mistake that makes controllers place a gang twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from corral.api import GPUPool, InvalidObject, parse_object
from corral.api.names import JOB_LABEL
from corral.fleet import FleetSnapshot

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _rv(obj: Obj) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


def _newer_or_same(stored: Obj | None, incoming: Obj) -> bool:
    if stored is None:
        return True
    old, new = _rv(stored), _rv(incoming)
    return old is None or new is None or new >= old


class ClusterCache:
    def __init__(self) -> None:
        self.nodes: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.pools: dict[str, Obj] = {}
        self.jobs: dict[str, Obj] = {}
        self.pods_by_job: dict[str, set[str]] = defaultdict(set)
        self.invalid_pools: dict[str, str] = {}
        self.snapshot = FleetSnapshot.build([], [], [])

    # -- seeding ------------------------------------------------------------------------------

    def seed(
        self, nodes: Iterable[Obj], pods: Iterable[Obj], pools: Iterable[Obj], jobs: Iterable[Obj]
    ) -> None:
        self.nodes = {object_key(n): n for n in nodes}
        self.pods = {}
        self.pods_by_job.clear()
        for pod in pods:
            self._store_pod(pod)
        self.pools = {object_key(p): p for p in pools}
        self.jobs = {object_key(j): j for j in jobs}
        self.snapshot = FleetSnapshot.build(
            self.nodes.values(), self.pods.values(), self._valid_pools()
        )

    def _valid_pools(self) -> list[GPUPool]:
        valid = []
        self.invalid_pools.clear()
        for name, obj in self.pools.items():
            try:
                pool = parse_object(obj, expect="GPUPool")
            except InvalidObject as exc:
                self.invalid_pools[name] = str(exc)
                continue
            assert isinstance(pool, GPUPool)
            valid.append(pool)
        return valid

    # -- events -------------------------------------------------------------------------------

    def apply_node(self, kind: str | None, obj: Obj) -> bool:
        """Returns True when the node's capacity-relevant state changed."""
        key = object_key(obj)
        if kind == "DELETED":
            if self.nodes.pop(key, None) is not None:
                self.snapshot.remove_node(key)
                return True
            return False
        stored = self.nodes.get(key)
        if not _newer_or_same(stored, obj):
            return False
        self.nodes[key] = obj
        if stored is not None and _capacity_view(stored) == _capacity_view(obj):
            return False  # heartbeats: nothing placement cares about
        self.snapshot.upsert_node(obj)
        return True

    def apply_pod(self, kind: str | None, obj: Obj) -> str | None:
        """Stores the pod; returns the key of the TrainingJob owning it, if any."""
        key = object_key(obj)
        meta = obj.get("metadata") or {}
        job = (meta.get("labels") or {}).get(JOB_LABEL)
        job_key = f"{meta.get('namespace')}/{job}" if job else None
        if kind == "DELETED":
            # Also drops an assumed record of the same name from the snapshot.
            self.pods.pop(key, None)
            self.snapshot.remove_pod(meta.get("namespace", ""), meta.get("name", ""))
            if job_key:
                self.pods_by_job[job_key].discard(key)
            return job_key
        if not _newer_or_same(self.pods.get(key), obj):
            return None
        self._store_pod(obj)
        self.snapshot.upsert_pod(obj)
        return job_key

    def _store_pod(self, obj: Obj) -> None:
        key = object_key(obj)
        self.pods[key] = obj
        meta = obj.get("metadata") or {}
        job = (meta.get("labels") or {}).get(JOB_LABEL)
        if job:
            self.pods_by_job[f"{meta.get('namespace')}/{job}"].add(key)

    def forget_pod(self, namespace: str, name: str) -> None:
        """Drop a pod we deleted and that is gone (404), without waiting for the watch."""
        self.apply_pod("DELETED", {"metadata": {"namespace": namespace, "name": name}})

    def apply_pool(self, kind: str | None, obj: Obj) -> None:
        key = object_key(obj)
        if kind == "DELETED":
            self.pools.pop(key, None)
            self.invalid_pools.pop(key, None)
            self.snapshot.remove_pool(key)
            return
        stored = self.pools.get(key)
        if not _newer_or_same(stored, obj):
            return
        self.pools[key] = obj
        if stored is not None and stored.get("spec") == obj.get("spec"):
            return  # our own status write
        try:
            pool = parse_object(obj, expect="GPUPool")
        except InvalidObject as exc:
            self.invalid_pools[key] = str(exc)
            self.snapshot.remove_pool(key)
            return
        assert isinstance(pool, GPUPool)
        self.invalid_pools.pop(key, None)
        self.snapshot.upsert_pool(pool)

    def apply_job(self, kind: str | None, obj: Obj) -> bool:
        """Returns False for a stale event (nothing to do)."""
        key = object_key(obj)
        if kind == "DELETED":
            self.jobs.pop(key, None)
            return True
        if not _newer_or_same(self.jobs.get(key), obj):
            return False
        self.jobs[key] = obj
        return True

    def job_pods(self, job_key: str) -> list[Obj]:
        return [self.pods[k] for k in sorted(self.pods_by_job.get(job_key, ())) if k in self.pods]


def _capacity_view(node: Obj) -> tuple[Any, ...]:
    """What of a node matters to placement; kwok and kubelets bump status every few seconds."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        spec.get("unschedulable"),
        repr(spec.get("taints")),
        repr(status.get("allocatable")),
        ready,
    )
