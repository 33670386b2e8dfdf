"""Corral's CRDs against a real kube-apiserver: they apply, the samples are accepted, malformed
objects are refused with a message naming the field (OpenAPI schema or CEL rule), printer columns
show in `kubectl get`, and the status and scale subresources work."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import Cluster, Kubectl, KubectlError, wait_for
from harness.cluster import REPO

GROUP, VERSION = "corral.dev", "v1alpha1"
EXAMPLES = {
    "GPUPool": REPO / "examples" / "gpupool-h100.yaml",
    "TrainingJob": REPO / "examples" / "trainingjob-llama.yaml",
    "InferenceService": REPO / "examples" / "inferenceservice-chat.yaml",
}
PLURAL = {
    "GPUPool": "gpupools",
    "TrainingJob": "trainingjobs",
    "InferenceService": "inferenceservices",
}
DELETE = object()
"""A mutation value that removes the field."""


def _sample(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    obj = yaml.safe_load(EXAMPLES[kind].read_text())
    obj["metadata"] = {"name": name}
    if namespace and kind != "GPUPool":
        obj["metadata"]["namespace"] = namespace
    return dict(obj)


def _mutate(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


def test_every_crd_applies_and_is_established(cluster: Cluster, kubectl: Kubectl) -> None:
    files = sorted((REPO / "crds").glob("*.yaml"))
    assert len(files) == 3
    out = kubectl.apply(REPO / "crds")  # the session already applied them: a re-apply is a no-op
    assert out.count("unchanged") == len(files), out
    for crd in cluster.apiextensions.list_custom_resource_definition(
        label_selector="app.kubernetes.io/part-of=corral"
    ).items:
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions.get("Established") == "True", crd.metadata.name
        assert conditions.get("NamesAccepted") == "True", crd.metadata.name


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_are_accepted(kubectl: Kubectl, namespace: str, path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        document["metadata"].pop("namespace", None)
        if document["kind"] == "GPUPool":
            document["metadata"]["name"] = f"{namespace}-{document['metadata']['name']}"
    manifest = yaml.safe_dump_all(documents)
    try:
        created = kubectl("create", "-n", namespace, "-f", "-", "-o", "json", input=manifest)
        parsed = json.loads(created)
        items = parsed.get("items", [parsed])
        assert [i["kind"] for i in items] == [d["kind"] for d in documents]
        for item, document in zip(items, documents, strict=True):
            for key, value in document["spec"].items():
                if key != "template":
                    assert item["spec"][key] == _defaults_kept(value, item["spec"][key]), key
    finally:
        for document in documents:
            if document["kind"] == "GPUPool":
                kubectl.run(
                    "delete", "gpupool", document["metadata"]["name"], "--wait=false", check=False
                )


def _defaults_kept(sent: Any, stored: Any) -> Any:
    """What the API server stored, given what was sent: the same, plus schema defaults inside."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return {**stored, **{k: _defaults_kept(v, stored.get(k)) for k, v in sent.items()}}
    return sent


