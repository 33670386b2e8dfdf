"""Disrupt the local fleet as clouds do: `corral fleet interrupt` and `corral fleet replay-spot`.

`interrupt` sets one source's real termination signal on a node — the same keys
`corral.disruption.notices` reads (and docs/disruption.md lists) — waits out the notice, then
reclaims the node: its pods are deleted (as the pod GC does for pods of a vanished node) and the
Node object is deleted. `replay-spot` plays a spot availability trace onto the fleet's spot nodes:
a node leaving gets a notice then is reclaimed; a node returning is created again from the fleet
file (kwok makes it Ready).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from corral.disruption import notices
from corral.localfleet import fleetfile, nodes

SourceName = Literal["aws", "karpenter", "gke", "aks", "kubelet", "corral"]
SOURCES: tuple[SourceName, ...] = ("aws", "karpenter", "gke", "aks", "kubelet", "corral")
READ_AS: dict[SourceName, notices.Source] = {
    "aws": "aws-nth",
    "karpenter": "karpenter",
    "gke": "gke",
    "aks": "aks",
    "kubelet": "kubelet",
    "corral": "corral",
}
"""The `corral.disruption.notices` source each `--source` is read back as."""
DETACHED = "detached"
"""kwok manages nodes annotated `kwok.x-k8s.io/node: fake`; a node shutting down is detached so
kwok stops resetting its Ready condition."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class Signal:
    """What one source writes on a node (and its pods) when the node is about to go."""

    source: SourceName
    node_patch: dict[str, Any]
    """Merge patch of the Node (taints, cordon, annotations)."""
    node_status: dict[str, Any] | None = None
    """Strategic merge patch of the Node's status (kubelet: Ready=False, shutting down)."""
    pod_condition: dict[str, Any] | None = None
    """Condition added to every pod on the node (kubelet: DisruptionTarget)."""

    def describe(self) -> str:
        taints = [t["key"] for t in self.node_patch.get("spec", {}).get("taints", [])]
        parts = [f"taint {key}" for key in taints]
        if self.node_status:
            parts.append(f"Ready=False ({notices.KUBELET_SHUTDOWN_MESSAGE})")
        if self.pod_condition:
            parts.append(f"pods {notices.DISRUPTION_TARGET}={self.pod_condition['reason']}")
        return ", ".join(parts)


def _taint(key: str, value: str = "") -> dict[str, str]:
    taint = {"key": key, "effect": "NoSchedule"}
    if value:
        taint["value"] = value
    return taint


def signal(
    source: SourceName, existing_taints: Sequence[dict[str, Any]], now: datetime, notice: float
) -> Signal:
    """The signal of `source` for a node whose current taints are `existing_taints` (kept)."""
    deadline = now + timedelta(seconds=notice)
    kept = [
        t for t in existing_taints if not str(t.get("key", "")).startswith("node.kubernetes.io/")
    ]
    cordon: dict[str, Any] = {}
    if source == "aws":
        # NTH cordons and taints; the taint's value is the interruption event's id.
        added = [_taint(notices.NTH_SPOT_ITN, f"corral-fleet-{int(now.timestamp())}")]
        cordon = {"unschedulable": True}
    elif source == "karpenter":
        added = [_taint(notices.KARPENTER_DISRUPTED)]
    elif source == "gke":
        added = [_taint(notices.GKE_IMPENDING_TERMINATION)]
    elif source == "aks":
        added = [_taint(notices.AKS_REMEDIATOR)]
        cordon = {"unschedulable": True}
    elif source == "corral":
        added = [_taint(notices.CORRAL_TERMINATING, deadline.strftime("%Y%m%dT%H%M%SZ"))]
    elif source == "kubelet":
        when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return Signal(
            source,
            {"metadata": {"annotations": {nodes.KWOK_NODE_ANNOTATION: DETACHED}}},
            node_status={
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "KubeletNotReady",
                            "message": notices.KUBELET_SHUTDOWN_MESSAGE,
                            "lastHeartbeatTime": when,
                            "lastTransitionTime": when,
                        }
                    ]
                }
            },
            pod_condition={
                "type": notices.DISRUPTION_TARGET,
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": "Pod was terminated in response to imminent node shutdown.",
                "lastTransitionTime": when,
            },
        )
    else:
        raise ValueError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    keys = {t["key"] for t in added}
    taints = [t for t in kept if t.get("key") not in keys] + added
    return Signal(source, {"spec": {"taints": taints, **cordon}})


