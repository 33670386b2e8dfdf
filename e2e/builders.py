"""Builders for controller e2e tests: each test brings its own little pool of kwok GPU nodes.

`node("h1").rack("r1").gpus(8)` is a Node kwok keeps Ready; `pool(tag)` a GPUPool selecting the
nodes of one test (label `e2e.corral.dev/pool=<tag>`); `training_job("j").workers(4).gpus(8)` a
TrainingJob targeting that pool. Tests stay independent of each other and of the session fleet.
"""

from __future__ import annotations

import copy
from typing import Any

POOL_LABEL = "e2e.corral.dev/pool"
EXIT_CODE_ANNOTATION = "sim.corral.dev/exit-code"


class NodeBuilder:
    def __init__(self, name: str):
        self._name = name
        self._labels: dict[str, str] = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "type": "kwok",
            "topology.kubernetes.io/zone": "zone-a",
            "network.corral.dev/block": "b1",
            "nvidia.com/gpu.product": "E2E-TEST-GPU",  # no pool but the test's own selects these
            "karpenter.sh/capacity-type": "on-demand",
        }
        self._gpus = 8
        self._taints: list[dict[str, str]] = []
        self._unschedulable = False

    def pool(self, tag: str) -> NodeBuilder:
        self._labels[POOL_LABEL] = tag
        return self

    def rack(self, rack: str) -> NodeBuilder:
        self._labels["network.corral.dev/rack"] = rack
        return self

    def block(self, block: str) -> NodeBuilder:
        self._labels["network.corral.dev/block"] = block
        return self

    def gpus(self, count: int) -> NodeBuilder:
        self._gpus = count
        return self

    def spot(self) -> NodeBuilder:
        self._labels["karpenter.sh/capacity-type"] = "spot"
        return self

    def taint(self, key: str, effect: str = "NoSchedule", value: str = "") -> NodeBuilder:
        self._taints.append({"key": key, "value": value, "effect": effect})
        return self

    def cordoned(self) -> NodeBuilder:
        self._unschedulable = True
        return self

    def obj(self) -> dict[str, Any]:
        resources = {
            "cpu": "192",
            "memory": "2Ti",
            "pods": "110",
            "nvidia.com/gpu": str(self._gpus),
        }
        spec: dict[str, Any] = {}
        if self._taints:
            spec["taints"] = self._taints
        if self._unschedulable:
            spec["unschedulable"] = True
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self._name,
                "labels": dict(self._labels),
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": spec,
            "status": {"allocatable": dict(resources), "capacity": dict(resources)},
        }


def node(name: str) -> NodeBuilder:
    return NodeBuilder(name)


def gpupool(name: str, tag: str, levels: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"matchLabels": {POOL_LABEL: tag}},
            "accelerator": {"type": "H100-80GB", "memoryGiB": 80, "watts": 700},
            "topology": {
                "levels": levels
                or ["network.corral.dev/block", "network.corral.dev/rack", "kubernetes.io/hostname"]
            },
            "pricing": {"onDemandPerDeviceHour": 4.0, "spotPerDeviceHour": 1.5},
        },
    }


class JobBuilder:
    def __init__(self, name: str, namespace: str):
        self._obj: dict[str, Any] = {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "workers": 1,
                "acceleratorsPerWorker": 8,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "trainer",
                                "image": "registry.example/trainer:1",
                                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                            }
                        ]
                    }
                },
            },
        }

    def workers(self, n: int) -> JobBuilder:
        self._obj["spec"]["workers"] = n
        return self

    def gpus(self, n: int) -> JobBuilder:
        self._obj["spec"]["acceleratorsPerWorker"] = n
        return self

    def pool(self, name: str) -> JobBuilder:
        self._obj["spec"]["pools"] = [name]
        return self

    def spec(self, **fields: Any) -> JobBuilder:
        self._obj["spec"].update(fields)
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)


def training_job(name: str, namespace: str) -> JobBuilder:
    return JobBuilder(name, namespace)
