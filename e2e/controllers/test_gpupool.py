"""GPUPool status and conditions on a real control plane."""

from __future__ import annotations

from typing import Any

from builders import gpupool, node
from harness import Cluster, wait_for
from operator_support import MakePool, RunningOperator, ignore_404


def pool_status(cluster: Cluster, name: str) -> dict[str, Any]:
    obj = cluster.custom.get_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", name)
    return dict(obj.get("status") or {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def test_overlapping_pools_are_reported_and_count_the_node_in_neither(
    cluster: Cluster, namespace: str, make_pool: MakePool, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r2")])
    # A second pool that selects the same nodes as the first.
    other = f"{pool}-overlap"
    cluster.custom.create_cluster_custom_object(
        "corral.dev", "v1alpha1", "gpupools", gpupool(other, pool)
    )
    try:

        def overlapped() -> dict[str, Any] | None:
            status = pool_status(cluster, pool)
            overlap = condition(status, "Overlapping")
            return status if overlap and overlap["status"] == "True" else None

        status = wait_for(overlapped, timeout=30, message="Overlapping=True on the first pool")
        overlap = condition(status, "Overlapping")
        assert (
            overlap is not None and "2 node(s) also selected by another pool" in overlap["message"]
        )
        assert status["nodes"] == 0
        events = cluster.kubectl.json(
            "get", "events", "-A", "--field-selector", f"involvedObject.name={pool}"
        )
        assert "OverlappingPools" in {e["reason"] for e in events["items"]}
    finally:
        ignore_404(
            lambda: cluster.custom.delete_cluster_custom_object(
                "corral.dev", "v1alpha1", "gpupools", other
            )
        )

    def healed() -> dict[str, Any] | None:
        status = pool_status(cluster, pool)
        overlap = condition(status, "Overlapping")
        return (
            status
            if overlap and overlap["status"] == "False" and status.get("nodes") == 2
            else None
        )

    wait_for(healed, timeout=30, message="the overlap cleared once the second pool is gone")


def test_pool_without_nodes_is_not_ready(
    cluster: Cluster, namespace: str, operator: RunningOperator
) -> None:
    name = f"{namespace}-empty"
    body = gpupool(name, "no-such-nodes")
    cluster.custom.create_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", body)
    try:

        def not_ready() -> dict[str, Any] | None:
            ready = condition(pool_status(cluster, name), "Ready")
            return ready if ready and ready["status"] == "False" else None

        ready = wait_for(not_ready, timeout=30, message="Ready=False on an empty pool")
        assert ready["reason"] == "NoNodes"
    finally:
        ignore_404(
            lambda: cluster.custom.delete_cluster_custom_object(
                "corral.dev", "v1alpha1", "gpupools", name
            )
        )


def test_printer_columns_show_inventory(
    cluster: Cluster, namespace: str, make_pool: MakePool, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1").gpus(4)])
    wait_for(
        lambda: pool_status(cluster, pool).get("nodes") == 2, timeout=30, message="pool status"
    )
    out = cluster.kubectl("get", "gpupool", pool)
    header, row = out.strip().splitlines()
    assert header.split()[:6] == ["NAME", "ACCELERATOR", "NODES", "READY", "DEVICES", "FREE"]
    assert row.split()[:6] == [pool, "H100-80GB", "2", "2", "12", "12"]
