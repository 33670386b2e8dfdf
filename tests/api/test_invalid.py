"""Invalid objects are refused with the path of the field at fault and what to do about it."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.objects import DELETE, breaking, minimal

from corral.api import InvalidObject, parse_object

# (kind, dotted path, bad value or DELETE, expected fragment of the message)
CASES: list[tuple[str, str, Any, str]] = [
    # GPUPool
    ("GPUPool", "spec.nodeSelector", DELETE, "spec.nodeSelector: required"),
    ("GPUPool", "spec.accelerator", DELETE, "spec.accelerator: required"),
    ("GPUPool", "spec.accelerator.memoryGiB", 0, "spec.accelerator.memoryGiB: must be > 0"),
    ("GPUPool", "spec.accelerator.type", "", "spec.accelerator.type: must have at least 1"),
    ("GPUPool", "spec.capacityType", "preemptible", "spec.capacityType: must be one of"),
    ("GPUPool", "spec.resourceName", "Nvidia GPU", "spec.resourceName: must match the pattern"),
    ("GPUPool", "spec.topology.levels", [], "spec.topology.levels: must have at least 1 item"),
    (
        "GPUPool",
        "spec.topology.levels",
        ["a/rack", "a/rack"],
        "spec.topology.levels: 'a/rack' is listed twice",
    ),
    (
        "GPUPool",
        "spec.topology.levels",
        ["not a label"],
        "spec.topology.levels[0]: 'not a label' is not a valid label key",
    ),
    (
        "GPUPool",
        "spec.pricing",
        {"onDemandPerDeviceHour": -1},
        "spec.pricing.onDemandPerDeviceHour: must be >= 0",
    ),
    (
        "GPUPool",
        "spec.pricing",
        {"currency": "dollars"},
        "spec.pricing.currency: must match the pattern",
    ),
    (
        "GPUPool",
        "spec.nodeSelector",
        {"matchExpressions": [{"key": "a", "operator": "In"}]},
        "spec.nodeSelector.matchExpressions[0].values: must be non-empty",
    ),
    (
        "GPUPool",
        "spec.nodeSelector",
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        "spec.nodeSelector.matchExpressions[0].values: must be empty",
    ),
    (
        "GPUPool",
        "spec.carbon",
        {"hourly": [1, 2]},
        "spec.carbon.hourly: must have at least 24 item",
    ),
    ("GPUPool", "spec.nodeSelectr", {}, "spec.nodeSelectr: unknown field"),
    (
        "GPUPool",
        "spec.pricing",
        {"onDemandPerDeviceHour": 1e308},
        "spec.pricing.onDemandPerDeviceHour: must be <= 1000000",
    ),
    (
        "GPUPool",
        "spec.accelerator.memoryGiB",
        float("nan"),
        "spec.accelerator.memoryGiB: must be a finite number",
    ),
    ("GPUPool", "metadata.name", "p" * 64, "metadata.name: must have at most 63 characters"),
    # TrainingJob
    ("TrainingJob", "spec.workers", 0, "spec.workers: must be >= 1"),
    ("TrainingJob", "spec.workers", "four", "spec.workers: must be an integer"),
    ("TrainingJob", "spec.workers", DELETE, "spec.workers: required"),
    ("TrainingJob", "spec.template", DELETE, "spec.template: required"),
    (
        "TrainingJob",
        "spec.template",
        {"spec": {"containers": []}},
        "spec.template.spec.containers: must list at least one container",
    ),
    (
        "TrainingJob",
        "spec.template",
        {"spec": {"containers": [{"name": "x"}]}},
        "spec.template.spec.containers[0].image: required",
    ),
    ("TrainingJob", "spec.acceleratorsPerWorker", 0, "spec.acceleratorsPerWorker: must be >= 1"),
    (
        "TrainingJob",
        "spec.checkpoint",
        {"timeoutSeconds": 0},
        "spec.checkpoint.timeoutSeconds: must be >= 1",
    ),
    (
        "TrainingJob",
        "spec.checkpoint",
        {"intervalSeconds": -5},
        "spec.checkpoint.intervalSeconds: must be >= 0",
    ),
    (
        "TrainingJob",
        "spec.checkpoint",
        {"hook": {}},
        "spec.checkpoint.hook: needs exactly one of annotation or httpGet",
    ),
    (
        "TrainingJob",
        "spec.checkpoint",
        {"hook": {"annotation": {}, "httpGet": {"port": 80}}},
        "spec.checkpoint.hook: needs exactly one",
    ),
    (
        "TrainingJob",
        "spec.checkpoint",
        {"hook": {"httpGet": {"port": 0}}},
        "spec.checkpoint.hook.httpGet.port: must be >= 1",
    ),
    (
        "TrainingJob",
        "spec.topology",
        {"required": "kubernetes.io/hostname", "preferred": "network.corral.dev/rack"},
        "spec.topology.preferred: 'network.corral.dev/rack' must be a narrower level",
    ),
    (
        "TrainingJob",
        "spec.topology",
        {"required": "x/a", "preferred": "x/a"},
        "spec.topology.preferred",
    ),
    (
        "TrainingJob",
        "spec.capacity",
        {"types": ["spot"], "prefer": "on-demand"},
        "spec.capacity.prefer: 'on-demand' is not in types",
    ),
    (
        "TrainingJob",
        "spec.capacity",
        {"types": []},
        "spec.capacity.types: must have at least 1 item",
    ),
    (
        "TrainingJob",
        "spec.capacity",
        {"types": ["cheap"]},
        "spec.capacity.types[0]: must be one of",
    ),
    ("TrainingJob", "spec.deadline", "next tuesday", "spec.deadline: must be an RFC 3339 time"),
    (
        "TrainingJob",
        "spec.deadline",
        "2026-12-01T00:00:00",
        "spec.deadline: must carry a time zone",
    ),
    ("TrainingJob", "spec.budget", {"deviceHours": 0}, "spec.budget.deviceHours: must be > 0"),
    ("TrainingJob", "spec.maxRestarts", -1, "spec.maxRestarts: must be >= 0"),
    ("TrainingJob", "spec.pools", ["Bad_Name"], "spec.pools[0]: must match the pattern"),
    ("TrainingJob", "spec.suspend", "maybe", "spec.suspend: must be true or false"),
    (
        "TrainingJob",
        "spec.template",
        {
            "spec": {
                "containers": [{"name": "t", "image": "i", "env": [{"name": "RANK", "value": "3"}]}]
            }
        },
        "spec.template.spec.containers[0].env: RANK is set by Corral",
    ),
    ("TrainingJob", "spec.worker", 3, "spec.worker: unknown field"),
    # Reproductions of the hostile tenant (issue 9): each once escaped parse() or the solver.
    (
        "TrainingJob",
        "spec.template.spec.tolerations",
        {"key": "x"},
        "spec.template.spec.tolerations: must be a list",
    ),
    (
        "TrainingJob",
        "spec.template.spec.nodeSelector",
        {"a": 1},
        "spec.template.spec.nodeSelector.a: must be a string",
    ),
    (
        "TrainingJob",
        "spec.template.spec.containers.0.env",
        5,
        "spec.template.spec.containers[0].env: must be a list",
    ),
    (
        "TrainingJob",
        "spec.template.spec.containers.0.resources",
        {"requests": {"cpu": "1e5000"}},
        "spec.template.spec.containers[0].resources.requests.cpu: '1e5000' is not a quantity",
    ),
    (
        "TrainingJob",
        "spec.template.spec.containers.0.resources",
        {"limits": {"nvidia.com/gpu": "1e999999999"}},
        "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]: '1e999999999' is "
        "not a quantity",
    ),
    (
        "TrainingJob",
        "spec.template.spec.containers.0.resources",
        {"requests": {"memory": "10E"}},
        "resources.requests.memory: '10E' is too large for a quantity",
    ),
    ("TrainingJob", "metadata.name", "j" * 64, "metadata.name: must have at most 63 characters"),
    (
        "TrainingJob",
        "spec.template.spec.nodeName",
        "h01",
        "spec.template.spec.nodeName: must not be set",
    ),
    (
        "TrainingJob",
        "spec.template.spec.containers",
        [{"name": f"c{i}", "image": "i"} for i in range(33)],
        "spec.template.spec.containers: must have at most 32 items",
    ),
    (
        "TrainingJob",
        "spec.template.spec.hostNetwork",
        "yes please",
        "spec.template.spec.hostNetwork: must be true or false",
    ),
    ("TrainingJob", "spec.budget", {"cost": float("inf")}, "spec.budget.cost: must be a finite"),
    (
        "TrainingJob",
        "spec.template.metadata",
        {"annotations": {"config": "x" * 256 * 1024}},
        "spec.template: is 262244 bytes as JSON, over the limit of 253952 (248 KiB)",
    ),
    (
        "InferenceService",
        "spec.template.spec.containers.0.env",
        [{"name": f"E{i}", "value": "v" * 1024} for i in range(300)],
        "spec.template: is ",
    ),
    (
        "TrainingJob",
        "spec.template.metadata",
        {"annotations": {"a": "\ud800"}},
        "spec.template: could not be encoded as JSON",
    ),
    # InferenceService
    (
        "InferenceService",
        "spec.replicas",
        DELETE,
        "spec: set replicas (a fixed count) or autoscaling",
    ),
    ("InferenceService", "spec.replicas", -1, "spec.replicas: must be >= 0"),
    ("InferenceService", "spec.template", DELETE, "spec.template: required"),
    (
        "InferenceService",
        "spec.acceleratorsPerReplica",
        0,
        "spec.acceleratorsPerReplica: must be >= 1",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"slo": {"latencyMs": 100}, "minReplicas": 5, "maxReplicas": 2},
        "spec.autoscaling.minReplicas: 5 must be <= maxReplicas 2",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"slo": {"latencyMs": 100, "percentile": 100}},
        "spec.autoscaling.slo.percentile: must be < 100",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"slo": {"latencyMs": 100, "percentile": 0}},
        "spec.autoscaling.slo.percentile: must be > 0",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"slo": {}},
        "spec.autoscaling.slo.latencyMs: required",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"slo": {"latencyMs": 100}, "behavior": {"maxScaleDownRate": 2}},
        "spec.autoscaling.behavior.maxScaleDownRate: must be <= 1",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {
            "slo": {"latencyMs": 100},
            "metrics": {"prometheus": {"url": "prometheus:9090", "histogram": "h"}},
        },
        "spec.autoscaling.metrics.prometheus.url: must match the pattern",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {
            "slo": {"latencyMs": 100},
            "metrics": {"prometheus": {"url": "http://p:9090", "histogram": "bad-name"}},
        },
        "spec.autoscaling.metrics.prometheus.histogram: must match",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"minReplicas": 1},
        "spec.autoscaling: set slo or at least one objective",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {
            "slo": {"latencyMs": 100},
            "objectives": [{"name": "slo", "histogram": "h", "latencyMs": 50}],
        },
        "spec.autoscaling.objectives: name 'slo' is used twice",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"objectives": [{"name": "ttft", "histogram": "h", "latencyMs": 50, "type": "TTFT"}]},
        "spec.autoscaling.objectives[0].type: must be one of",
    ),
    (
        "InferenceService",
        "spec.autoscaling",
        {"objectives": [{"name": "TTFT", "histogram": "h", "latencyMs": 50}]},
        "spec.autoscaling.objectives[0].name: must match the pattern",
    ),
    ("InferenceService", "spec.port", 70000, "spec.port: must be <= 65535"),
    (
        "InferenceService",
        "spec.residency",
        {"jurisdictions": [""]},
        "spec.residency.jurisdictions[0]: must have at least 1 character",
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    CASES,
    ids=[f"{kind}:{path}:{expected[:40]}" for kind, path, _, expected in CASES],
)
def test_invalid_object_names_the_field(kind: str, path: str, value: Any, expected: str) -> None:
    doc = breaking(minimal(kind), path, value)
    with pytest.raises(InvalidObject) as caught:
        parse_object(doc)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("kind", ["GPUPool", "TrainingJob", "InferenceService"])
def test_at_least_ten_cases_per_kind(kind: str) -> None:
    assert sum(1 for case in CASES if case[0] == kind) >= 10


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([1, 2], "expected a Kubernetes object"),
        (
            {"kind": "Deployment", "apiVersion": "apps/v1"},
            "kind: 'Deployment' is not a Corral kind",
        ),
        (
            {"kind": "TrainingJob", "apiVersion": "corral.dev/v2"},
            "apiVersion: expected corral.dev/v1alpha1",
        ),
    ],
)
def test_not_a_corral_object(doc: Any, expected: str) -> None:
    with pytest.raises(InvalidObject, match=expected):
        parse_object(doc)