# (kind, id, changes to the sample, fragments the API server's message must contain)
MALFORMED: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    # GPUPool
    ("GPUPool", "no-accelerator", {"spec.accelerator": DELETE}, ("spec.accelerator", "Required value")),
    ("GPUPool", "no-node-selector", {"spec.nodeSelector": DELETE}, ("spec.nodeSelector", "Required value")),
    ("GPUPool", "zero-memory", {"spec.accelerator.memoryGiB": 0}, ("spec.accelerator.memoryGiB", "greater than 0")),
    ("GPUPool", "type-with-space", {"spec.accelerator.type": "H100 80GB"}, ("spec.accelerator.type", "should match")),
    ("GPUPool", "huge-watts", {"spec.accelerator.watts": 200000}, ("spec.accelerator.watts", "less than or equal to 100000")),
    ("GPUPool", "capacity-type", {"spec.capacityType": "preemptible"}, ("spec.capacityType", "Unsupported value")),
    ("GPUPool", "resource-name", {"spec.resourceName": "Nvidia GPU"}, ("spec.resourceName", "should match")),
    ("GPUPool", "repeated-level", {"spec.topology.levels": ["kubernetes.io/hostname", "kubernetes.io/hostname"]}, ("spec.topology.levels", "must not repeat a level")),
    ("GPUPool", "no-levels", {"spec.topology.levels": []}, ("spec.topology.levels", "at least 1 items")),
    ("GPUPool", "currency", {"spec.pricing.currency": "usd"}, ("spec.pricing.currency", "should match")),
    ("GPUPool", "negative-price", {"spec.pricing.onDemandPerDeviceHour": -1}, ("spec.pricing.onDemandPerDeviceHour", "greater than or equal to 0")),
    ("GPUPool", "carbon-hours", {"spec.carbon.hourly": [100, 200, 300]}, ("spec.carbon.hourly", "at least 24 items")),
    ("GPUPool", "in-without-values", {"spec.nodeSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, ("spec.nodeSelector.matchExpressions[0].values", "values must be non-empty")),
    ("GPUPool", "toleration-effect", {"spec.tolerations": [{"key": "a", "effect": "Sometimes"}]}, ("spec.tolerations[0].effect", "Unsupported value")),
    ("GPUPool", "unknown-field", {"spec.acelerator": {"type": "x"}}, ('unknown field "spec.acelerator"',)),
    # TrainingJob
    ("TrainingJob", "zero-workers", {"spec.workers": 0}, ("spec.workers", "greater than or equal to 1")),
    ("TrainingJob", "no-workers", {"spec.workers": DELETE}, ("spec.workers", "Required value")),
    ("TrainingJob", "no-template", {"spec.template": DELETE}, ("spec.template", "Required value")),
    ("TrainingJob", "no-containers", {"spec.template": {"spec": {"containers": []}}}, ("spec.template.spec.containers", "at least 1 items")),
    ("TrainingJob", "too-many-gpus", {"spec.acceleratorsPerWorker": 2000}, ("spec.acceleratorsPerWorker", "less than or equal to 1024")),
    ("TrainingJob", "capacity-type", {"spec.capacity": {"types": ["preemptible"]}}, ("spec.capacity.types[0]", "Unsupported value")),
    ("TrainingJob", "prefer-not-allowed", {"spec.capacity": {"types": ["on-demand"], "prefer": "spot"}}, ("spec.capacity.prefer", "capacity.prefer must be one of capacity.types")),
    ("TrainingJob", "preferred-broader", {"spec.topology": {"required": "network.corral.dev/rack", "preferred": "network.corral.dev/block"}}, ("spec.topology.preferred", "narrower level")),
    ("TrainingJob", "two-hooks", {"spec.checkpoint.hook": {"annotation": {}, "httpGet": {"port": 8080}}}, ("spec.checkpoint.hook", "exactly one of annotation or httpGet")),
    ("TrainingJob", "hook-port", {"spec.checkpoint.hook": {"httpGet": {"port": 70000}}}, ("spec.checkpoint.hook.httpGet.port", "less than or equal to 65535")),
    ("TrainingJob", "zero-timeout", {"spec.checkpoint.timeoutSeconds": 0}, ("spec.checkpoint.timeoutSeconds", "greater than or equal to 1")),
    ("TrainingJob", "deadline", {"spec.deadline": "next tuesday"}, ("spec.deadline", "date-time")),
    ("TrainingJob", "zero-budget", {"spec.budget": {"deviceHours": 0}}, ("spec.budget.deviceHours", "greater than 0")),
    ("TrainingJob", "pool-name", {"spec.pools": ["H100_Pool"]}, ("spec.pools[0]", "should match")),
    ("TrainingJob", "priority", {"spec.priority": 2000000}, ("spec.priority", "less than or equal to 1000000")),
    ("TrainingJob", "priority-deprecated", {"spec.priority": 5}, ("spec.priority", "set spec.priorityClassName")),
    ("TrainingJob", "template-priority-class", {"spec.template.spec.priorityClassName": "x"}, ("spec.template.spec.priorityClassName", "set the workload's spec.priorityClassName")),
    # The hostile tenant of issue 9: refused by the API server before the operator sees them.
    ("TrainingJob", "tolerations-map", {"spec.template.spec.tolerations": {"key": "x"}}, ("spec.template.spec.tolerations",)),
    ("TrainingJob", "node-selector-int", {"spec.template.spec.nodeSelector": {"a": 1}}, ("spec.template.spec.nodeSelector.a", "must be of type string")),
    ("TrainingJob", "env-number", {"spec.template.spec.containers": [{"name": "t", "image": "i", "env": 5}]}, ("spec.template.spec.containers[0].env", "must be of type array")),
    ("TrainingJob", "cpu-exponent", {"spec.template.spec.containers": [{"name": "t", "image": "i", "resources": {"requests": {"cpu": "1e999999999"}}}]}, ("spec.template.spec.containers[0].resources.requests.cpu", "should match")),
    ("TrainingJob", "node-name", {"spec.template.spec.nodeName": "h01"}, ("spec.template.spec.nodeName", "Corral chooses each worker's node")),
    ("TrainingJob", "long-name", {"metadata.name": "j" * 64}, ("metadata.name", "at most 63 characters")),
    ("TrainingJob", "too-many-containers", {"spec.template.spec.containers": [{"name": f"c{i}", "image": "i"} for i in range(33)]}, ("spec.template.spec.containers", "must have at most 32 items")),
    ("GPUPool", "price-1e308", {"spec.pricing.onDemandPerDeviceHour": 1e308}, ("spec.pricing.onDemandPerDeviceHour", "less than or equal to 1e+06")),
    ("GPUPool", "long-name", {"metadata.name": "p" * 64}, ("metadata.name", "at most 63 characters")),
    # Bounds (issue 9): maps, lists, quantities and numbers, as the API server states them.
    ("TrainingJob", "selector-65-labels", {"spec.template.spec.nodeSelector": {f"k{i}": "v" for i in range(65)}}, ("spec.template.spec.nodeSelector", "must have at most 64 items")),
    ("TrainingJob", "env-513", {"spec.template.spec.containers": [{"name": "t", "image": "i", "env": [{"name": f"E{i}"} for i in range(513)]}]}, ("spec.template.spec.containers[0].env", "must have at most 512 items")),
    ("TrainingJob", "quantity-65-chars", {"spec.template.spec.containers": [{"name": "t", "image": "i", "resources": {"limits": {"cpu": "1" * 65}}}]}, ("spec.template.spec.containers[0].resources.limits.cpu", "Too long")),
    ("TrainingJob", "budget-cost-max", {"spec.budget": {"cost": 1e13}}, ("spec.budget.cost", "less than or equal to 1000000000000")),
    ("GPUPool", "tolerations-33", {"spec.tolerations": [{"key": f"k{i}", "operator": "Exists"} for i in range(33)]}, ("spec.tolerations", "must have at most 32 items")),
    ("InferenceService", "long-name", {"metadata.name": "s" * 64}, ("metadata.name", "at most 63 characters")),
    # InferenceService
    ("InferenceService", "no-size", {"spec.autoscaling": DELETE}, ("spec", "set spec.replicas or spec.autoscaling")),
    ("InferenceService", "min-over-max", {"spec.autoscaling.minReplicas": 9}, ("spec.autoscaling.minReplicas", "minReplicas must be <= autoscaling.maxReplicas")),
    ("InferenceService", "zero-max", {"spec.autoscaling.maxReplicas": 0}, ("spec.autoscaling.maxReplicas", "greater than or equal to 1")),
    ("InferenceService", "no-slo", {"spec.autoscaling.slo": DELETE}, ("spec.autoscaling", "autoscaling needs slo or at least one objective")),
    ("InferenceService", "zero-latency", {"spec.autoscaling.slo.latencyMs": 0}, ("spec.autoscaling.slo.latencyMs", "greater than 0")),
    ("InferenceService", "percentile-100", {"spec.autoscaling.slo.percentile": 100}, ("spec.autoscaling.slo.percentile", "less than 100")),
    ("InferenceService", "negative-replicas", {"spec.replicas": -1}, ("spec.replicas", "greater than or equal to 0")),
    ("InferenceService", "zero-gpus", {"spec.acceleratorsPerReplica": 0}, ("spec.acceleratorsPerReplica", "greater than or equal to 1")),
    ("InferenceService", "no-containers", {"spec.template": {"spec": {}}}, ("spec.template.spec.containers", "Required value")),
    ("InferenceService", "prefer-not-allowed", {"spec.capacity": {"types": ["spot"], "prefer": "on-demand"}}, ("spec.capacity.prefer", "capacity.prefer must be one of capacity.types")),
    ("InferenceService", "prometheus-url", {"spec.autoscaling.metrics.prometheus.url": "prometheus:9090"}, ("spec.autoscaling.metrics.prometheus.url", "should match")),
    ("InferenceService", "scale-down-rate", {"spec.autoscaling.behavior.maxScaleDownRate": 2}, ("spec.autoscaling.behavior.maxScaleDownRate", "less than or equal to 1")),
    ("InferenceService", "port", {"spec.port": 0}, ("spec.port", "greater than or equal to 1")),
]  # fmt: skip


def test_at_least_ten_malformed_objects_per_kind() -> None:
    for kind in EXAMPLES:
        assert sum(1 for k, *_ in MALFORMED if k == kind) >= 10, kind


@pytest.mark.parametrize(
    ("kind", "changes", "fragments"),
    [
        pytest.param(kind, changes, fragments, id=f"{kind}-{case}")
        for kind, case, changes, fragments in MALFORMED
    ],
)
def test_malformed_object_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, kind: str, changes: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    obj = _mutate(_sample(kind, "malformed", namespace), changes)
    with pytest.raises(KubectlError) as refused:
        kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj))
    message = refused.value.stderr
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def _columns(kubectl: Kubectl, *args: str) -> dict[str, str]:
    header, row = kubectl("get", *args, "-o", "wide").splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    bounds = [*starts[1:], None]
    return {
        header[start:end].strip(): row[start:end].strip()
        for start, end in zip(starts, bounds, strict=True)
    }


