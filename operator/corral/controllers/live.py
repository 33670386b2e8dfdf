"""The live `TrainingCluster`: the domain's reads, answered from the informer cache.

Parsing is cached by resourceVersion, so a pass over a thousand waiting jobs validates only the
ones that changed since the last pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.api import GPUPool, parse_object
from corral.controllers.cache import ClusterCache
from corral.disruption.notices import Notice, binding_notice
from corral.fleet import FleetSnapshot
from corral.scheduling.ledger import Ledger
from corral.scheduling.tenancy import Tenancy
from corral.training.cluster import HOLDING_PHASES, JobRecord, job_record
from corral.training.pods import WorkerPod


class LiveCluster:
    def __init__(self, cache: ClusterCache):
        self.cache = cache
        self._jobs: dict[str, tuple[str | None, JobRecord]] = {}
        self._pools: dict[str, tuple[str | None, GPUPool | None]] = {}
        self._notices: dict[str, tuple[str | None, Notice | None]] = {}
        self._tenancy: tuple[tuple[int, ...], Tenancy] | None = None

    @property
    def snapshot(self) -> FleetSnapshot:
        return self.cache.snapshot

    @property
    def ledger(self) -> Ledger:
        return self.cache.ledger

    def pool(self, name: str) -> GPUPool | None:
        obj = self.cache.pools.get(name)
        if obj is None or name in self.cache.invalid_pools:
            self._pools.pop(name, None)
            return None
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        cached = self._pools.get(name)
        if cached is not None and cached[0] == rv:
            return cached[1]
        try:
            parsed = parse_object(obj, expect="GPUPool")
        except Exception:
            parsed = None
        pool = parsed if isinstance(parsed, GPUPool) else None
        self._pools[name] = (rv, pool)
        return pool

    def node_notice(self, name: str) -> Notice | None:
        """The binding termination notice on a node (parsed once per resourceVersion)."""
        obj = self.cache.nodes.get(name)
        if obj is None:
            self._notices.pop(name, None)
            return None
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        cached = self._notices.get(name)
        if cached is not None and cached[0] == rv:
            return cached[1]
        found = binding_notice(obj)
        self._notices[name] = (rv, found)
        return found

    @property
    def tenancy(self) -> Tenancy:
        """Rebuilt only when a Namespace, ResourceQuota or PriorityClass changed."""
        kinds = ("Namespace", "ResourceQuota", "PriorityClass")
        stamp = tuple(self.cache.versions.get(kind, 0) for kind in kinds)
        if self._tenancy is None or self._tenancy[0] != stamp:
            objects = [self.cache.objects.get(kind, {}).values() for kind in kinds]
            self._tenancy = (stamp, Tenancy.build(*objects))
        return self._tenancy[1]

    def training_job(self, key: str) -> JobRecord | None:
        obj = self.cache.jobs.get(key)
        if obj is None:
            self._jobs.pop(key, None)
            return None
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        cached = self._jobs.get(key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        record = job_record(obj)
        self._jobs[key] = (rv, record)
        return record

    def training_jobs(self) -> Iterable[JobRecord]:
        for key in list(self.cache.jobs):
            record = self.training_job(key)
            if record is not None:
                yield record
        for gone in set(self._jobs) - set(self.cache.jobs):
            del self._jobs[gone]

    def holding_jobs(self) -> Iterable[JobRecord]:
        for record in self.training_jobs():
            if record.view is not None and record.view.status.phase in HOLDING_PHASES:
                yield record

    def job_pods(self, key: str) -> list[WorkerPod]:
        record = self.training_job(key)
        if record is None or record.view is None or not record.view.uid:
            return []
        pods = (WorkerPod.from_pod(pod) for pod in self.cache.owned_pods(record.view.uid))
        return [pod for pod in pods if pod is not None]
