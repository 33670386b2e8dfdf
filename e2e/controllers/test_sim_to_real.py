"""Sim-to-real: the same workload through the real operator and through `corral simulate`'s
engine must give the same decisions — each job on the same nodes, in the same order.

The real run: `corral run` against the local control plane (kube-apiserver, kube-scheduler, kwok
nodes). The script below is played one event at a time (create a job, let a job's workers exit,
make a worker fail), waiting for the operator to be quiet after each. The simulated run: the same
nodes and pool (read back from the API server), the same jobs, the same events at step k x 10
simulated seconds, through `corral.sim.engine` (the operator's own pass and lifecycle on the
in-memory cluster). Any difference is a bug in one of them.

Job names follow creation order, so that jobs created within the same second (creation times have
whole-second resolution) queue in the same order in both runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from builders import EXIT_CODE_ANNOTATION, node, training_job
from corral.api.gpupool import GPUPool
from corral.sim.engine import Options, simulate
from corral.sim.workload import WorkloadJob, priority_class_name, priority_classes
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, RunningOperator

STEP = 10.0
"""Simulated seconds between two events of the script."""

# (name, workers, devices per worker, priority); the pool has 4 hosts x 8 devices in 2 racks.
JOBS = {
    "j01": (2, 8, 0),
    "j02": (1, 4, 0),
    "j03": (1, 4, 0),
    "j04": (1, 8, 0),
    "j05": (2, 8, 0),  # the pool is full: queued
    "j06": (1, 2, 0),  # held behind j05 (strict FIFO per pool)
    "j07": (1, 1, 0),
    "j08": (4, 8, 0),  # the whole pool
    "j09": (1, 1, 0),
    "j10": (1, 8, 10),  # higher priority: goes before j09
    "j11": (2, 4, 0),
    "j12": (1, 2, 0),
    "j13": (1, 2, 0),
    "j14": (2, 8, 0),
    "j15": (1, 1, 0),
    "j16": (1, 4, 0),
    "j17": (3, 8, 0),
    "j18": (1, 8, 0),
    "j19": (1, 1, 0),
    "j20": (2, 2, 0),
    "j21": (1, 4, 5),
    "j22": (1, 8, 0),
}
SCRIPT: list[tuple[str, str]] = [
    *(("create", name) for name in ("j01", "j02", "j03", "j04", "j05", "j06")),
    ("finish", "j02"),
    ("create", "j07"),
    ("finish", "j01"),  # j05 fits now, then j06 and j07
    ("fail", "j04"),  # worker 0 exits 1: the gang restarts
    ("create", "j08"),
    ("create", "j09"),
    ("finish", "j03"),
    ("finish", "j05"),
    ("finish", "j06"),
    ("finish", "j07"),
    ("finish", "j04"),  # the pool is free: j08 (head of the queue) takes it all
    ("create", "j10"),  # higher priority: ahead of j09
    ("finish", "j08"),  # j10, then j09
    *(("create", name) for name in ("j11", "j12", "j13", "j14", "j15")),
    ("finish", "j10"),
    ("finish", "j12"),
    *(("create", name) for name in ("j16", "j17", "j18")),
    ("finish", "j11"),
    ("finish", "j14"),
    *(("create", name) for name in ("j19", "j20", "j21", "j22")),
    ("finish", "j09"),
    ("finish", "j13"),
    ("finish", "j15"),
    ("finish", "j16"),
    ("finish", "j17"),  # the rest of the queue goes in
    ("finish", "j21"),
]
TRANSIENT = ("Pending", "Placing", "Recovering", "Checkpointing")


@dataclass(frozen=True)
class Decision:
    step: int
    job: str
    nodes: tuple[str, ...]


def _observe(cluster: Cluster, namespace: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Every job's status, and how many of its workers run or have exited 0 (two list calls)."""
    listed = cluster.custom.list_namespaced_custom_object(
        "corral.dev", "v1alpha1", namespace, "trainingjobs"
    )
    statuses = {o["metadata"]["name"]: o.get("status") or {} for o in listed["items"]}
    running: dict[str, int] = {}
    for pod in cluster.core.list_namespaced_pod(namespace).items:
        job = (pod.metadata.labels or {}).get("corral.dev/job")
        if job and pod.status.phase in ("Running", "Succeeded"):
            running[job] = running.get(job, 0) + 1
    return statuses, running


def _placements(statuses: dict[str, Any]) -> dict[str, tuple[int, tuple[str, ...]]]:
    """job -> (attempt, nodes) of every job that has a placement now."""
    return {
        name: (int(status.get("attempt", 0)), tuple(status["placement"]["nodes"]))
        for name, status in statuses.items()
        if status.get("placement")
    }


def _settle(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """Every job decided — no transient phase, every placed gang running (some of its workers may
    have exited 0 already) — and nothing changing
    over three polls in a row (the operator reacts within milliseconds to what it sees)."""
    seen: list[Any] = []

    def stable() -> dict[str, Any] | None:
        statuses, running = _observe(cluster, namespace)
        quiet = all(
            status.get("phase") not in (None, *TRANSIENT)
            and (status.get("phase") != "Running" or running.get(name, 0) >= JOBS[name][0])
            for name, status in statuses.items()
        )
        state = (_placements(statuses), {n: s.get("phase") for n, s in statuses.items()})
        if not quiet or (seen and seen[-1] != state):
            seen.clear()
        if quiet:
            seen.append(state)
        return statuses if len(seen) >= 3 else None

    result: dict[str, Any] = wait_for(stable, timeout=60, interval=0.15, message="a quiet operator")
    return result


def _ended(cluster: Cluster, namespace: str, pod: str) -> bool:
    """The pod exited — or is gone already: a failed worker's gang is restarted, its pods deleted,
    within milliseconds of the failure."""
    listed = cluster.core.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod}")
    return not listed.items or listed.items[0].status.phase in ("Succeeded", "Failed")