def test_printer_columns_and_status_subresource(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    job = _sample("TrainingJob", "llama", namespace)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)
    status = {
        "phase": "Running",
        "placement": {
            "pool": "h100",
            "level": "network.corral.dev/block",
            "domain": "eu-west-1a-b1",
            "nodes": [],
        },
        "restarts": 2,
        "deviceHours": 12.5,
        "cost": 18.75,
    }
    kubectl(
        "patch",
        "tj",
        "llama",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    columns = _columns(kubectl, "tj", "llama", "-n", namespace)
    assert columns["PHASE"] == "Running"
    assert columns["WORKERS"] == "4"
    assert columns["GPUS/W"] == "8"
    assert columns["POOL"] == "h100"
    assert columns["DOMAIN"] == "eu-west-1a-b1"
    assert columns["RESTARTS"] == "2"

    stored = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", "llama"
    )
    assert stored["metadata"]["generation"] == 1, "a status write must not bump the generation"
    # Through the main resource, status is ignored (and spec is not, generation moves).
    stored["status"]["phase"] = "Failed"
    stored["spec"]["workers"] = 2
    cluster.custom.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", "llama", stored
    )
    after = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", "llama"
    )
    assert after["status"]["phase"] == "Running"
    assert (after["spec"]["workers"], after["metadata"]["generation"]) == (2, 2)

    pool = _sample("GPUPool", f"{namespace}-pool", None)
    cluster.custom.create_cluster_custom_object(GROUP, VERSION, "gpupools", pool)
    try:
        pool_status = {
            "nodes": 4,
            "readyNodes": 3,
            "devices": {"capacity": 32, "allocatable": 32, "allocated": 8, "free": 24},
            "fragmentation": 0.25,
        }
        kubectl(
            "patch",
            "gp",
            pool["metadata"]["name"],
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": pool_status}),
        )
        columns = _columns(kubectl, "gp", pool["metadata"]["name"])
        assert (columns["ACCELERATOR"], columns["NODES"], columns["READY"]) == (
            "H100-80GB",
            "4",
            "3",
        )
        assert (columns["DEVICES"], columns["FREE"], columns["FRAG"], columns["CAPACITY"]) == (
            "32",
            "24",
            "0.25",
            "auto",
        )
    finally:
        kubectl.run("delete", "gp", pool["metadata"]["name"], "--wait=false", check=False)


