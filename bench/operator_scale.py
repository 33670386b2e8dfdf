"""Operator figures on the 2,000-node scale fleet (issue 5), each against a baseline run here.

    .venv/bin/python bench/operator_scale.py                 # 10 gang runs, 200 jobs, 60 s of churn
    .venv/bin/python bench/operator_scale.py --runs 3 --jobs 50 --churn-seconds 20   # quicker

1. Gang start: a 64-worker x 8-GPU TrainingJob (topology.required: block) from create to all 64
   workers Running, p50/p90 over --runs runs; the share spent in Corral's solver (from the
   operator's own corral_placement_seconds) vs. the rest (API writes, kube-scheduler, kwok).
   Baseline: 64 plain pods of 8 GPUs each created at once and bound by kube-scheduler alone (no
   gang, no topology) — what starting the same workers costs without Corral.
2. Memory: the operator's RSS with the fleet and --jobs one-worker jobs Running.
3. Status writes under churn: for --churn-seconds, a worker finishes every 0.5 s and a new job
   replaces it; GPUPool status patches per minute (corral_status_writes_total) against the
   number of pod events in the same window — the coalescing ratio.

A benchmark, not a test: it prints a table and writes bench/results/operator.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "e2e"))

from kubernetes import client  # noqa: E402

from harness import Cluster  # noqa: E402
from harness.wait import wait_for  # noqa: E402
from operator_support import free_port  # noqa: E402

NAMESPACE = "bench"
POOL = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "GPUPool",
    "metadata": {"name": "scale"},
    "spec": {
        "nodeSelector": {"matchLabels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
        "accelerator": {"type": "H100-80GB", "memoryGiB": 80, "watts": 700},
        "pricing": {"onDemandPerDeviceHour": 4.0, "spotPerDeviceHour": 1.5},
    },
}
CONTAINER = {
    "name": "trainer",
    "image": "registry.example/trainer:1",
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def job(name: str, workers: int, gpus: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": gpus,
            "pools": ["scale"],
            "template": {"spec": {"containers": [CONTAINER]}},
            **spec,
        },
    }


class Operator:
    def __init__(self, cluster: Cluster, log_path: Path):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                f"--metrics-port={self.port}",
                f"--health-port={free_port()}",
            ],
            env=cluster.env(),
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path
        try:
            wait_for(
                lambda: "cache seeded" in log_path.read_text(),
                timeout=180,
                message="operator cache seeded",
            )
        except BaseException:
            self.stop()  # never leave an operator behind when the run fails
            raise

    def metric(self, name: str, labels: str = "") -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", re.M)
        match = pattern.search(text)
        return float(match.group(1)) if match else 0.0

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def prepare(cluster: Cluster) -> None:
    """Corral's CRDs, the bench namespace and the `scale` pool (each kept when already there)."""
    cluster.apply_crds()
    for create in (
        lambda: cluster.core.create_namespace({"metadata": {"name": NAMESPACE}}),
        lambda: cluster.custom.create_cluster_custom_object(
            "corral.dev", "v1alpha1", "gpupools", POOL
        ),
    ):
        try:
            create()
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    wait_for(
        lambda: cluster.core.read_namespaced_service_account("default", NAMESPACE),
        timeout=60,
        message="namespace ready",
    )


def close(cluster: Cluster, operator: Operator | None, keep: bool) -> None:
    """Stop the operator, remove the bench namespace, and bring the fleet down unless `keep`."""
    if operator is not None:
        operator.stop()
    with contextlib.suppress(client.ApiException):
        cluster.core.delete_namespace(NAMESPACE)
    if not keep:
        cluster.owned = True
        cluster.close()


def running_pods(core: client.CoreV1Api, selector: str) -> int:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    return sum(1 for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def wait_no_pods(core: client.CoreV1Api, selector: str) -> None:
    wait_for(
        lambda: not core.list_namespaced_pod(NAMESPACE, label_selector=selector).items,
        timeout=120,
        interval=0.5,
        message=f"pods {selector} gone",
    )


def gang_runs(cluster: Cluster, operator: Operator, runs: int) -> dict[str, Any]:
    core, custom = cluster.core, cluster.custom
    totals, solver = [], []
    for run in range(runs):
        name = f"gang-{run}"
        solver_before = operator.metric("corral_placement_seconds_sum")
        started = time.perf_counter()
        custom.create_namespaced_custom_object(
            "corral.dev",
            "v1alpha1",
            NAMESPACE,
            "trainingjobs",
            job(name, 64, 8, topology={"required": "network.corral.dev/block"}),
        )
        wait_for(
            lambda name=name: running_pods(core, f"corral.dev/job={name}") == 64,
            timeout=180,
            interval=0.05,
            message=f"{name}: 64 workers Running",
        )
        totals.append(time.perf_counter() - started)
        solver.append(operator.metric("corral_placement_seconds_sum") - solver_before)
        custom.delete_namespaced_custom_object(
            "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", name
        )
        wait_no_pods(core, f"corral.dev/job={name}")
        log(f"gang run {run}: {totals[-1]:.2f} s (solver {solver[-1] * 1000:.1f} ms)")
    baseline = []
    for run in range(runs):
        label = f"plain-{run}"
        pod = {
            "metadata": {"name": "", "labels": {"bench": label}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        **CONTAINER,
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "8"},
                            "limits": {"nvidia.com/gpu": "8"},
                        },
                    }
                ],
            },
        }
        started = time.perf_counter()
        for index in range(64):
            pod["metadata"]["name"] = f"{label}-{index}"
            core.create_namespaced_pod(NAMESPACE, pod)
        wait_for(
            lambda label=label: running_pods(core, f"bench={label}") == 64,
            timeout=180,
            interval=0.05,
            message=f"{label}: 64 pods Running",
        )
        baseline.append(time.perf_counter() - started)
        core.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"bench={label}")
        wait_no_pods(core, f"bench={label}")
        log(f"plain run {run}: {baseline[-1]:.2f} s")
    p50 = statistics.median(totals)
    return {
        "runs": runs,
        "corral_p50_s": round(p50, 3),
        "corral_p90_s": round(sorted(totals)[max(0, int(len(totals) * 0.9) - 1)], 3),
        "solver_p50_ms": round(statistics.median(solver) * 1000, 2),
        "solver_share": round(statistics.median(solver) / p50, 4),
        "plain_kube_scheduler_p50_s": round(statistics.median(baseline), 3),
        "ratio_corral_to_plain": round(p50 / statistics.median(baseline), 2),
        "target_p50_s": 5.0,
    }


