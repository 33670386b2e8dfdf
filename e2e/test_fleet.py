"""The simulated fleet behaves like a GPU cluster: labelled Ready nodes, pods that run and finish,
kube-scheduler honouring selectors, taints, gates and GPU capacity, controllers and GC working."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import Cluster, Kubectl, wait_for

GPU = "nvidia.com/gpu"


def _pod(
    name: str, *, gpus: int = 0, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "registry.example/worker:1"}
    if gpus:
        container["resources"] = {"limits": {GPU: str(gpus)}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 0, **spec},
    }


def _phase(cluster: Cluster, namespace: str, name: str) -> str:
    return str(cluster.core.read_namespaced_pod(name, namespace).status.phase)


def _fleet_nodes(cluster: Cluster) -> list[Any]:
    return list(cluster.core.list_node(label_selector="sim.corral.dev/fleet").items)


def _scheduled_condition(cluster: Cluster, namespace: str, name: str) -> Any:
    pod = cluster.core.read_namespaced_pod(name, namespace)
    return next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)


def test_nodes_are_ready_gpu_machines_with_real_labels(cluster: Cluster) -> None:
    nodes = _fleet_nodes(cluster)
    assert nodes, "the fleet has no nodes"
    for node in nodes:
        labels = node.metadata.labels
        ready = {c.type: c.status for c in node.status.conditions}.get("Ready")
        assert ready == "True", node.metadata.name
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
        assert labels["kubernetes.io/hostname"] == node.metadata.name
        for key in (
            "topology.kubernetes.io/region",
            "topology.kubernetes.io/zone",
            "network.corral.dev/block",
            "network.corral.dev/rack",
            "nvidia.com/gpu.product",
            "nvidia.com/gpu.memory",
            "karpenter.sh/capacity-type",
        ):
            assert labels.get(key), (node.metadata.name, key)
        assert labels["nvidia.com/gpu.count"] == node.status.allocatable[GPU]
        for resource in (GPU, "cpu", "memory", "pods"):
            assert node.status.allocatable[resource] == node.status.capacity[resource]


def test_bound_pods_run_and_finish_through_the_exit_code_annotation(
    cluster: Cluster, namespace: str
) -> None:
    core = cluster.core
    core.create_namespaced_pod(namespace, _pod("runs", gpus=1))
    core.create_namespaced_pod(
        namespace, _pod("succeeds", annotations={"sim.corral.dev/exit-code": "0"})
    )
    core.create_namespaced_pod(
        namespace, _pod("fails", annotations={"sim.corral.dev/exit-code": "3"})
    )
    wait_for(lambda: _phase(cluster, namespace, "runs") == "Running", message="pod runs is Running")
    wait_for(lambda: _phase(cluster, namespace, "succeeds") == "Succeeded", message="pod succeeds")
    wait_for(lambda: _phase(cluster, namespace, "fails") == "Failed", message="pod fails")
    ok = (
        core.read_namespaced_pod("succeeds", namespace)
        .status.container_statuses[0]
        .state.terminated
    )
    bad = core.read_namespaced_pod("fails", namespace).status.container_statuses[0].state.terminated
    assert (ok.exit_code, ok.reason) == (0, "Completed")
    assert (bad.exit_code, bad.reason) == (3, "Error")

    # A running pod finishes when a test annotates it.
    core.patch_namespaced_pod(
        "runs", namespace, {"metadata": {"annotations": {"sim.corral.dev/exit-code": "137"}}}
    )
    wait_for(lambda: _phase(cluster, namespace, "runs") == "Failed", message="annotated pod fails")
    terminated = (
        core.read_namespaced_pod("runs", namespace).status.container_statuses[0].state.terminated
    )
    assert terminated.exit_code == 137


def test_scheduler_honours_node_selector_and_affinity(cluster: Cluster, namespace: str) -> None:
    nodes = _fleet_nodes(cluster)
    rack = nodes[-1].metadata.labels["network.corral.dev/rack"]
    host = nodes[0].metadata.name
    core = cluster.core
    core.create_namespaced_pod(
        namespace, _pod("on-rack", node_selector={"network.corral.dev/rack": rack})
    )
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}
                        ]
                    }
                ]
            }
        }
    }
    core.create_namespaced_pod(namespace, _pod("on-host", affinity=affinity))
    core.create_namespaced_pod(
        namespace, _pod("nowhere", node_selector={"network.corral.dev/rack": "no-such-rack"})
    )

    def node_of(name: str) -> Any:
        return core.read_namespaced_pod(name, namespace).spec.node_name

    on_rack = wait_for(lambda: node_of("on-rack"), message="on-rack bound")
    assert core.read_node(on_rack).metadata.labels["network.corral.dev/rack"] == rack
    assert wait_for(lambda: node_of("on-host"), message="on-host bound") == host
    wait_for(lambda: _phase(cluster, namespace, "on-host") == "Running", message="on-host Running")
    unschedulable = wait_for(
        lambda: (
            (c := _scheduled_condition(cluster, namespace, "nowhere"))
            and c.reason == "Unschedulable"
            and c
        ),
        message="nowhere reported Unschedulable",
    )
    assert "node affinity/selector" in unschedulable.message
    assert node_of("nowhere") is None


def test_scheduler_counts_gpus_and_respects_taints(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    node = _fleet_nodes(cluster)[0]
    name = node.metadata.name
    gpus = int(node.status.allocatable[GPU])
    pin = {"kubernetes.io/hostname": name}

    core.create_namespaced_pod(namespace, _pod("too-big", gpus=gpus + 1))
    condition = wait_for(
        lambda: (
            (c := _scheduled_condition(cluster, namespace, "too-big"))
            and c.reason == "Unschedulable"
            and c
        ),
        message="too-big reported Unschedulable",
    )
    assert f"Insufficient {GPU}" in condition.message

    core.create_namespaced_pod(namespace, _pod("fills-node", gpus=gpus, node_selector=pin))
    wait_for(
        lambda: _phase(cluster, namespace, "fills-node") == "Running", message="fills-node Running"
    )
    core.create_namespaced_pod(namespace, _pod("one-more", gpus=1, node_selector=pin))
    condition = wait_for(
        lambda: (
            (c := _scheduled_condition(cluster, namespace, "one-more"))
            and c.reason == "Unschedulable"
            and c
        ),
        message="one-more reported Unschedulable",
    )
    assert f"Insufficient {GPU}" in condition.message

    taint = {"key": "e2e.corral.dev/tainted", "value": namespace, "effect": "NoSchedule"}
    original = json.loads(core.read_node(name, _preload_content=False).data)["spec"].get(
        "taints", []
    )
    core.patch_node(name, {"spec": {"taints": [*original, taint]}})
    try:
        core.create_namespaced_pod(namespace, _pod("intolerant", node_selector=pin))
        condition = wait_for(
            lambda: (
                (c := _scheduled_condition(cluster, namespace, "intolerant"))
                and c.reason == "Unschedulable"
                and c
            ),
            message="intolerant reported Unschedulable",
        )
        assert "untolerated taint" in condition.message
        toleration = {
            "key": taint["key"],
            "operator": "Equal",
            "value": namespace,
            "effect": "NoSchedule",
        }
        core.create_namespaced_pod(
            namespace, _pod("tolerant", node_selector=pin, tolerations=[toleration])
        )
        wait_for(
            lambda: _phase(cluster, namespace, "tolerant") == "Running", message="tolerant Running"
        )
    finally:
        core.patch_node(name, {"spec": {"taints": original or None}})


def test_scheduling_gate_holds_a_pod_until_removed(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_pod(
        namespace, _pod("gated", scheduling_gates=[{"name": "corral.dev/placement"}])
    )
    condition = wait_for(
        lambda: _scheduled_condition(cluster, namespace, "gated"), message="gated has PodScheduled"
    )
    assert (condition.status, condition.reason) == ("False", "SchedulingGated")
    assert core.read_namespaced_pod("gated", namespace).spec.node_name is None
    core.patch_namespaced_pod("gated", namespace, {"spec": {"schedulingGates": None}})
    wait_for(
        lambda: _phase(cluster, namespace, "gated") == "Running", message="ungated pod Running"
    )


def test_deployment_runs_and_garbage_collection_cascades(cluster: Cluster, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
            },
        },
    }
    cluster.apps.create_namespaced_deployment(namespace, deployment)
    wait_for(
        lambda: (
            cluster.apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3
        ),
        timeout=60,
        message="deployment web has 3 ready replicas",
    )

    def pods() -> list[Any]:
        return list(cluster.core.list_namespaced_pod(namespace, label_selector="app=web").items)

    assert {p.status.phase for p in pods()} == {"Running"}
    cluster.apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")
    wait_for(
        lambda: not cluster.apps.list_namespaced_replica_set(namespace).items and not pods(),
        timeout=60,
        message="garbage collector deleted the ReplicaSet and its pods",
    )


@pytest.mark.parametrize("label", ["nvidia.com/gpu.product", "network.corral.dev/rack"])
def test_kubectl_shows_fleet_labels(kubectl: Kubectl, label: str) -> None:
    out = kubectl("get", "nodes", "-l", "sim.corral.dev/fleet", "-L", label)
    assert label.rsplit("/", 1)[-1].upper() in out.splitlines()[0]