def test_inference_service_scale_subresource(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    service = _mutate(_sample("InferenceService", "chat", namespace), {"spec.replicas": 2})
    cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferenceservices", service
    )
    status = {
        "replicas": 2,
        "readyReplicas": 2,
        "desiredReplicas": 2,
        "selector": "app.kubernetes.io/instance=chat",
        "observedLatencyMs": 120.0,
    }
    kubectl(
        "patch",
        "cis",
        "chat",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )

    kubectl("scale", "cis", "chat", "-n", namespace, "--replicas=5")
    stored = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferenceservices", "chat"
    )
    assert stored["spec"]["replicas"] == 5
    scale = kubectl.json("get", "cis", "chat", "-n", namespace, "--subresource=scale")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 5
    assert scale["status"] == {"replicas": 2, "selector": "app.kubernetes.io/instance=chat"}

    columns = _columns(kubectl, "cis", "chat", "-n", namespace)
    assert (columns["REPLICAS"], columns["READY"], columns["DESIRED"], columns["LATENCY-MS"]) == (
        "2",
        "2",
        "2",
        "120",
    )

    # kubectl scale respects the schema too.
    with pytest.raises(KubectlError) as refused:
        kubectl("scale", "cis", "chat", "-n", namespace, "--replicas=20000")
    assert "spec.replicas" in refused.value.stderr
    wait_for(
        lambda: (
            cluster.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "inferenceservices", "chat"
            )["spec"]["replicas"]
            == 5
        ),
        message="replicas unchanged after a refused scale",
    )
