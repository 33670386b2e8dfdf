"""Hosts of a fleet file → Node objects that kwok manages (Ready, heartbeated, running pods).

Each node carries the labels a real GPU node carries: well-known Kubernetes labels, the labels
of NVIDIA GPU feature discovery, the capacity-type label of the simulated cloud, and the network
topology labels (`network.corral.dev/block|rack`, optionally the cloud's own). Nodes are plain
dicts, ready for the API (kubectl or the Python client).
"""

from __future__ import annotations

from typing import Any

from corral.localfleet.fleetfile import Fleet, Host, hosts

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
"""kwok manages nodes carrying `kwok.x-k8s.io/node: fake`."""
FLEET_LABEL = "sim.corral.dev/fleet"
"""Marks the nodes `corral fleet up` owns (it creates, updates and deletes only those)."""

BLOCK_LABEL = "network.corral.dev/block"
RACK_LABEL = "network.corral.dev/rack"
GPU_RESOURCE = "nvidia.com/gpu"

CAPACITY_TYPE_LABEL = {
    "aws": "karpenter.sh/capacity-type",
    "gcp": "cloud.google.com/gke-spot",
    "azure": "kubernetes.azure.com/scalesetpriority",
}
"""The label each cloud puts on spot nodes (GKE and AKS set it on spot nodes only)."""

AZURE_SPOT_TAINT = {
    "key": "kubernetes.azure.com/scalesetpriority",
    "value": "spot",
    "effect": "NoSchedule",
}
"""AKS taints every spot node; workloads that accept spot tolerate it."""


def capacity_labels(cloud: str, spot: bool) -> dict[str, str]:
    if cloud == "aws":
        return {CAPACITY_TYPE_LABEL["aws"]: "spot" if spot else "on-demand"}
    if cloud == "gcp":
        return {CAPACITY_TYPE_LABEL["gcp"]: "true"} if spot else {}
    if cloud == "azure":
        return {CAPACITY_TYPE_LABEL["azure"]: "spot"} if spot else {}
    raise ValueError(f"unknown cloud {cloud!r}")


def cloud_topology_labels(cloud: str, host: Host) -> dict[str, str]:
    """The cloud-native names of the same topology (AWS: layer 1 is the farthest network node,
    layer 3 the one the instance hangs off; GKE: block, sub-block, host)."""
    if cloud == "aws":
        return {
            "topology.k8s.aws/network-node-layer-1": f"nn-{host.zone}",
            "topology.k8s.aws/network-node-layer-2": f"nn-{host.block}",
            "topology.k8s.aws/network-node-layer-3": f"nn-{host.rack}",
        }
    if cloud == "gcp":
        return {
            "cloud.google.com/gce-topology-block": host.block,
            "cloud.google.com/gce-topology-subblock": host.rack,
            "cloud.google.com/gce-topology-host": host.name,
        }
    return {}  # AKS publishes no network topology labels


def node_labels(fleet: Fleet, host: Host) -> dict[str, str]:
    spec = host.spec
    labels = {
        "kubernetes.io/hostname": host.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": host.region,
        "topology.kubernetes.io/zone": host.zone,
        BLOCK_LABEL: host.block,
        RACK_LABEL: host.rack,
        "type": "kwok",
        FLEET_LABEL: fleet.name,
    }
    if spec.instance_type:
        labels["node.kubernetes.io/instance-type"] = spec.instance_type
    if spec.gpus:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": spec.product or "NVIDIA-GPU",
            "nvidia.com/gpu.count": str(spec.gpus),
            "nvidia.com/gpu.memory": str(spec.gpu_memory_mib or 0),
        }
    labels |= capacity_labels(fleet.cloud, host.spot)
    if fleet.cloud_topology_labels:
        labels |= cloud_topology_labels(fleet.cloud, host)
    return labels | spec.labels


def node(fleet: Fleet, host: Host) -> dict[str, Any]:
    """The Node object of one host; its status gives kwok the capacity to advertise."""
    spec = host.spec
    resources = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": spec.ephemeral_storage,
    }
    if spec.gpus:
        resources[GPU_RESOURCE] = str(spec.gpus)
    taints = [t.model_dump() for t in spec.taints]
    if fleet.cloud == "azure" and host.spot:
        taints.append(dict(AZURE_SPOT_TAINT))
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": host.name,
            "labels": node_labels(fleet, host),
            "annotations": {
                KWOK_NODE_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": {"taints": taints} if taints else {},
        "status": {
            "allocatable": {k: v for k, v in resources.items() if v is not None},
            "capacity": {k: v for k, v in resources.items() if v is not None},
        },
    }
    return body


def fleet_nodes(fleet: Fleet) -> list[dict[str, Any]]:
    """Every Node of the fleet, in the fleet's stable host order."""
    return [node(fleet, host) for host in hosts(fleet)]


def summary(fleet: Fleet) -> dict[str, int]:
    """Counts for a one-line description: hosts, GPUs, spot hosts, zones, blocks, racks."""
    every = hosts(fleet)
    return {
        "hosts": len(every),
        "gpus": sum(h.spec.gpus or 0 for h in every),
        "spot": sum(h.spot for h in every),
        "zones": len({h.zone for h in every}),
        "blocks": len({h.block for h in every}),
        "racks": len({h.rack for h in every}),
    }
