"""The load the operator puts on the API server, against the operator before issue 8, in one run.

    .venv/bin/python bench/runtime.py                       # 200 running jobs, 2 min steady state
    .venv/bin/python bench/runtime.py --jobs 50 --steady 60 --rss-jobs 200   # quicker

On the 2,000-node `scale` fleet, for the current operator and for the baseline (the operator at
git revision --baseline-rev, before the runtime rewrite, run from a temporary worktree), one
after the other on the same fleet:
1. Steady state: --jobs one-worker jobs Running; over --steady seconds, TrainingJob status writes
   per running job per minute (from the API server's own audit of the operator's requests: the
   operator's corral_status_writes_total), and operator / kube-apiserver CPU (from /proc).
2. API requests per job lifecycle: one 8-worker job created, Running, Succeeded, deleted;
   every request the operator made meanwhile (corral_api_requests_total; the baseline has no such
   counter, so its figure is its status writes only).
3. Memory: the operator's RSS with --rss-jobs jobs Running (current operator only).

A benchmark, not a test: it prints a table with ratios and writes bench/results/runtime.json.
Targets (issue 8): <= 1 status write per running job per refresh period (60 s) in steady state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "e2e"))

from kubernetes import client  # noqa: E402

from corral.localfleet.cluster import FleetDirs  # noqa: E402
from harness import Cluster  # noqa: E402
from harness.wait import wait_for  # noqa: E402
from operator_support import free_port  # noqa: E402

NAMESPACE = "bench-runtime"
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
TICKS = 100  # /proc/<pid>/stat CPU times are in clock ticks (USER_HZ)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def job(name: str, workers: int, gpus: int = 8) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": gpus,
            "pools": ["scale"],
            "template": {"spec": {"containers": [CONTAINER]}},
        },
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Operator:
    """`corral run` from a source tree (this one, or the baseline worktree)."""

    def __init__(self, cluster: Cluster, source: Path, log_path: Path, extra: list[str]):
        self.port = free_port()
        env = {**cluster.env(), "PYTHONPATH": str(source / "operator")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                f"--metrics-port={self.port}",
                f"--health-port={free_port()}",
                *extra,
            ],
            env=env,
            cwd=source,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: "cache seeded" in log_path.read_text(),
                timeout=240,
                message="operator cache seeded",
            )
        except BaseException:
            self.stop()
            raise

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            return str(answer.read().decode())

    def counter(self, name: str, labels: str = "") -> float:
        """Sum of every series of `name` whose labels contain `labels`."""
        total = 0.0
        for match in re.finditer(
            rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", self.metrics(), re.M
        ):
            if labels in (match.group(1) or ""):
                total += float(match.group(2))
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def running(core: client.CoreV1Api, selector: str) -> int:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    return sum(1 for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def clear(cluster: Cluster) -> None:
    custom, core = cluster.custom, cluster.core
    with contextlib.suppress(client.ApiException):
        custom.delete_collection_namespaced_custom_object(
            "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs"
        )
    wait_for(
        lambda: not core.list_namespaced_pod(NAMESPACE).items,
        timeout=300,
        interval=1.0,
        message="bench pods gone",
    )


def create_jobs(cluster: Cluster, prefix: str, count: int) -> None:
    for index in range(count):
        cluster.custom.create_namespaced_custom_object(
            "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", job(f"{prefix}-{index}", 1)
        )
    wait_for(
        lambda: running(cluster.core, "corral.dev/job") >= count,
        timeout=600,
        interval=2.0,
        message=f"{count} workers Running",
    )


def steady_state(
    cluster: Cluster, operator: Operator, apiserver: int, jobs: int, seconds: float
) -> dict[str, Any]:
    create_jobs(cluster, "steady", jobs)
    time.sleep(10)  # the start-up burst (placements, pool status) is over
    writes = operator.counter("corral_status_writes_total", 'kind="TrainingJob"')
    op_cpu, api_cpu = cpu_seconds(operator.process.pid), cpu_seconds(apiserver)
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    written = operator.counter("corral_status_writes_total", 'kind="TrainingJob"') - writes
    result = {
        "running_jobs": jobs,
        "seconds": round(elapsed, 1),
        "job_status_writes": int(written),
        "writes_per_job_per_minute": round(written / jobs * 60 / elapsed, 3),
        "operator_cpu_percent": round(
            (cpu_seconds(operator.process.pid) - op_cpu) / elapsed * 100, 1
        ),
        "apiserver_cpu_percent": round((cpu_seconds(apiserver) - api_cpu) / elapsed * 100, 1),
    }
    clear(cluster)
    return result


def lifecycle(cluster: Cluster, operator: Operator, current: bool) -> dict[str, Any]:
    """Every request one 8-worker job's life costs: create -> Running -> Succeeded -> delete."""
    custom, core = cluster.custom, cluster.core
    name = "life"
    requests = operator.counter("corral_api_requests_total") if current else 0.0
    writes = operator.counter("corral_status_writes_total", 'kind="TrainingJob"')
    custom.create_namespaced_custom_object(
        "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", job(name, 8)
    )
    wait_for(
        lambda: running(core, f"corral.dev/job={name}") == 8,
        timeout=120,
        interval=0.2,
        message="8 workers Running",
    )
    for pod in core.list_namespaced_pod(NAMESPACE, label_selector=f"corral.dev/job={name}").items:
        core.patch_namespaced_pod(
            pod.metadata.name,
            NAMESPACE,
            {"metadata": {"annotations": {"sim.corral.dev/exit-code": "0"}}},
        )
    wait_for(
        lambda: (
            (
                custom.get_namespaced_custom_object(
                    "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", name
                ).get("status")
                or {}
            ).get("phase")
            == "Succeeded"
        ),
        timeout=120,
        interval=0.5,
        message="job Succeeded",
    )
    time.sleep(5)
    custom.delete_namespaced_custom_object(
        "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", name
    )
    clear(cluster)
    time.sleep(3)
    result = {
        "job_status_writes": int(
            operator.counter("corral_status_writes_total", 'kind="TrainingJob"') - writes
        )
    }
    if current:
        result["api_requests"] = int(operator.counter("corral_api_requests_total") - requests)
    return result


