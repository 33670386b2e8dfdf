"""Support of the controllers' e2e tests: the operator process, per-test pools, job reads."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness import Cluster, ManagedProcess, WaitTimeout, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningOperator:
    process: ManagedProcess
    metrics_port: int

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as answer:
            return str(answer.read().decode())


StartOperator = Callable[[], RunningOperator]


MakePool = Callable[..., str]


def ignore_404(call: Callable[[], Any]) -> None:
    try:
        call()
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def node_ready(cluster: Cluster, name: str) -> bool:
    node = cluster.core.read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def short(name: str) -> str:
    """A test node's name without the test prefix (`e2e-...-0-h1` -> `h1`)."""
    return name.rsplit("-", 1)[-1]


class Jobs:
    """Reads of TrainingJobs and their pods, as dicts."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster = cluster
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> None:
        self.cluster.custom.create_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", body
        )

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.cluster.custom.get_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", name
        )
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.status(name).get("conditions") or [] if c["type"] == type_), None
        )

    def patch_spec(self, name: str, **fields: Any) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", name, {"spec": fields}
        )

    def delete(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", name
        )

    def pods(self, name: str) -> list[dict[str, Any]]:
        out = self.cluster.kubectl.json(
            "get", "pods", "-n", self.namespace, "-l", f"corral.dev/job={name}"
        )
        return list(out["items"])

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for a phase; on timeout the error shows the job's last status."""
        try:
            result: dict[str, Any] = wait_for(
                lambda: (s := self.status(name)).get("phase") == phase and s,
                timeout=timeout,
                message=f"TrainingJob {name} phase {phase}",
            )
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\nlast status: {dumps(self.status(name))}") from None
        return result

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.cluster.kubectl.json(
            "get", "events", "-n", self.namespace, "--field-selector", f"involvedObject.name={name}"
        )
        return list(out["items"])

    def event_reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events(name)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:3000]
