"""`corral fleet interrupt` and `replay-spot` on the real control plane: each source's signal lands
on the node as Corral's notice reader expects, then the node and its pods are reclaimed; a spot
trace makes nodes leave and come back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from corral.disruption import notices
from corral.localfleet import cluster as fleet
from corral.localfleet import fleetfile, interrupt
from harness import Cluster, wait_for
from harness.cluster import REPO

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CORRAL_KUBECONFIG")),
    reason="deletes and recreates nodes of the local fleet; CORRAL_KUBECONFIG points elsewhere",
)


def _fleet_file() -> Path:
    path = Path(os.environ.get("CORRAL_E2E_FLEET") or REPO / "e2e" / "fleets" / "tiny.yaml")
    return path if path.is_absolute() else REPO / path


@pytest.fixture
def hosts(cluster: Cluster) -> Iterator[list[str]]:
    """The fleet's hosts; every one of them is back and Ready after the test."""
    names = [h.name for h in fleetfile.hosts(fleetfile.load(_fleet_file()))]
    yield names
    assert cluster.fleet_name
    fleet.up(_fleet_file(), cluster.fleet_name, log=lambda _: None, ready_timeout=120)


def _node(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        response = cluster.core.read_node(name, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    body: dict[str, Any] = json.loads(response.data)
    return body


def _pod(cluster: Cluster, namespace: str, name: str, node: str) -> None:
    cluster.core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "main", "image": "registry.example/trainer:1"}],
                "terminationGracePeriodSeconds": 0,
            },
        },
    )


def _pod_gone(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        cluster.core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        return exc.status == 404
    return False


def _corral(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral", "fleet", *args, "--name", str(cluster.fleet_name)],
        cwd=REPO,
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _noticed_as(cluster: Cluster, node: str, source: str) -> bool:
    body = _node(cluster, node)
    if body is None:
        return False
    found = notices.node_notices(body)
    return any(x.source == interrupt.READ_AS[source] for x in found.notices) and not found.problems


def test_each_source_signal_is_read_as_that_source_then_reclaimed(
    cluster: Cluster, namespace: str, hosts: list[str]
) -> None:
    """The functions behind `corral fleet interrupt`, one source per node, on the real API."""
    sources = list(interrupt.SOURCES)
    rounds = [sources[i : i + len(hosts)] for i in range(0, len(sources), len(hosts))]
    for batch in rounds:
        pairs = list(zip(batch, hosts, strict=False))
        with_pods = [s for s, _ in pairs if s in ("aws", "kubelet")]  # enough to see pods go
        for source, node in pairs:
            if source in with_pods:
                _pod(cluster, namespace, f"worker-{source}", node)
        for source in with_pods:
            wait_for(
                lambda s=source: (
                    cluster.core.read_namespaced_pod(f"worker-{s}", namespace).status.phase
                    == "Running"
                ),
                timeout=60,
                message=f"pod of {source} running",
            )
        for source, node in pairs:
            interrupt.notify(cluster.api, node, source, 120, datetime.now(UTC))
            assert _noticed_as(cluster, node, source), _node(cluster, node)
            if source == "kubelet":
                pod = cluster.api.sanitize_for_serialization(
                    cluster.core.read_namespaced_pod(f"worker-{source}", namespace)
                )
                assert notices.pod_notices(pod).notices, pod["status"]
            # Pods other tests left on the node go too: count at least ours.
            assert interrupt.reclaim(cluster.api, node) >= (source in with_pods)
            assert _node(cluster, node) is None
            if source in with_pods:
                wait_for(
                    lambda s=source: _pod_gone(cluster, namespace, f"worker-{s}"),
                    timeout=60,
                    message=f"pod of {source} deleted",
                )
        fleet.up(_fleet_file(), str(cluster.fleet_name), log=lambda _: None, ready_timeout=120)


def test_interrupt_command_notices_then_reclaims(cluster: Cluster, hosts: list[str]) -> None:
    node = hosts[-1]
    process = _corral(cluster, "interrupt", node, "--source", "gke", "--notice", "1s")
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert f"node {node}: gke notice set (taint {notices.GKE_IMPENDING_TERMINATION})" in err
    assert f"node {node}: reclaimed (0 pod(s) deleted, node deleted)" in err
    assert _node(cluster, node) is None
    missing = _corral(cluster, "interrupt", node, "--notice", "1s")
    _, err = missing.communicate(timeout=180)
    assert missing.returncode == 2 and f"node {node} not found" in err


def test_replay_spot_takes_nodes_away_and_brings_them_back(
    cluster: Cluster, hosts: list[str], tmp_path: Path
) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": 60}, "data": [1, 0, 1]}))
    chosen = hosts[:2]
    process = _corral(
        cluster,
        "replay-spot",
        "--trace",
        str(trace),
        "--speed",
        "60",
        "--notice",
        "0.5s",
        "--source",
        "karpenter",
        "--nodes",
        ",".join(chosen),
    )
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert f"tick 1: karpenter notice on 2 node(s): {', '.join(chosen)}" in err
    assert f"tick 1: reclaimed {', '.join(chosen)}" in err
    assert f"tick 2: 2 spot node(s) back: {', '.join(chosen)}" in err
    for name in chosen:
        body = _node(cluster, name)
        assert body is not None and not notices.node_notices(body).notices
