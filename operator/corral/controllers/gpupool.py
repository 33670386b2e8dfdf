"""GPUPool controller: keep each pool's status true to the fleet snapshot.

Status is recomputed at most once per POOL_STATUS_INTERVAL_SECONDS however many pod and node
events arrive, and written only when it changed (fenced by resourceVersion like every status
write): a 2,000-node fleet with churning pods costs a handful of writes a minute.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from corral import metrics
from corral.api.conditions import set_condition
from corral.api.gpupool import GPUPoolStatus
from corral.controllers.executor import Conflict, Gone, Target
from corral.fleet import pool_status
from corral.fleet.status import pool_conditions
from corral.kube.rest import custom_path
from corral.scheduling.actions import Decision, Emit

if TYPE_CHECKING:
    from corral.controllers.runtime import Operator

log = logging.getLogger("corral.gpupool")

POOL_STATUS_INTERVAL_SECONDS = 2.0
DEVICE_STATES = ("capacity", "allocatable", "allocated", "free")


class GPUPoolController:
    def __init__(self, operator: Operator):
        self.op = operator
        self._warned_overlaps: dict[str, str | None] = {}

    async def sync(self) -> None:
        pools = self.op.cache.pools
        for gone in set(self._warned_overlaps) - set(pools):
            # A deleted pool leaves no stale series behind.
            del self._warned_overlaps[gone]
            with contextlib.suppress(KeyError):  # never exported if its first write failed
                for state in DEVICE_STATES:
                    metrics.POOL_DEVICES.remove(gone, state)
                metrics.POOL_FRAGMENTATION.remove(gone)
        for name in sorted(pools):
            obj = pools.get(name)
            if obj is None:
                continue
            try:
                await self.sync_pool(name, obj)
            except Gone:
                continue
            except Conflict:
                await self.op.refresh("GPUPool", name)
                self.op.mark_pools()

    async def sync_pool(self, name: str, obj: dict[str, Any]) -> None:
        now = self.op.clock.now()
        generation = (obj.get("metadata") or {}).get("generation")
        try:
            old = GPUPoolStatus.model_validate(obj.get("status") or {})
        except Exception:
            old = GPUPoolStatus()
        invalid = self.op.cache.invalid_pools.get(name)
        decision: Decision
        if invalid is not None:
            status = old.model_copy(deep=True)
            status.observed_generation = generation
            status.conditions = set_condition(
                status.conditions, "Ready", "False", "InvalidSpec", invalid, now, generation
            )
            decision = Decision(status)
        else:
            snapshot = self.op.cache.snapshot
            status = pool_status(snapshot, name).model_copy(
                update={"observed_generation": generation}
            )
            status.conditions, overlap = pool_conditions(
                snapshot, name, old.conditions, now, generation
            )
            decision = Decision(status)
            if overlap is not None and self._warned_overlaps.get(name) != overlap:
                decision.add(Emit("Warning", "OverlappingPools", overlap))
            self._warned_overlaps[name] = overlap
        target = Target(
            obj=obj, kind="GPUPool", status_path=custom_path("gpupools", None, name, "status")
        )
        await self.op.executor.execute(target, decision.actions)
        if invalid is None:
            for state in DEVICE_STATES:
                metrics.POOL_DEVICES.labels(pool=name, state=state).set(
                    getattr(status.devices, state)
                )
            metrics.POOL_FRAGMENTATION.labels(pool=name).set(status.fragmentation)
