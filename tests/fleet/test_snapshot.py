"""The fleet snapshot: what counts against a node, which pool holds it, and its topology."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from corral.api.gpupool import GPUPool
from corral.fleet import FleetSnapshot, NodeRecord, PodRecord, WorkerDemand, default_pool
from corral.fleet.capacity import capacity_type_from_labels
from corral.fleet.resources import pod_requests
from corral.fleet.testing import BLOCK, GPU, HOST, RACK, ZONE, PodBuilder, node, pod, pool


def snapshot(
    nodes: Sequence[dict[str, Any]],
    pods: Sequence[dict[str, Any]] = (),
    pools: Sequence[GPUPool] | None = None,
) -> FleetSnapshot:
    return FleetSnapshot.build(nodes, pods, pools if pools is not None else [pool("p").obj()])


# -- nodes --------------------------------------------------------------------------------------


def test_a_node_offers_its_allocatable_rounded_down() -> None:
    record = NodeRecord.from_dict(node("a").cpu("3500m").memory("1.5Gi").gpus(8).obj())
    assert record.allocatable["cpu"] == 3500
    assert record.allocatable["memory"] == 3 * 2**29
    assert record.allocatable[GPU] == 8
    assert record.ready and record.schedulable


def test_only_hard_taints_are_kept() -> None:
    record = NodeRecord.from_dict(
        node("a")
        .taint("x", effect="PreferNoSchedule")
        .taint("y")
        .taint("z", effect="NoExecute")
        .obj()
    )
    assert [t["key"] for t in record.taints] == ["y", "z"]


def test_a_node_without_a_ready_condition_is_not_ready() -> None:
    document = node("a").obj()
    del document["status"]["conditions"]
    assert not NodeRecord.from_dict(document).ready


# -- pods ---------------------------------------------------------------------------------------


def test_pod_requests_follow_the_scheduler() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "2"}}},
            {"name": "b", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
        ],
        "initContainers": [
            {"name": "big-init", "resources": {"requests": {"cpu": "4"}}},
            {
                "name": "sidecar",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "100m"}},
            },
        ],
        "overhead": {"cpu": "50m"},
    }
    requests = pod_requests(spec)
    # containers 1.5 + sidecar 0.1 = 1.6 < the init container's 4; plus 50m overhead
    assert requests["cpu"] == 4050
    assert requests["memory"] == 2**30
    assert requests[GPU] == 2
    assert requests["pods"] == 1


@pytest.mark.parametrize(
    ("builder", "counted"),
    [
        (pod("bound").on("a").gpus(4), True),
        (pod("pending-bound").on("a").gpus(4).phase("Pending"), True),
        (pod("assumed").assumed("a").gpus(4), True),
        (pod("unbound").gpus(4).phase("Pending"), False),
        (pod("done").on("a").gpus(4).phase("Succeeded"), False),
        (pod("failed").on("a").gpus(4).phase("Failed"), False),
    ],
)
def test_which_pods_count_against_a_node(builder: PodBuilder, counted: bool) -> None:
    document = builder.obj()
    assert PodRecord.from_dict(document).counted is counted
    fleet = snapshot([node("a").gpus(8).obj()], [document])
    assert fleet.pools["p"].free("a") == (4 if counted else 8)


def test_a_real_pod_replaces_the_assumed_one_of_the_same_name() -> None:
    fleet = snapshot([node("a").gpus(8).obj(), node("b").gpus(8).obj()])
    fleet.upsert_pod(pod("w0").assumed("a").gpus(8).obj())
    assert fleet.pools["p"].free("a") == 0
    fleet.upsert_pod(pod("w0").on("b").gpus(8).obj())
    assert fleet.pools["p"].free("a") == 8
    assert fleet.pools["p"].free("b") == 0
    fleet.remove_pod("default", "w0")
    assert fleet.pools["p"].free("b") == 8
    assert not fleet.usage


def test_pods_may_arrive_before_their_node() -> None:
    fleet = snapshot([], [pod("p").on("late").gpus(6).obj()])
    fleet.upsert_node(node("late").gpus(8).obj())
    assert fleet.pools["p"].free("late") == 2


# -- pools --------------------------------------------------------------------------------------


def test_pool_membership_uses_full_label_selector_semantics() -> None:
    nodes = [
        node("a").label("gpu", "h100").label("tier", "gold").obj(),
        node("b").label("gpu", "h100").obj(),
        node("c").label("gpu", "a100").label("tier", "gold").obj(),
    ]
    pools = [
        pool("gold-h100").match_labels({"gpu": "h100"}).expression("tier", "Exists").obj(),
        pool("plain-h100").expression("gpu", "In", "h100").expression("tier", "DoesNotExist").obj(),
        pool("not-h100").expression("gpu", "NotIn", "h100").obj(),
    ]
    fleet = snapshot(nodes, pools=pools)
    assert fleet.pool_of("a") == "gold-h100"
    assert fleet.pool_of("b") == "plain-h100"
    assert fleet.pool_of("c") == "not-h100"


def test_a_node_two_pools_select_counts_in_neither_until_one_goes() -> None:
    nodes = [node("both").label("x", "1").obj(), node("only-a").label("a", "1").obj()]
    pools = [pool("pa").expression("a", "Exists").obj(), pool("pb").expression("x", "Exists").obj()]
    fleet = snapshot(nodes, pools=pools)
    assert fleet.pool_of("both") == "pb"
    fleet.upsert_pool(pool("pa").expression("x", "Exists").obj())
    assert fleet.pool_of("both") is None
    assert fleet.overlapping_nodes("pa") == {"both"} == fleet.overlapping_nodes("pb")
    assert "both" not in fleet.pools["pa"].nodes and "both" not in fleet.pools["pb"].nodes
    assert "only-a" not in fleet.pools["pa"].nodes
    fleet.remove_pool("pb")
    assert fleet.pool_of("both") == "pa"
    assert fleet.overlapping_nodes("pa") == set()


def test_relabelling_a_node_moves_it_between_pools_and_domains() -> None:
    fleet = snapshot(
        [node("a").rack("r1").label("pool", "x").obj()],
        pools=[
            pool("x").match_labels({"pool": "x"}).obj(),
            pool("y").match_labels({"pool": "y"}).obj(),
        ],
    )
    fleet.upsert_node(node("a").rack("r2").label("pool", "y").obj())
    assert "a" not in fleet.pools["x"].nodes
    assert fleet.pools["x"].topology.parent_of == {}
    topology = fleet.pools["y"].topology
    assert topology.parent_of["a"].name == "r2"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"karpenter.sh/capacity-type": "spot"}, "spot"),
        ({"karpenter.sh/capacity-type": "on-demand"}, "on-demand"),
        ({"karpenter.sh/capacity-type": "reserved"}, "reserved"),
        ({"eks.amazonaws.com/capacityType": "SPOT"}, "spot"),
        ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand"),
        ({"eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"}, "reserved"),
        ({"cloud.google.com/gke-spot": "true"}, "spot"),
        ({"cloud.google.com/gke-preemptible": "true"}, "spot"),
        ({"kubernetes.azure.com/scalesetpriority": "spot"}, "spot"),
        ({"kubernetes.azure.com/scalesetpriority": "regular"}, "on-demand"),
        ({}, "on-demand"),
    ],
)
def test_capacity_type_from_cloud_labels(labels: dict[str, str], expected: str) -> None:
    assert capacity_type_from_labels(labels) == expected


def test_a_fixed_pool_capacity_type_overrides_the_labels() -> None:
    fleet = snapshot([node("a").spot().obj()], pools=[pool("p").capacity_type("reserved").obj()])
    assert fleet.capacity_type_of("a") == "reserved"
    assert fleet.capacity_type_of("nowhere") is None


# -- topology and capacity ----------------------------------------------------------------------


def test_domains_are_paths_so_equal_rack_names_in_two_blocks_stay_two_racks() -> None:
    fleet = snapshot(
        [
            node("a").zone("z").block("b1").rack("r1").obj(),
            node("b").zone("z").block("b2").rack("r1").obj(),
        ]
    )
    topology = fleet.pools["p"].topology
    assert len(topology.by_level[2]) == 2
    assert topology.parent_of["a"] is not topology.parent_of["b"]


def test_a_node_without_a_label_is_in_no_domain_of_that_level() -> None:
    fleet = snapshot(
        [node("a").block("b1").rack("r1").obj(), node("b").zone("z").block("b1").obj()]
    )
    topology = fleet.pools["p"].topology
    assert topology.domain_of("a", 0) is None
    assert topology.domain_of("a", 1) is not None  # still in its block
    assert topology.domain_of("b", 2) is None
    assert topology.unlabelled == [1, 0, 1]
    fleet.remove_node("a")
    fleet.remove_node("b")
    assert topology.unlabelled == [0, 0, 0]
    assert topology.root.children == {} and all(not level for level in topology.by_level)


def test_capacity_counts_whole_workers_and_every_resource() -> None:
    fleet = snapshot(
        [
            node("a").zone("z").block("b").rack("r").gpus(8).cpu("64").obj(),
            node("b").zone("z").block("b").rack("r").gpus(8).cpu("16").obj(),
            node("c").zone("z").block("b").rack("r").gpus(8).max_pods(1).obj(),
        ],
        [pod("p").on("a").gpus(1).obj()],
    )
    view = fleet.pools["p"]
    index = view.index(WorkerDemand.of(devices=4, cpu_millis=8000))
    assert index.fits == {"a": 1, "b": 2, "c": 1}  # 7 free -> 1; cpu 16 -> 2; one pod slot
    rack = view.topology.parent_of["a"]
    assert index.cap[rack] == 4 and index.room[rack] == 23
    assert index.cap[view.topology.root] == 4


def test_an_index_follows_pod_and_node_changes() -> None:
    fleet = snapshot([node("a").rack("r").gpus(8).obj(), node("b").rack("r").gpus(8).obj()])
    view = fleet.pools["p"]
    index = view.index(WorkerDemand.of(devices=8))
    root = view.topology.root
    assert index.cap[root] == 2
    fleet.upsert_pod(pod("p").on("a").gpus(1).obj())
    assert index.cap[root] == 1 and index.room[root] == 15
    fleet.upsert_node(node("b").rack("r").gpus(8).taint("maintenance").obj())
    assert index.cap.get(root, 0) == 0
    fleet.upsert_node(node("b").rack("r").gpus(8).obj())
    fleet.remove_pod("default", "p")
    assert index.cap[root] == 2 and index.room[root] == 16


def test_the_default_pool_reads_levels_and_devices_from_the_nodes() -> None:
    records = [
        NodeRecord.from_dict(node("a").block("b1").rack("r1").obj()),
        NodeRecord.from_dict(node("b").block("b1").rack("r2").obj()),
        NodeRecord.from_dict(node("cpu").gpus(0).obj()),
    ]
    made, members = default_pool(records)
    assert made.metadata.name == "default"
    assert made.spec.topology.levels == [BLOCK, RACK, HOST]
    assert [m.name for m in members] == ["a", "b"]
    assert made.spec.resource_name == GPU
    assert ZONE not in made.spec.topology.levels
