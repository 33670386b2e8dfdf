"""The operator's cache: its own writes' echoes change nothing, older events never replace a
newer write, deletions are forgotten everywhere, and only what is read is kept."""

from __future__ import annotations

from typing import Any

from corral.controllers.cache import ClusterCache, strip
from corral.fleet.testing import node, pod


def with_rv(obj: dict[str, Any], rv: str) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = rv
    return obj


def pool_obj(name: str = "p", rv: str = "1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name, "resourceVersion": rv},
        "spec": {
            "nodeSelector": {"matchLabels": {"pool": name}},
            "accelerator": {"type": "H100", "memoryGiB": 80},
            **spec,
        },
    }


def job_obj(rv: str, phase: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "ns", "resourceVersion": rv, "uid": "u1"},
        "status": {"phase": phase},
    }


def test_the_echo_of_an_own_write_changes_nothing() -> None:
    cache = ClusterCache()
    assert cache.apply("TrainingJob", "ADDED", job_obj("a7", "Queued"), "watch")
    assert cache.apply("TrainingJob", "MODIFIED", job_obj("x1", "Placing"), "write")
    assert cache.awaiting_echo("TrainingJob", "ns/j")
    assert cache.apply("TrainingJob", "MODIFIED", job_obj("x1", "Placing"), "watch") is None
    assert not cache.awaiting_echo("TrainingJob", "ns/j")


def test_an_event_from_before_an_own_write_never_replaces_it() -> None:
    # resourceVersions are opaque: "z9" sorts after "b2" but the watch delivered it first.
    cache = ClusterCache()
    cache.apply("TrainingJob", "ADDED", job_obj("z9", "Queued"), "watch")
    cache.apply("TrainingJob", "MODIFIED", job_obj("b2", "Running"), "write")
    assert cache.apply("TrainingJob", "MODIFIED", job_obj("q5", "Placing"), "watch") is None
    assert cache.jobs["ns/j"]["status"]["phase"] == "Running"
    assert cache.apply("TrainingJob", "MODIFIED", job_obj("b2", "Running"), "watch") is None
    change = cache.apply("TrainingJob", "MODIFIED", job_obj("c3", "Succeeded"), "watch")
    assert change is not None and change.new is not None
    assert cache.jobs["ns/j"]["status"]["phase"] == "Succeeded"


def test_a_watch_event_that_overtook_the_answer_of_its_write_wins() -> None:
    cache = ClusterCache()
    cache.apply("TrainingJob", "ADDED", job_obj("1", "Queued"), "watch")
    cache.apply("TrainingJob", "MODIFIED", job_obj("2", "Placing"), "watch")
    cache.apply("TrainingJob", "MODIFIED", job_obj("3", "Running"), "watch")
    # The answer to the write that made "2" arrives late: the newer "3" stays.
    assert cache.apply("TrainingJob", "MODIFIED", job_obj("2", "Placing"), "write") is None
    assert cache.jobs["ns/j"]["status"]["phase"] == "Running"
    assert not cache.awaiting_echo("TrainingJob", "ns/j")


def test_a_relist_is_the_truth_and_clears_what_awaited_an_echo() -> None:
    cache = ClusterCache()
    cache.apply("TrainingJob", "MODIFIED", job_obj("5", "Placing"), "write")
    assert cache.apply("TrainingJob", "SYNC", job_obj("9", "Running"), "list")
    assert not cache.awaiting_echo("TrainingJob", "ns/j")
    assert cache.apply("TrainingJob", "SYNC", job_obj("9", "Running"), "list") is None


def test_node_heartbeats_change_the_object_but_not_the_snapshot() -> None:
    cache = ClusterCache()
    cache.apply("Node", "ADDED", with_rv(node("h1").gpus(8).obj(), "1"), "watch")
    record = cache.snapshot.nodes["h1"]
    beat = with_rv(node("h1").gpus(8).obj(), "2")
    beat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-11-22T06:00:00Z"
    assert cache.apply("Node", "MODIFIED", beat, "watch") is not None
    assert cache.snapshot.nodes["h1"] is record
    cache.apply("Node", "MODIFIED", with_rv(node("h1").gpus(8).cordoned().obj(), "3"), "watch")
    assert cache.snapshot.nodes["h1"].unschedulable