def pool_exists(cluster: Cluster) -> bool:
    try:
        cluster.custom.get_cluster_custom_object(
            "corral.dev", "v1alpha1", "gpupools", POOL["metadata"]["name"]
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def baseline_tree(rev: str) -> Path:
    where = Path(tempfile.mkdtemp(prefix="corral-baseline-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev],
        check=True,
        capture_output=True,
    )
    return where


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", default=str(REPO / "e2e" / "fleets" / "scale.yaml"))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--steady", type=float, default=120.0, help="seconds of steady state")
    parser.add_argument("--rss-jobs", type=int, default=1000)
    parser.add_argument("--baseline-rev", default="c1f2b62", help="the operator before issue 8")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "runtime.json"))
    parser.add_argument("--keep", action="store_true", help="leave the fleet up afterwards")
    parser.add_argument(
        "--only",
        choices=("current", "baseline"),
        help="run one operator; the other's figures are kept from --out",
    )
    args = parser.parse_args()

    fleet = Path(args.fleet)
    log(f"bringing up {fleet.name} (reused if already up) ...")
    name = f"opbench-{fleet.stem}"
    # 2,000 kwok nodes take ~50 s to turn Ready on a quiet machine, minutes on a busy one.
    cluster = Cluster.local(fleet, name, ready_timeout=900)
    apiserver = int(FleetDirs.of(name).pid_file("kube-apiserver").read_text().strip())
    results: dict[str, Any] = {"fleet": fleet.name, "baseline_rev": args.baseline_rev}
    baseline = baseline_tree(args.baseline_rev)
    try:
        cluster.apply_crds()
        with contextlib.suppress(client.ApiException):
            cluster.core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_for(
            lambda: cluster.core.read_namespaced_service_account("default", NAMESPACE),
            timeout=60,
            message="namespace ready",
        )
        results["nodes"] = len(cluster.core.list_node().items)
        for label, source, current in (("current", REPO, True), ("baseline", baseline, False)):
            if args.only and args.only != label:
                continue
            log(f"{label} operator from {source} ...")
            # Each operator with its own CRDs: the current schema defaults fields the baseline's
            # strict parser does not know.
            cluster.apply_crds(source / "crds")
            with contextlib.suppress(client.ApiException):
                cluster.custom.delete_cluster_custom_object(
                    "corral.dev", "v1alpha1", "gpupools", POOL["metadata"]["name"]
                )
            wait_for(lambda: not pool_exists(cluster), timeout=60, message="old pool gone")
            cluster.custom.create_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", POOL)
            operator = Operator(cluster, source, Path(f"/tmp/corral-bench-runtime-{label}.log"), [])
            try:
                results[label] = {
                    "steady": steady_state(cluster, operator, apiserver, args.jobs, args.steady),
                    "lifecycle": lifecycle(cluster, operator, current),
                }
                if current:
                    create_jobs(cluster, "rss", args.rss_jobs)
                    time.sleep(10)
                    results[label]["rss_mib"] = {
                        "jobs": args.rss_jobs,
                        "rss_mib": round(rss_mib(operator.process.pid), 1),
                    }
                    clear(cluster)
            finally:
                operator.stop()
            log(json.dumps(results[label]))
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
            check=False,
            capture_output=True,
        )
        with contextlib.suppress(client.ApiException):
            cluster.core.delete_namespace(NAMESPACE)
        if not args.keep:
            cluster.owned = True
            cluster.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and out.is_file():
        kept = json.loads(out.read_text())
        other = "baseline" if args.only == "current" else "current"
        if other in kept:
            results[other] = kept[other]
    out.write_text(json.dumps(results, indent=2) + "\n")
    now, before = results["current"], results["baseline"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.3f}" if b else "-"

    rows = [
        (
            f"status writes / running job / min ({args.jobs} jobs)",
            now["steady"]["writes_per_job_per_minute"],
            before["steady"]["writes_per_job_per_minute"],
            "<= 1",
        ),
        (
            "operator CPU % in steady state",
            now["steady"]["operator_cpu_percent"],
            before["steady"]["operator_cpu_percent"],
            "~0",
        ),
        (
            "kube-apiserver CPU % in steady state",
            now["steady"]["apiserver_cpu_percent"],
            before["steady"]["apiserver_cpu_percent"],
            "",
        ),
        (
            "job status writes, one 8-worker job's life",
            now["lifecycle"]["job_status_writes"],
            before["lifecycle"]["job_status_writes"],
            "",
        ),
    ]
    print(f"\nOperator load on {results['nodes']} nodes: current vs {args.baseline_rev}")
    print(f"{'figure':<52}{'current':>10}{'baseline':>10}{'ratio':>8}{'target':>8}")
    for label, a, b, target in rows:
        print(f"{label:<52}{a:>10}{b:>10}{ratio(float(a), float(b)):>8}{target:>8}")
    print(
        f"{'API requests, one 8-worker job life (current)':<52}{now['lifecycle']['api_requests']:>10}"
    )
    print(
        f"{'operator RSS with ' + str(now['rss_mib']['jobs']) + ' jobs (MiB)':<52}{now['rss_mib']['rss_mib']:>10}"
    )
    met = now["steady"]["writes_per_job_per_minute"] <= 1.0
    print(f"target <= 1 status write per running job per minute: {'met' if met else 'MISSED'}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
