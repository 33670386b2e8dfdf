"""Fluent builders of Nodes, Pods, GPUPools and TrainingJobs for tests and benchmarks.

    node("x1").zone("z1").block("b1").rack("r1").gpus(8).spot().obj()
    pod("w0").on("x1").gpus(4).obj()
    pool("h100").levels(ZONE, BLOCK, RACK, HOST).obj()
    job("llama").workers(4).gpus(8).required(BLOCK).obj()

Nodes and pods come out as the plain dicts the Kubernetes API returns; pools and jobs as models.
"""

from __future__ import annotations

import copy
from typing import Any

from corral.api.gpupool import DEFAULT_LEVELS, HOSTNAME_LEVEL, GPUPool
from corral.api.names import NODE_ANNOTATION
from corral.api.trainingjob import TrainingJob

ZONE = "topology.kubernetes.io/zone"
BLOCK = "network.corral.dev/block"
RACK = "network.corral.dev/rack"
HOST = HOSTNAME_LEVEL
GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"


class NodeBuilder:
    def __init__(self, name: str):
        self._name = name
        self._labels: dict[str, str] = {HOST: name, PRODUCT: "NVIDIA-H100-80GB-HBM3"}
        self._allocatable: dict[str, str] = {
            "cpu": "96",
            "memory": "1Ti",
            "pods": "110",
            GPU: "8",
        }
        self._ready = True
        self._unschedulable = False
        self._taints: list[dict[str, str]] = []

    def label(self, key: str, value: str | None) -> NodeBuilder:
        if value is None:
            self._labels.pop(key, None)
        else:
            self._labels[key] = value
        return self

    def zone(self, value: str) -> NodeBuilder:
        return self.label(ZONE, value)

    def block(self, value: str) -> NodeBuilder:
        return self.label(BLOCK, value)

    def rack(self, value: str) -> NodeBuilder:
        return self.label(RACK, value)

    def gpus(self, count: int, resource: str = GPU) -> NodeBuilder:
        self._allocatable[resource] = str(count)
        return self

    def cpu(self, quantity: str) -> NodeBuilder:
        self._allocatable["cpu"] = quantity
        return self

    def memory(self, quantity: str) -> NodeBuilder:
        self._allocatable["memory"] = quantity
        return self

    def max_pods(self, count: int) -> NodeBuilder:
        self._allocatable["pods"] = str(count)
        return self

    def spot(self) -> NodeBuilder:
        return self.label("karpenter.sh/capacity-type", "spot")

    def on_demand(self) -> NodeBuilder:
        return self.label("karpenter.sh/capacity-type", "on-demand")

    def not_ready(self) -> NodeBuilder:
        self._ready = False
        return self

    def cordoned(self) -> NodeBuilder:
        self._unschedulable = True
        return self

    def taint(self, key: str, value: str = "", effect: str = "NoSchedule") -> NodeBuilder:
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        self._taints.append(taint)
        return self

    def obj(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self._unschedulable:
            spec["unschedulable"] = True
        if self._taints:
            spec["taints"] = copy.deepcopy(self._taints)
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self._name, "labels": dict(self._labels)},
            "spec": spec,
            "status": {
                "allocatable": dict(self._allocatable),
                "capacity": dict(self._allocatable),
                "conditions": [
                    {"type": "Ready", "status": "True" if self._ready else "False"},
                ],
            },
        }


