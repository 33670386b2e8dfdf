"""Incremental updates leave the snapshot exactly as a rebuild from the same objects would."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.fleet import FleetSnapshot, WorkerDemand, pool_status
from corral.fleet.testing import node, pod, pool

SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))

NAMES = [f"n{i}" for i in range(6)]
POOLS = [
    pool("left").expression("side", "In", "left", "both").obj(),
    pool("right").expression("side", "In", "right", "both").obj(),
]
DEMANDS = [WorkerDemand.of(devices=8), WorkerDemand.of(devices=2, cpu_millis=4000)]


def _node(name: str, side: str, rack: str, gpus: int, ready: bool, tainted: bool) -> Any:
    builder = node(name).label("side", side).rack(rack).gpus(gpus).cpu("16")
    if not ready:
        builder.not_ready()
    if tainted:
        builder.taint("maintenance")
    return builder.obj()


node_docs = st.builds(
    _node,
    st.sampled_from(NAMES),
    st.sampled_from(["left", "right", "both", "none"]),
    st.sampled_from(["r1", "r2", ""]),
    st.sampled_from([4, 8]),
    st.booleans(),
    st.booleans(),
)
pod_docs = st.builds(
    lambda index, target, gpus, phase: (
        pod(f"p{index}").on(target).gpus(gpus).cpu("2").phase(phase).obj()
    ),
    st.integers(0, 5),
    st.sampled_from(NAMES),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from(["Running", "Running", "Succeeded"]),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("node"), node_docs),
        st.tuples(st.just("pod"), pod_docs),
        st.tuples(st.just("drop-node"), st.sampled_from(NAMES)),
        st.tuples(st.just("drop-pod"), st.integers(0, 5)),
    ),
    max_size=30,
)


def figures(fleet: FleetSnapshot) -> Any:
    out = {}
    for name, view in sorted(fleet.pools.items()):
        indexes = []
        for demand in DEMANDS:
            index = view.index(demand)
            indexes.append(
                (
                    dict(index.fits),
                    {d.path: v for d, v in index.cap.items()},
                    {d.path: v for d, v in index.room.items()},
                    dict(index.fits_count),
                )
            )
        out[name] = (
            pool_status(fleet, name).model_dump(),
            sorted(view.nodes),
            sorted(view.overlapping),
            {n: d.path for n, d in view.topology.parent_of.items()},
            list(view.topology.unlabelled),
            view.total_devices,
            indexes,
        )
    return out


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_incremental_updates_equal_a_rebuild(ops: list[tuple[str, Any]]) -> None:
    live = FleetSnapshot.build([], [], POOLS)
    for demand in DEMANDS:  # indexes exist from the start and must follow every change
        for view in live.pools.values():
            view.index(demand)
    nodes: dict[str, dict[str, Any]] = {}
    pods: dict[str, dict[str, Any]] = {}
    for kind, item in ops:
        if kind == "node":
            nodes[item["metadata"]["name"]] = item
            live.upsert_node(item)
        elif kind == "pod":
            pods[item["metadata"]["name"]] = item
            live.upsert_pod(item)
        elif kind == "drop-node":
            nodes.pop(item, None)
            live.remove_node(item)
        else:
            pods.pop(f"p{item}", None)
            live.remove_pod("default", f"p{item}")
    fresh = FleetSnapshot.build(nodes.values(), pods.values(), POOLS)
    assert figures(live) == figures(fresh)
