"""Fixtures of the controllers' e2e tests: the operator as a real process, per-test pools."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from builders import NodeBuilder, gpupool
from harness import Cluster, ManagedProcess, wait_for
from operator_support import (
    Jobs,
    MakePool,
    RunningOperator,
    StartOperator,
    free_port,
    ignore_404,
    node_ready,
)


@pytest.fixture
def start_operator(spawn: Callable[..., ManagedProcess]) -> StartOperator:
    """Start `corral run` against the cluster; returns once its cache is seeded."""

    def start() -> RunningOperator:
        metrics_port, health_port = free_port(), free_port()
        process = spawn(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                f"--metrics-port={metrics_port}",
                f"--health-port={health_port}",
            ],
            name="corral",
        )
        process.wait_for_log(r"cache seeded", timeout=60)
        return RunningOperator(process, metrics_port)

    return start


@pytest.fixture
def operator(start_operator: StartOperator) -> RunningOperator:
    return start_operator()


@pytest.fixture
def make_pool(cluster: Cluster, namespace: str) -> Iterator[MakePool]:
    """make_pool(nodes, levels=None) -> the name of a GPUPool over freshly created kwok nodes.
    Node names get the test namespace as a prefix; everything is deleted after the test."""
    created_nodes: list[str] = []
    created_pools: list[str] = []

    def make(nodes: list[NodeBuilder], levels: list[str] | None = None) -> str:
        tag = f"{namespace}-{len(created_pools)}"
        for builder in nodes:
            body = builder.pool(tag).obj()
            body["metadata"]["name"] = f"{tag}-{body['metadata']['name']}"
            body["metadata"]["labels"]["kubernetes.io/hostname"] = body["metadata"]["name"]
            cluster.core.create_node(body)
            created_nodes.append(body["metadata"]["name"])
        cluster.custom.create_cluster_custom_object(
            "corral.dev", "v1alpha1", "gpupools", gpupool(tag, tag, levels)
        )
        created_pools.append(tag)
        wait_for(
            lambda: all(node_ready(cluster, name) for name in created_nodes),
            timeout=60,
            message="test nodes Ready",
        )
        return tag

    yield make
    for name in created_pools:
        ignore_404(
            lambda name=name: cluster.custom.delete_cluster_custom_object(
                "corral.dev", "v1alpha1", "gpupools", name
            )
        )
    for name in created_nodes:
        ignore_404(lambda name=name: cluster.core.delete_node(name))


@pytest.fixture
def jobs(cluster: Cluster, namespace: str) -> Jobs:
    return Jobs(cluster, namespace)
