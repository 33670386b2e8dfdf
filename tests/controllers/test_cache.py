"""The operator's cache never goes back in time, and ignores what placement does not care about."""

from __future__ import annotations

from typing import Any

from corral.controllers.cache import ClusterCache
from corral.fleet.testing import node, pod


def with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = str(rv)
    return obj


def pool_obj(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {
            "nodeSelector": {"matchLabels": {"pool": name}},
            "accelerator": {"type": "H100", "memoryGiB": 80},
            **spec,
        },
    }


def job_obj(rv: int, phase: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "ns", "resourceVersion": str(rv)},
        "status": {"phase": phase},
    }


def test_an_older_event_never_replaces_a_newer_write() -> None:
    cache = ClusterCache()
    assert cache.apply_job("MODIFIED", job_obj(10, "Placing"))
    assert not cache.apply_job("MODIFIED", job_obj(9, "Queued"))
    assert cache.jobs["ns/j"]["status"]["phase"] == "Placing"
    assert cache.apply_job("MODIFIED", job_obj(11, "Running"))
    assert cache.jobs["ns/j"]["status"]["phase"] == "Running"


def test_node_heartbeats_do_not_count_as_changes() -> None:
    cache = ClusterCache()
    first = with_rv(node("h1").gpus(8).obj(), 1)
    assert cache.apply_node("ADDED", first)
    beat = with_rv(node("h1").gpus(8).obj(), 2)
    beat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-11-22T06:00:00Z"
    assert not cache.apply_node("MODIFIED", beat)
    cordoned = with_rv(node("h1").gpus(8).cordoned().obj(), 3)
    assert cache.apply_node("MODIFIED", cordoned)


def test_pods_are_indexed_by_their_job_and_forgotten_on_delete() -> None:
    cache = ClusterCache()
    worker = pod("j-w0-r0").on("h1").gpus(8).obj()
    worker["metadata"]["namespace"] = "ns"
    worker["metadata"].setdefault("labels", {})["corral.dev/job"] = "j"
    assert cache.apply_pod("ADDED", worker) == "ns/j"
    assert [p["metadata"]["name"] for p in cache.job_pods("ns/j")] == ["j-w0-r0"]
    assert cache.apply_pod("DELETED", worker) == "ns/j"
    assert cache.job_pods("ns/j") == []


def test_an_invalid_pool_is_kept_aside_with_its_reason() -> None:
    cache = ClusterCache()
    bad = pool_obj(topology={"levels": ["a/rack", "a/rack"]})
    cache.apply_pool("ADDED", bad)
    assert "spec.topology.levels: 'a/rack' is listed twice" in cache.invalid_pools["p"]
    assert "p" not in cache.snapshot.pools
    cache.apply_pool("MODIFIED", with_rv(pool_obj(), 2))
    assert "p" not in cache.invalid_pools
    assert "p" in cache.snapshot.pools


def test_seed_builds_the_snapshot_from_lists() -> None:
    cache = ClusterCache()
    member = node("h1").gpus(8).label("pool", "p").obj()
    cache.seed([member], [], [pool_obj()], [job_obj(1, "Queued")])
    view = cache.snapshot.pool("p")
    assert view is not None and list(view.nodes) == ["h1"]
    assert list(cache.jobs) == ["ns/j"]
