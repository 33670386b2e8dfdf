"""Fleet hosts → Node objects: labels of real GPU clusters, capacity, kwok's annotation."""

from __future__ import annotations

from typing import Any

import pytest

from corral.localfleet import fleetfile, nodes


def _fleet(**overrides: Any) -> fleetfile.Fleet:
    data: dict[str, Any] = {
        "name": "t",
        "hostsPerRack": 4,
        "spot": 0.5,
        "host": {
            "gpus": 8,
            "product": "NVIDIA-H100-80GB-HBM3",
            "gpuMemoryMiB": 81559,
            "cpu": 96,
            "memory": "1Ti",
        },
        "regions": [{"name": "eu-west-1", "zones": [{"name": "eu-west-1a"}]}],
    }
    return fleetfile.parse(data | overrides)


def test_node_object_for_kwok() -> None:
    node = nodes.fleet_nodes(_fleet())[0]
    assert node["metadata"]["name"] == "eu-west-1a-b1-r1-h01"
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
    assert labels["topology.kubernetes.io/region"] == "eu-west-1"
    assert labels["topology.kubernetes.io/zone"] == "eu-west-1a"
    assert labels["network.corral.dev/block"] == "eu-west-1a-b1"
    assert labels["network.corral.dev/rack"] == "eu-west-1a-b1-r1"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.memory"] == "81559"
    assert labels["sim.corral.dev/fleet"] == "t"
    assert node["status"]["allocatable"] == {
        "cpu": "96", "memory": "1Ti", "pods": "110", "ephemeral-storage": "30Ti", "nvidia.com/gpu": "8",
    }  # fmt: skip
    assert node["status"]["capacity"] == node["status"]["allocatable"]
    assert node["spec"] == {}


@pytest.mark.parametrize(
    ("cloud", "spot_labels", "on_demand_labels"),
    [
        (
            "aws",
            {"karpenter.sh/capacity-type": "spot"},
            {"karpenter.sh/capacity-type": "on-demand"},
        ),
        ("gcp", {"cloud.google.com/gke-spot": "true"}, {}),
        ("azure", {"kubernetes.azure.com/scalesetpriority": "spot"}, {}),
    ],
)
def test_capacity_type_label_of_each_cloud(
    cloud: str, spot_labels: dict[str, str], on_demand_labels: dict[str, str]
) -> None:
    fleet = _fleet(cloud=cloud)
    by_spot = {h.spot: nodes.node(fleet, h) for h in fleetfile.hosts(fleet)}
    keys = set(nodes.CAPACITY_TYPE_LABEL.values())
    for spot, expected in ((True, spot_labels), (False, on_demand_labels)):
        labels = by_spot[spot]["metadata"]["labels"]
        assert {k: v for k, v in labels.items() if k in keys} == expected
    taints = by_spot[True]["spec"].get("taints", [])
    assert (nodes.AZURE_SPOT_TAINT in taints) == (cloud == "azure")


def test_cloud_topology_labels_are_optional() -> None:
    plain = nodes.fleet_nodes(_fleet())[0]["metadata"]["labels"]
    assert not any(k.startswith("topology.k8s.aws/") for k in plain)
    aws = nodes.fleet_nodes(_fleet(cloudTopologyLabels=True))[0]["metadata"]["labels"]
    assert aws["topology.k8s.aws/network-node-layer-3"] == "nn-eu-west-1a-b1-r1"
    gcp = nodes.fleet_nodes(_fleet(cloud="gcp", cloudTopologyLabels=True))[0]["metadata"]["labels"]
    assert gcp["cloud.google.com/gce-topology-block"] == "eu-west-1a-b1"
    assert gcp["cloud.google.com/gce-topology-subblock"] == "eu-west-1a-b1-r1"
    assert gcp["cloud.google.com/gce-topology-host"] == "eu-west-1a-b1-r1-h01"


def test_extra_labels_and_taints_and_cpu_only_hosts() -> None:
    fleet = _fleet(
        host={
            "gpus": 0,
            "labels": {"team": "infra"},
            "taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}],
        }
    )
    node = nodes.fleet_nodes(fleet)[0]
    assert node["metadata"]["labels"]["team"] == "infra"
    assert not any(k.startswith("nvidia.com/") for k in node["metadata"]["labels"])
    assert "nvidia.com/gpu" not in node["status"]["allocatable"]
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]


def test_node_names_are_unique_in_the_scale_fleet() -> None:
    from pathlib import Path

    fleet = fleetfile.load(Path(__file__).resolve().parents[2] / "e2e" / "fleets" / "scale.yaml")
    names = [n["metadata"]["name"] for n in nodes.fleet_nodes(fleet)]
    assert len(names) == len(set(names)) == 2000