class PodBuilder:
    def __init__(self, name: str, namespace: str = "default"):
        self._name = name
        self._namespace = namespace
        self._node: str | None = None
        self._assumed: str | None = None
        self._nominated: str | None = None
        self._requests: dict[str, str] = {}
        self._phase = "Running"

    def on(self, node: str) -> PodBuilder:
        self._node = node
        return self

    def assumed(self, node: str) -> PodBuilder:
        """A gated Corral worker not bound yet: counted on `node` through the annotation."""
        self._assumed = node
        return self

    def nominated(self, node: str) -> PodBuilder:
        """Not bound, expected on `node` (status.nominatedNodeName, as kube-scheduler writes it
        for a pod it is about to bind or preempted room for)."""
        self._nominated = node
        self._phase = "Pending"
        return self

    def gpus(self, count: int, resource: str = GPU) -> PodBuilder:
        self._requests[resource] = str(count)
        return self

    def cpu(self, quantity: str) -> PodBuilder:
        self._requests["cpu"] = quantity
        return self

    def memory(self, quantity: str) -> PodBuilder:
        self._requests["memory"] = quantity
        return self

    def phase(self, phase: str) -> PodBuilder:
        self._phase = phase
        return self

    def obj(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        if self._assumed:
            metadata["annotations"] = {NODE_ANNOTATION: self._assumed}
        spec: dict[str, Any] = {
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"requests": self._requests}}
            ]
        }
        if self._node:
            spec["nodeName"] = self._node
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
            "status": {
                "phase": self._phase,
                **({"nominatedNodeName": self._nominated} if self._nominated else {}),
            },
        }


class PoolBuilder:
    def __init__(self, name: str):
        self._spec: dict[str, Any] = {
            "nodeSelector": {},
            "resourceName": GPU,
            "accelerator": {"type": "H100-80GB", "memoryGiB": 80},
            "topology": {"levels": list(DEFAULT_LEVELS)},
            "capacityType": "auto",
            "pricing": {"onDemandPerDeviceHour": 4.0, "spotPerDeviceHour": 1.5},
        }
        self._name = name

    def select(self, **labels: str) -> PoolBuilder:
        """matchLabels (keyword names: `_` stands for `.` and `__` for `/`)."""
        match = self._spec["nodeSelector"].setdefault("matchLabels", {})
        for key, value in labels.items():
            match[key.replace("__", "/").replace("_", ".")] = value
        return self

    def match_labels(self, labels: dict[str, str]) -> PoolBuilder:
        self._spec["nodeSelector"].setdefault("matchLabels", {}).update(labels)
        return self

    def expression(self, key: str, operator: str, *values: str) -> PoolBuilder:
        expressions = self._spec["nodeSelector"].setdefault("matchExpressions", [])
        expressions.append({"key": key, "operator": operator, "values": list(values)})
        return self

    def levels(self, *levels: str) -> PoolBuilder:
        self._spec["topology"] = {"levels": list(levels)}
        return self

    def accelerator(self, type: str, memory_gib: float = 80) -> PoolBuilder:
        self._spec["accelerator"] = {"type": type, "memoryGiB": memory_gib}
        return self

    def capacity_type(self, value: str) -> PoolBuilder:
        self._spec["capacityType"] = value
        return self

    def pricing(self, on_demand: float, spot: float | None = None) -> PoolBuilder:
        self._spec["pricing"] = {"onDemandPerDeviceHour": on_demand}
        if spot is not None:
            self._spec["pricing"]["spotPerDeviceHour"] = spot
        return self

    def location(self, region: str | None = None, jurisdiction: str | None = None) -> PoolBuilder:
        location = {}
        if region:
            location["region"] = region
        if jurisdiction:
            location["jurisdiction"] = jurisdiction
        self._spec["location"] = location
        return self

    def carbon(self, grams_per_kwh: float) -> PoolBuilder:
        self._spec["carbon"] = {"gramsPerKWh": grams_per_kwh}
        return self

    def hourly_carbon(self, grams_per_kwh: list[float]) -> PoolBuilder:
        """24 values, one per UTC hour."""
        self._spec["carbon"] = {"hourly": list(grams_per_kwh)}
        return self

    def power(self, watts: float, peak_tflops: float | None = None) -> PoolBuilder:
        """Board power (and peak TFLOPS) of the pool's accelerator."""
        self._spec["accelerator"]["watts"] = watts
        if peak_tflops is not None:
            self._spec["accelerator"]["peakTFLOPS"] = peak_tflops
        return self

    def energy(self, utilisation: float = 1.0, pue: float = 1.0) -> PoolBuilder:
        self._spec["energy"] = {"utilisation": utilisation, "pue": pue}
        return self

    def tolerate(
        self, key: str, operator: str = "Exists", effect: str | None = None
    ) -> PoolBuilder:
        toleration: dict[str, Any] = {"key": key, "operator": operator}
        if effect:
            toleration["effect"] = effect
        self._spec.setdefault("tolerations", []).append(toleration)
        return self

    def resource(self, name: str) -> PoolBuilder:
        self._spec["resourceName"] = name
        return self

    def dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "GPUPool",
            "metadata": {"name": self._name},
            "spec": copy.deepcopy(self._spec),
        }

    def obj(self) -> GPUPool:
        return GPUPool.model_validate(self.dict())