def memory_with_jobs(cluster: Cluster, operator: Operator, count: int) -> dict[str, Any]:
    custom, core = cluster.custom, cluster.core
    before = operator.rss_mib()
    for index in range(count):
        custom.create_namespaced_custom_object(
            "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", job(f"small-{index}", 1, 8)
        )
    wait_for(
        lambda: running_pods(core, "corral.dev/job") >= count,
        timeout=300,
        interval=1.0,
        message=f"{count} workers Running",
    )
    time.sleep(5)  # let the pool status sync settle before reading memory
    return {
        "jobs": count,
        "rss_idle_mib": round(before, 1),
        "rss_with_jobs_mib": round(operator.rss_mib(), 1),
        "target_mib": 300,
    }


def churn(cluster: Cluster, operator: Operator, seconds: float, count: int) -> dict[str, Any]:
    custom, core = cluster.custom, cluster.core
    rng = random.Random(7)
    writes_before = operator.metric("corral_status_writes_total", '{kind="GPUPool"}')
    next_job, events = count, 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        pods = [
            p
            for p in core.list_namespaced_pod(NAMESPACE, label_selector="corral.dev/job").items
            if p.status.phase == "Running"
        ]
        if pods:
            pod = rng.choice(pods)
            core.patch_namespaced_pod(
                pod.metadata.name,
                NAMESPACE,
                {"metadata": {"annotations": {"sim.corral.dev/exit-code": "0"}}},
            )
            custom.create_namespaced_custom_object(
                "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", job(f"small-{next_job}", 1, 8)
            )
            next_job += 1
            events += 4  # annotate, Succeeded, new pod created, new pod bound/Running (at least)
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    writes = operator.metric("corral_status_writes_total", '{kind="GPUPool"}') - writes_before
    return {
        "seconds": round(elapsed, 1),
        "pod_events_at_least": events,
        "pool_status_writes": int(writes),
        "pool_status_writes_per_minute": round(writes * 60 / elapsed, 1),
        "pod_events_per_minute_at_least": round(events * 60 / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", default=str(REPO / "e2e" / "fleets" / "scale.yaml"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--churn-seconds", type=float, default=60.0)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "operator.json"))
    parser.add_argument("--keep", action="store_true", help="leave the fleet up afterwards")
    args = parser.parse_args()

    fleet = Path(args.fleet)
    log(f"bringing up {fleet.name} (reused if already up) ...")
    cluster = Cluster.local(fleet, f"opbench-{fleet.stem}")
    operator: Operator | None = None
    try:
        prepare(cluster)
        nodes = len(cluster.core.list_node(label_selector="nvidia.com/gpu.product").items)
        operator = Operator(cluster, Path("/tmp/corral-bench-operator.log"))
        results = {"fleet": fleet.name, "nodes": nodes}
        results["gang_start"] = gang_runs(cluster, operator, args.runs)
        results["memory"] = memory_with_jobs(cluster, operator, args.jobs)
        results["churn"] = churn(cluster, operator, args.churn_seconds, args.jobs)
    finally:
        close(cluster, operator, args.keep)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    gang, memory, churned = results["gang_start"], results["memory"], results["churn"]
    print(f"\nOperator on {nodes} nodes ({fleet.name})")
    print(f"{'figure':<48}{'corral':>12}{'baseline':>12}{'ratio':>8}{'target':>10}")
    print(
        f"{'64x8 gang: create -> all Running, p50 (s)':<48}{gang['corral_p50_s']:>12}{gang['plain_kube_scheduler_p50_s']:>12}{gang['ratio_corral_to_plain']:>8}{'<= 5':>10}"
    )
    print(
        f"{'  of which solver, p50 (ms)':<48}{gang['solver_p50_ms']:>12}{'':>12}{gang['solver_share']:>8}{'':>10}"
    )
    print(
        f"{'operator RSS with ' + str(memory['jobs']) + ' jobs (MiB)':<48}{memory['rss_with_jobs_mib']:>12}{memory['rss_idle_mib']:>12}{'':>8}{'<= 300':>10}"
    )
    print(
        f"{'GPUPool status writes / min under churn':<48}{churned['pool_status_writes_per_minute']:>12}{churned['pod_events_per_minute_at_least']:>12}{round(churned['pool_status_writes_per_minute'] / max(1, churned['pod_events_per_minute_at_least']), 3):>8}{'':>10}"
    )
    print(
        f"(baseline columns: plain kube-scheduler pods; RSS before the jobs; pod events / min)\nwritten to {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