def _exit(cluster: Cluster, jobs: Jobs, name: str, code: int) -> None:
    """Workers exit one at a time, in index order, the operator quiet after each (as in the
    simulator: each exit may free capacity that the queue takes before the next)."""
    pods = [p for p in jobs.pods(name) if p["status"].get("phase") == "Running"]
    assert pods, f"{name} has no running worker to end"
    pods.sort(key=lambda p: int(p["metadata"]["labels"]["corral.dev/worker-index"]))
    for pod in pods if code == 0 else pods[:1]:
        pod_name = pod["metadata"]["name"]
        cluster.core.patch_namespaced_pod(
            pod_name,
            jobs.namespace,
            {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}},
        )
        wait_for(
            lambda n=pod_name: _ended(cluster, jobs.namespace, n),
            timeout=30,
            message=f"{pod_name} ended",
        )
        if code == 0:
            _settle(cluster, jobs.namespace)


def _real_run(cluster: Cluster, jobs: Jobs, pool: str) -> list[Decision]:
    decisions: list[Decision] = []
    known: dict[str, tuple[int, tuple[str, ...]]] = {}
    for step, (verb, name) in enumerate(SCRIPT):
        if verb == "create":
            workers, gpus, priority = JOBS[name]
            body = training_job(name, jobs.namespace).workers(workers).gpus(gpus).pool(pool)
            if priority:
                body = body.spec(priorityClassName=priority_class_name(priority))
            jobs.create(body.obj())
        elif verb == "finish":
            _exit(cluster, jobs, name, 0)
            jobs.wait_phase(name, "Succeeded", timeout=30)
        else:
            _exit(cluster, jobs, name, 1)
            wait_for(lambda n=name: jobs.status(n).get("restarts") == 1, timeout=30)
        statuses = _settle(cluster, jobs.namespace)
        for job, placed in sorted(_placements(statuses).items()):
            if known.get(job) != placed:
                decisions.append(Decision(step, job, placed[1]))
                known[job] = placed
    return decisions


def _ensure_priority_classes(cluster: Cluster) -> None:
    """The PriorityClasses the simulator defines for the script's priorities, defined for real
    (cluster-scoped, the same for every run: applied, never deleted)."""
    workload = [WorkloadJob(name=n, submit=0, workers=1, devices_per_worker=1, duration=1,
                            priority=p) for n, (_, _, p) in JOBS.items()]  # fmt: skip
    for body in priority_classes(workload):
        cluster.kubectl.apply(json.dumps(body))


def _simulated_run(cluster: Cluster, namespace: str, pool: str) -> list[Decision]:
    nodes = cluster.kubectl.json("get", "nodes", "-l", f"e2e.corral.dev/pool={pool}")["items"]
    gpupool = GPUPool.model_validate(
        cluster.custom.get_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", pool)
    )
    when = {(verb, name): step * STEP for step, (verb, name) in enumerate(SCRIPT)}
    workload = [
        WorkloadJob(
            name=name,
            submit=when[("create", name)],
            workers=workers,
            devices_per_worker=gpus,
            duration=1.0,
            namespace=namespace,
            priority=priority,
            cpu_millis=1000,
            memory_mib=1024,
            finish_at=when.get(("finish", name), 10**9),
            fail_at=when.get(("fail", name)),
        )
        for name, (workers, gpus, priority) in JOBS.items()
    ]
    result = simulate(nodes, [gpupool], workload, Options(max_seconds=len(SCRIPT) * STEP))
    return [
        Decision(int(d.time // STEP), d.job.partition("/")[2], tuple(d.nodes))
        for d in result.decisions
    ]


def test_the_simulator_makes_the_operators_decisions(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    hosts = [node(f"r{r}h{h}").rack(f"r{r}").gpus(8) for r in (1, 2) for h in (1, 2)]
    pool = make_pool(hosts)
    _ensure_priority_classes(cluster)
    # The operator must know the pool (and its 4 nodes) before the first job names it, or that
    # job fails at once as naming no GPUPool.
    wait_for(
        lambda: (
            cluster.custom.get_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", pool)
            .get("status", {})
            .get("readyNodes")
            == len(hosts)
        ),
        timeout=30,
        message="the operator saw the pool",
    )
    started = time.monotonic()
    real = _real_run(cluster, jobs, pool)
    simulated = _simulated_run(cluster, namespace, pool)

    def table(decisions: list[Decision]) -> list[tuple[int, str, tuple[str, ...]]]:
        # Within one scheduling pass the API server's whole-second timestamps cannot order the
        # real placements: compare each step's set of decisions, steps in order.
        return sorted((d.step, d.job, d.nodes) for d in decisions)

    assert len(real) >= len(JOBS), real  # every job placed, one of them twice (the restart)
    only_real = sorted(set(table(real)) - set(table(simulated)))
    only_sim = sorted(set(table(simulated)) - set(table(real)))
    differences = [f"real only: step {s} {SCRIPT[s]}: {j} -> {n}" for s, j, n in only_real]
    differences += [f"sim only:  step {s} {SCRIPT[s]}: {j} -> {n}" for s, j, n in only_sim]
    assert not differences, "the simulator and the operator decided differently:\n" + "\n".join(
        differences
    )
    assert time.monotonic() - started < 240