class JobBuilder:
    def __init__(self, name: str, namespace: str = "default"):
        self._name = name
        self._namespace = namespace
        self._container: dict[str, Any] = {"name": "trainer", "image": "trainer:1"}
        self._pod_spec: dict[str, Any] = {"containers": [self._container]}
        self._spec: dict[str, Any] = {"workers": 1, "acceleratorsPerWorker": 1}

    def workers(self, count: int) -> JobBuilder:
        self._spec["workers"] = count
        return self

    def gpus(self, count: int) -> JobBuilder:
        """Devices per worker."""
        self._spec["acceleratorsPerWorker"] = count
        return self

    def required(self, level: str) -> JobBuilder:
        self._spec.setdefault("topology", {})["required"] = level
        return self

    def preferred(self, level: str) -> JobBuilder:
        self._spec.setdefault("topology", {})["preferred"] = level
        return self

    def pools(self, *names: str) -> JobBuilder:
        self._spec["pools"] = list(names)
        return self

    def accelerator(self, *types: str, min_memory_gib: float | None = None) -> JobBuilder:
        accelerator: dict[str, Any] = {"types": list(types)}
        if min_memory_gib is not None:
            accelerator["minMemoryGiB"] = min_memory_gib
        self._spec["accelerator"] = accelerator
        return self

    def capacity(self, *types: str, prefer: str | None = None) -> JobBuilder:
        capacity: dict[str, Any] = {"types": list(types)}
        if prefer:
            capacity["prefer"] = prefer
        self._spec["capacity"] = capacity
        return self

    def residency(
        self, jurisdictions: list[str] | None = None, regions: list[str] | None = None
    ) -> JobBuilder:
        self._spec["residency"] = {
            "jurisdictions": jurisdictions or [],
            "regions": regions or [],
        }
        return self

    def requests(self, **quantities: str) -> JobBuilder:
        """Per-container requests of the worker template, e.g. `requests(cpu="8")`."""
        self._container.setdefault("resources", {}).setdefault("requests", {}).update(quantities)
        return self

    def tolerate(self, key: str, operator: str = "Exists", effect: str | None = None) -> JobBuilder:
        toleration: dict[str, Any] = {"key": key, "operator": operator}
        if effect:
            toleration["effect"] = effect
        self._pod_spec.setdefault("tolerations", []).append(toleration)
        return self

    def node_selector(self, **labels: str) -> JobBuilder:
        self._pod_spec["nodeSelector"] = dict(labels)
        return self

    def dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": {
                **copy.deepcopy(self._spec),
                "template": {"spec": copy.deepcopy(self._pod_spec)},
            },
        }

    def obj(self) -> TrainingJob:
        return TrainingJob.model_validate(self.dict())


def node(name: str) -> NodeBuilder:
    return NodeBuilder(name)


def pod(name: str, namespace: str = "default") -> PodBuilder:
    return PodBuilder(name, namespace)


def pool(name: str) -> PoolBuilder:
    return PoolBuilder(name)


def job(name: str, namespace: str = "default") -> JobBuilder:
    return JobBuilder(name, namespace)