# --- talking to the fleet ----------------------------------------------------------------------


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _read_node(api: Any, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        response = _core(api).read_node(name, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    body: dict[str, Any] = json.loads(response.data)
    return body


def _pods_on(api: Any, node: str) -> list[dict[str, Any]]:
    response = _core(api).list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={node}", _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def notify(api: Any, node: str, source: SourceName, notice: float, now: datetime) -> Signal:
    """Set `source`'s signal on `node` (and its pods, for the kubelet)."""
    from kubernetes.client.exceptions import ApiException

    body = _read_node(api, node)
    if body is None:
        raise LookupError(f"node {node} not found")
    taints = (body.get("spec") or {}).get("taints") or []
    found = signal(source, taints, now, notice)
    core = _core(api)
    core.patch_node(node, found.node_patch, _preload_content=False)
    if found.node_status is not None:
        core.patch_node_status(node, found.node_status, _preload_content=False)
    if found.pod_condition is not None:
        for pod in _pods_on(api, node):
            meta = pod["metadata"]
            try:
                core.patch_namespaced_pod_status(
                    meta["name"],
                    meta["namespace"],
                    {"status": {"conditions": [found.pod_condition]}},
                    _preload_content=False,
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
    return found


def reclaim(api: Any, node: str) -> int:
    """The machine is gone: delete its pods at once (as the pod GC does for pods of a vanished
    node) and the Node. Returns the pods deleted."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = _core(api)
    deleted = 0
    for pod in _pods_on(api, node):
        meta = pod["metadata"]
        try:
            core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body=client.V1DeleteOptions(grace_period_seconds=0),
                _preload_content=False,
            )
            deleted += 1
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        core.delete_node(node, _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:
            raise
    return deleted


def interrupt(
    api: Any,
    node: str,
    source: SourceName,
    notice: float,
    *,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
) -> Signal:
    """Notice, wait `notice` seconds, reclaim."""
    found = notify(api, node, source, notice, datetime.now(UTC))
    log(f"node {node}: {source} notice set ({found.describe()}); reclaimed in {notice:g}s")
    sleep(notice)
    pods = reclaim(api, node)
    log(f"node {node}: reclaimed ({pods} pod(s) deleted, node deleted)")
    return found


# --- replaying a spot trace -------------------------------------------------------------------


@dataclass(frozen=True)
class SpotTrace:
    gap_seconds: float
    values: list[int]
    capacity: int
    """The value that means 'every node up' (1 for single-node files, N for N-node files)."""


def load_trace(path: Path, capacity: int | None = None) -> SpotTrace:
    """A SkyPilot spot trace (`{"metadata": {"gap_seconds": G}, "data": [...]}`); in single-node
    files 1 = available, multi-node files hold counts (the N of an `N-node` folder is full)."""
    body = json.loads(path.read_text())
    gap = float(body["metadata"]["gap_seconds"])
    values = [int(v) for v in body["data"]]
    if capacity is None:
        digits = "".join(ch if ch.isdigit() else " " for ch in path.parent.parent.name).split()
        named = int(digits[0]) if "node" in path.parent.parent.name and digits else None
        capacity = named or max(1, max(values, default=1))
    if gap <= 0 or capacity <= 0:
        raise ValueError("gap_seconds and the capacity must be positive")
    return SpotTrace(gap, values, capacity)


def up_at(trace: SpotTrace, tick: int, spot_nodes: Sequence[str]) -> set[str]:
    """The spot nodes up at a tick: the trace's share of them, first in name order."""
    share = max(0, min(trace.values[tick], trace.capacity)) / trace.capacity
    count = math.floor(share * len(spot_nodes) + 0.5)
    return set(sorted(spot_nodes)[:count])


def spot_hosts(fleet: fleetfile.Fleet) -> dict[str, dict[str, Any]]:
    """The fleet's spot nodes by name, as `fleet up` creates them."""
    return {host.name: nodes.node(fleet, host) for host in fleetfile.hosts(fleet) if host.spot}


def replay(
    api: Any,
    trace: SpotTrace,
    bodies: dict[str, dict[str, Any]],
    *,
    speed: float,
    source: SourceName,
    notice: float,
    ticks: int | None = None,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[int, list[str], list[str]]]:
    """Play the trace: per tick, nodes that go get a notice then are reclaimed; nodes that come
    back are created again. Returns (tick, gone, returned) per tick where something changed."""
    names = sorted(bodies)
    changes: list[tuple[int, list[str], list[str]]] = []
    period = trace.gap_seconds / speed
    last = len(trace.values) if ticks is None else min(ticks, len(trace.values))
    for tick in range(last):
        started = time.monotonic()
        want = up_at(trace, tick, names)
        present = {name for name in names if _read_node(api, name) is not None}
        going = sorted(present - want)
        coming = sorted(want - present)
        if going or coming:
            changes.append((tick, going, coming))
        for name in coming:
            _core(api).create_node(bodies[name], _preload_content=False)
        if coming:
            log(f"tick {tick}: {len(coming)} spot node(s) back: {', '.join(coming)}")
        if going:
            now = datetime.now(UTC)
            for name in going:
                notify(api, name, source, notice, now)
            log(f"tick {tick}: {source} notice on {len(going)} node(s): {', '.join(going)}")
            sleep(min(notice, period))
            for name in going:
                reclaim(api, name)
            log(f"tick {tick}: reclaimed {', '.join(going)}")
        sleep(max(0.0, period - (time.monotonic() - started)))
    return changes
