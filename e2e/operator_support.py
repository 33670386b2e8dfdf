"""Support of the controllers' e2e tests: the operator process, per-test pools, job reads."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from corral.localfleet import binaries
from harness import Cluster, ManagedProcess, WaitTimeout, wait_for
from harness.cluster import REPO


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


def render_chart(release: str, namespace: str, *flags: str) -> list[dict[str, Any]]:
    """`helm template` of charts/corral (flags such as `--set k=v`), as parsed objects."""
    helm = binaries.ensure(only=["helm"], log=lambda _: None)["helm"]
    chart = REPO / "charts" / "corral"
    out = subprocess.run(
        [str(helm), "template", release, str(chart), "--namespace", namespace, *flags],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def start_prometheus(
    spawn: Callable[..., ManagedProcess],
    tmp_path: Path,
    target_port: int,
    *,
    job: str = "corral",
    target_labels: dict[str, str] | None = None,
    rule_files: Sequence[Path] = (),
) -> str:
    """A real Prometheus scraping the operator every second (and evaluating `rule_files` every
    second); returns its base URL."""
    url, _ = prometheus_process(
        spawn, tmp_path, target_port, job=job, target_labels=target_labels, rule_files=rule_files
    )
    return url


def prometheus_process(
    spawn: Callable[..., ManagedProcess],
    tmp_path: Path,
    target_port: int,
    *,
    job: str = "corral",
    target_labels: dict[str, str] | None = None,
    rule_files: Sequence[Path] = (),
) -> tuple[str, ManagedProcess]:
    """`start_prometheus`, also returning the process (a test that stops Prometheus)."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: `make prometheus` installs it"
    config = tmp_path / "prometheus.yml"
    target: dict[str, Any] = {"targets": [f"127.0.0.1:{target_port}"]}
    if target_labels:
        target["labels"] = target_labels
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(path) for path in rule_files],
                "scrape_configs": [
                    {"job_name": job, "honor_labels": True, "static_configs": [target]}
                ],
            }
        )
    )
    port = free_port()
    process = spawn(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        name="prometheus",
    )
    process.wait_for_log(r"Server is ready to receive web requests", timeout=60)
    return f"http://127.0.0.1:{port}", process


def prometheus_api(base: str, path: str, **params: str) -> Any:
    """GET /api/v1/<path>; asserts Prometheus answered success and returns `data`."""
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def query(base: str, promql: str) -> list[dict[str, Any]]:
    return list(prometheus_api(base, "query", query=promql)["result"])


MakePool = Callable[..., str]


def ignore_404(call: Callable[[], Any]) -> None:
    try:
        call()
    except client.ApiException as exc:
        if exc.status != 404:
            raise


PRIORITY_CLASSES = {"low": 1000, "high": 100000}
"""PriorityClasses e2e tests put pods in: e2e-reservations-<name> (no class is priority 0)."""


def ensure_priority_classes(cluster: Cluster) -> None:
    scheduling = client.SchedulingV1Api(cluster.api)
    for name, value in PRIORITY_CLASSES.items():
        body: Any = {
            "metadata": {"name": f"e2e-reservations-{name}"},
            "value": value,
            "description": "e2e: priority relations of nominated pods",
        }
        try:
            scheduling.create_priority_class(body)
        except client.ApiException as exc:
            if exc.status != 409:
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


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when there are none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:3000]
