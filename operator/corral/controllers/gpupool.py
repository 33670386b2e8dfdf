"""GPUPool controller: keep each pool's status true to the fleet snapshot.

Status is recomputed at most once per POOL_STATUS_INTERVAL_SECONDS however many pod and node
events arrive, and patched only when it changed: a 2,000-node fleet with churning pods costs a
handful of patches a minute, not one per pod event.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from corral import metrics
from corral.api.conditions import set_condition
from corral.api.gpupool import GPUPoolStatus
from corral.api.meta import ConditionStatus
from corral.controllers.context import Context
from corral.fleet import pool_status
from corral.kube.patches import merge_patch
from corral.kube.rest import ApiError, custom_path

log = logging.getLogger("corral.gpupool")

POOL_STATUS_INTERVAL_SECONDS = 2.0
DEVICE_STATES = ("capacity", "allocatable", "allocated", "free")


class GPUPoolController:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._warned_overlaps: dict[str, tuple[str, ...]] = {}

    async def sync(self) -> None:
        for gone in set(self._warned_overlaps) - set(self.ctx.cache.pools):
            # A deleted pool leaves no stale series behind.
            del self._warned_overlaps[gone]
            with contextlib.suppress(KeyError):  # never exported if its first write failed
                for state in DEVICE_STATES:
                    metrics.POOL_DEVICES.remove(gone, state)
                metrics.POOL_FRAGMENTATION.remove(gone)
        for name, obj in list(self.ctx.cache.pools.items()):
            try:
                await self.sync_pool(name, obj)
            except ApiError as exc:
                if exc.status != 404:
                    raise

    async def sync_pool(self, name: str, obj: dict[str, Any]) -> None:
        now = self.ctx.clock()
        generation = (obj.get("metadata") or {}).get("generation")
        old = GPUPoolStatus.model_validate(obj.get("status") or {})
        invalid = self.ctx.cache.invalid_pools.get(name)
        if invalid is not None:
            status = old.model_copy(deep=True)
            status.observed_generation = generation
            status.conditions = set_condition(
                status.conditions, "Ready", "False", "InvalidSpec", invalid, now, generation
            )
            await self._write(obj, status)
            return
        computed = pool_status(self.ctx.cache.snapshot, name)
        status = computed.model_copy(
            update={"observed_generation": generation, "conditions": old.conditions}
        )
        overlapping = tuple(sorted(self.ctx.cache.snapshot.overlapping_nodes(name)))
        view = self.ctx.cache.snapshot.pool(name)
        members = list(view.nodes.values()) if view is not None else []
        not_ready = sum(1 for node in members if not node.ready)
        cordoned = sum(1 for node in members if node.ready and node.unschedulable)
        if status.nodes == 0:
            ready: tuple[ConditionStatus, str, str] = (
                "False",
                "NoNodes",
                "no node matches spec.nodeSelector",
            )
        else:
            ready = ("True", "NodesReady", f"{status.ready_nodes} of {status.nodes} node(s) ready")
        status.conditions = set_condition(
            status.conditions, "Ready", ready[0], ready[1], ready[2], now, generation
        )
        degraded: tuple[ConditionStatus, str, str]
        if not_ready or cordoned:
            degraded = (
                "True",
                "NodesUnavailable",
                f"{not_ready + cordoned} node(s) unavailable: {not_ready} NotReady, {cordoned} cordoned",
            )
        else:
            degraded = ("False", "AllNodesAvailable", "every node is Ready and schedulable")
        status.conditions = set_condition(
            status.conditions, "Degraded", degraded[0], degraded[1], degraded[2], now, generation
        )
        if overlapping:
            shown = ", ".join(overlapping[:5]) + (
                f" and {len(overlapping) - 5} more" if len(overlapping) > 5 else ""
            )
            message = f"{len(overlapping)} node(s) also selected by another pool, counted in neither: {shown}"
            status.conditions = set_condition(
                status.conditions,
                "Overlapping",
                "True",
                "NodesInTwoPools",
                message,
                now,
                generation,
            )
            if self._warned_overlaps.get(name) != overlapping:
                await self.ctx.post_event(obj, "Warning", "OverlappingPools", message)
        else:
            status.conditions = set_condition(
                status.conditions,
                "Overlapping",
                "False",
                "NoOverlap",
                "no node is selected by another pool",
                now,
                generation,
            )
        self._warned_overlaps[name] = overlapping
        await self._write(obj, status)
        for state in DEVICE_STATES:
            metrics.POOL_DEVICES.labels(pool=name, state=state).set(getattr(status.devices, state))
        metrics.POOL_FRAGMENTATION.labels(pool=name).set(status.fragmentation)

    async def _write(self, obj: dict[str, Any], status: GPUPoolStatus) -> None:
        patch = merge_patch(obj.get("status") or {}, status.to_wire())
        if not patch:
            return
        answer = await self.ctx.api.patch(
            custom_path("gpupools", None, obj["metadata"]["name"], "status"), {"status": patch}
        )
        self.ctx.cache.apply_pool("MODIFIED", answer)
        metrics.STATUS_WRITES.labels(kind="GPUPool").inc()
