"""kwok stages and the kwokctl configuration the fleet runs with."""

from __future__ import annotations

from pathlib import Path

import yaml

from corral.localfleet import binaries, cluster, stages


def test_every_stage_is_a_kwok_stage_with_a_unique_name() -> None:
    parsed = [yaml.safe_load(text) for text in stages.ALL]
    assert all(s["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and s["kind"] == "Stage" for s in parsed)
    names = [s["metadata"]["name"] for s in parsed]
    assert len(names) == len(set(names))
    assert {"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-delete"} <= set(names)


def test_exit_code_stages_select_running_pods_by_annotation() -> None:
    for text, operator, phase in (
        (stages.POD_EXIT_SUCCEEDED, "In", "Succeeded"),
        (stages.POD_EXIT_FAILED, "NotIn", "Failed"),
    ):
        stage = yaml.safe_load(text)
        expressions = stage["spec"]["selector"]["matchExpressions"]
        keyed = [e for e in expressions if stages.EXIT_CODE_ANNOTATION in e["key"]]
        assert {e["operator"] for e in keyed} == {"Exists", operator}
        assert {"key": ".status.phase", "operator": "In", "values": ["Running"]} in expressions
        template = stage["spec"]["next"]["statusTemplate"]
        assert f"phase: {phase}" in template
        assert "exitCode: {{ $code }}" in template


def test_kwokctl_config_uses_local_binaries_on_loopback() -> None:
    fake = binaries.Binaries(
        {t.name: binaries.Found(Path("/cache") / t.name, "cache") for t in binaries.TOOLS}
    )
    documents = list(yaml.safe_load_all(cluster.kwokctl_config(fake)))
    config = documents[0]
    assert config["kind"] == "KwokctlConfiguration"
    options = config["options"]
    assert options["runtime"] == "binary"
    assert options["bindAddress"] == "127.0.0.1"
    assert options["kubeApiserverBinary"] == "/cache/kube-apiserver"
    assert options["etcdBinary"] == "/cache/etcd"
    assert options["kwokControllerBinary"] == "/cache/kwok"
    args = {a["key"]: a["value"] for a in config["componentsPatches"][0]["extraArgs"]}
    assert args == {
        "manage-all-nodes": "false",
        "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
    }
    assert [d["kind"] for d in documents[1:]] == ["Stage"] * len(stages.ALL)


def test_ports_are_fixed_at_creation_and_free() -> None:
    ports = cluster.free_ports(len(cluster.PORT_OPTIONS))
    assert len(set(ports)) == len(ports) and all(20000 <= p < 32700 for p in ports)
    fake = binaries.Binaries(
        {t.name: binaries.Found(Path("/cache") / t.name, "cache") for t in binaries.TOOLS}
    )
    chosen = dict(zip(cluster.PORT_OPTIONS, ports, strict=True))
    options = next(yaml.safe_load_all(cluster.kwokctl_config(fake, chosen)))["options"]
    assert {k: options[k] for k in cluster.PORT_OPTIONS} == chosen