def test_pods_are_indexed_by_their_controller_uid_and_forgotten_on_delete() -> None:
    cache = ClusterCache()
    worker = pod("j-w0-r0", "ns").on("h1").gpus(8).obj()
    worker["metadata"]["ownerReferences"] = [{"uid": "u1", "controller": True}]
    worker["metadata"]["labels"] = {"corral.dev/job": "j"}
    cache.apply("Pod", "ADDED", with_rv(worker, "1"), "watch")
    impostor = pod("j-w1-r0", "ns").on("h2").gpus(8).obj()
    impostor["metadata"]["labels"] = {"corral.dev/job": "j"}  # the label alone owns nothing
    cache.apply("Pod", "ADDED", with_rv(impostor, "2"), "watch")
    assert [p["metadata"]["name"] for p in cache.owned_pods("u1")] == ["j-w0-r0"]
    cache.apply("Pod", "DELETED", worker, "watch")
    assert cache.owned_pods("u1") == [] and "u1" not in cache.owned
    assert ("ns", "j-w0-r0") not in cache.snapshot.pods


def test_an_invalid_pool_is_kept_aside_with_its_reason() -> None:
    cache = ClusterCache()
    cache.apply("GPUPool", "ADDED", pool_obj(topology={"levels": ["a/rack", "a/rack"]}), "watch")
    assert "spec.topology.levels: 'a/rack' is listed twice" in cache.invalid_pools["p"]
    assert "p" not in cache.snapshot.pools
    cache.apply("GPUPool", "MODIFIED", pool_obj(rv="2"), "watch")
    assert "p" not in cache.invalid_pools
    assert "p" in cache.snapshot.pools


def test_only_what_is_read_is_cached() -> None:
    node_obj = {
        "metadata": {"name": "n", "managedFields": [{"manager": "kubelet"}], "labels": {"a": "b"}},
        "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}]},
        "status": {
            "images": [{"names": ["x"], "sizeBytes": 1}],
            "nodeInfo": {"osImage": "l"},
            "allocatable": {"nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t"}],
        },
    }
    kept = strip("Node", node_obj)
    assert "managedFields" not in kept["metadata"] and kept["metadata"]["labels"] == {"a": "b"}
    assert kept["spec"] == node_obj["spec"]
    assert kept["status"] == {
        "allocatable": {"nvidia.com/gpu": "8"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    pod_obj = {
        "metadata": {
            "name": "p",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "k": "v"},
        },
        "spec": {
            "volumes": [{"name": "v"}],
            "nodeName": "n",
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "c", "imageID": "x", "state": {"running": {}}}],
        },
    }
    kept = strip("Pod", pod_obj)
    assert kept["metadata"]["annotations"] == {"k": "v"}
    assert kept["spec"] == {
        "nodeName": "n",
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
        "initContainers": [],
    }
    assert kept["status"] == {"phase": "Running", "containerStatuses": [{"name": "c", "state": {}}]}
    assert pod_obj["spec"]["volumes"]  # the input is left alone


def test_the_late_answer_of_a_delete_never_brings_the_object_back() -> None:
    cache = ClusterCache()
    worker = with_rv(pod("w", "ns").assumed("h1").gpus(8).obj(), "1")
    worker["metadata"]["uid"] = "u-old"
    cache.apply("Pod", "ADDED", worker, "watch")
    gone = with_rv(dict(worker, metadata={**worker["metadata"], "deletionTimestamp": "t"}), "7")
    cache.apply("Pod", "DELETED", gone, "watch")
    assert cache.apply("Pod", "MODIFIED", gone, "write") is None
    assert "ns/w" not in cache.pods and ("ns", "w") not in cache.snapshot.pods
    reborn = with_rv(pod("w", "ns").assumed("h1").gpus(8).obj(), "9")
    reborn["metadata"]["uid"] = "u-new"  # a new pod of that name is another object
    assert cache.apply("Pod", "ADDED", reborn, "write") is not None
