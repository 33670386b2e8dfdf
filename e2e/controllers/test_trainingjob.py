"""TrainingJobs on a real control plane with kwok GPU nodes, driven by `corral run`."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import watch

from builders import EXIT_CODE_ANNOTATION, node, training_job
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, RunningOperator, StartOperator, short

RACK = "network.corral.dev/rack"


def rack_of(cluster: Cluster, node_name: str) -> str:
    return str(cluster.core.read_node(node_name).metadata.labels[RACK])


def two_racks(hosts_per_rack: int, gpus: int = 8) -> list[Any]:
    return [
        node(f"r{r}h{h}").rack(f"r{r}").gpus(gpus)
        for r in (1, 2)
        for h in range(1, hosts_per_rack + 1)
    ]


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


def age(pod: dict[str, Any]) -> float:
    """Seconds since the pod started, by the API server's clock as seen from here."""
    started = pod["status"].get("startTime")
    if not started:
        return 0.0
    return (
        datetime.now(UTC) - datetime.fromisoformat(started.replace("Z", "+00:00"))
    ).total_seconds()


def finish(cluster: Cluster, namespace: str, pod_name: str, exit_code: int) -> None:
    cluster.core.patch_namespaced_pod(
        pod_name, namespace, {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(exit_code)}}}
    )


def test_gang_with_required_rack_lands_in_one_rack(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool(two_racks(hosts_per_rack=4))
    jobs.create(
        training_job("llama", namespace)
        .workers(4)
        .gpus(8)
        .pool(pool)
        .spec(topology={"required": RACK})
        .obj()
    )
    status = jobs.wait_phase("llama", "Running", timeout=60)

    pods = jobs.pods("llama")
    assert len(pods) == 4
    racks = {rack_of(cluster, pod["spec"]["nodeName"]) for pod in pods}
    assert len(racks) == 1, racks
    assert status["placement"]["level"] == RACK
    assert status["placement"]["domain"] == racks.pop()
    assert len(set(status["placement"]["nodes"])) == 4
    by_rank = {env_of(p)["RANK"]: p for p in pods}
    assert sorted(by_rank) == ["0", "1", "2", "3"]
    env = env_of(by_rank["2"])
    assert (env["WORLD_SIZE"], env["PET_NNODES"], env["NODE_RANK"], env["PET_NPROC_PER_NODE"]) == (
        "4",
        "4",
        "2",
        "8",
    )
    assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "worker-0.llama"
    assert env["MASTER_PORT"] == "29500"
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert not pod["spec"].get("schedulingGates")
    service = cluster.core.read_namespaced_service("llama", namespace)
    assert service.spec.cluster_ip == "None"
    placed = jobs.condition("llama", "Placed")
    assert placed is not None and placed["status"] == "True"
    assert {"Placed", "Running"} <= set(jobs.event_reasons("llama"))


def test_gang_too_big_for_a_rack_spans_racks_when_only_preferred(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool(two_racks(hosts_per_rack=2))
    jobs.create(
        training_job("wide", namespace)
        .workers(3)
        .gpus(8)
        .pool(pool)
        .spec(topology={"preferred": RACK})
        .obj()
    )
    jobs.wait_phase("wide", "Running")
    racks = {rack_of(cluster, pod["spec"]["nodeName"]) for pod in jobs.pods("wide")}
    assert len(racks) == 2


def test_job_that_cannot_fit_now_waits_then_starts_when_capacity_frees(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("first", namespace).workers(2).gpus(8).pool(pool).obj())
    jobs.wait_phase("first", "Running")
    jobs.create(training_job("second", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("second", "Queued")
    placed = wait_for(
        lambda: jobs.condition("second", "Placed"), message="Placed condition on second"
    )
    assert placed["status"] == "False" and placed["reason"] == "NoFit"
    assert "free" in placed["message"], placed["message"]
    assert not jobs.pods("second")

    jobs.delete("first")
    jobs.wait_phase("second", "Running", timeout=60)
    status = jobs.status("second")
    assert status["queuedSeconds"] > 0


def test_jobs_applied_together_never_share_devices(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1"), node("h3").rack("r2")])
    for index in range(5):
        jobs.create(training_job(f"j{index}", namespace).workers(1).gpus(8).pool(pool).obj())

    def settled() -> Counter[str]:
        phases = Counter(jobs.phase(f"j{index}") or "" for index in range(5))
        return phases if phases["Running"] == 3 and phases["Queued"] == 2 else Counter()

    wait_for(settled, timeout=60, message="3 jobs Running and 2 Queued")
    nodes = [pod["spec"].get("nodeName") for i in range(5) for pod in jobs.pods(f"j{i}")]
    assert sorted(short(n) for n in nodes if n) == ["h1", "h2", "h3"]
    assert len([n for n in nodes if n]) == 3


def test_cordoned_and_tainted_nodes_are_avoided(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool(
        [
            node("cordoned").rack("r1").cordoned(),
            node("tainted").rack("r1").taint("maintenance", "NoSchedule"),
            node("good").rack("r1"),
        ]
    )
    jobs.create(training_job("one", namespace).workers(1).gpus(8).pool(pool).obj())
    status = jobs.wait_phase("one", "Running")
    assert [short(n) for n in status["placement"]["nodes"]] == ["good"]
    jobs.create(training_job("two", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("two", "Queued")


def test_suspend_deletes_workers_and_resume_brings_them_back(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("pausable", namespace).workers(2).gpus(8).pool(pool).obj())
    jobs.wait_phase("pausable", "Running")
    jobs.patch_spec("pausable", suspend=True)
    jobs.wait_phase("pausable", "Suspended")
    wait_for(lambda: not jobs.pods("pausable"), timeout=60, message="workers deleted")
    suspended = jobs.condition("pausable", "Suspended")
    assert suspended is not None and suspended["status"] == "True"

    jobs.patch_spec("pausable", suspend=False)
    jobs.wait_phase("pausable", "Running")
    names = sorted(pod["metadata"]["name"] for pod in jobs.pods("pausable"))
    assert names == ["pausable-w0-r1", "pausable-w1-r1"]
    assert {"Suspended", "Resumed"} <= set(jobs.event_reasons("pausable"))


def test_worker_failure_restarts_the_gang_then_fails_after_max_restarts(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(
        training_job("flaky", namespace).workers(2).gpus(8).pool(pool).spec(maxRestarts=1).obj()
    )
    jobs.wait_phase("flaky", "Running")
    finish(cluster, namespace, "flaky-w1-r0", exit_code=3)
    wait_for(
        lambda: jobs.status("flaky").get("restarts") == 1, timeout=60, message="one gang restart"
    )
    jobs.wait_phase("flaky", "Running")
    assert sorted(p["metadata"]["name"] for p in jobs.pods("flaky")) == [
        "flaky-w0-r1",
        "flaky-w1-r1",
    ]

    finish(cluster, namespace, "flaky-w0-r1", exit_code=1)
    status = jobs.wait_phase("flaky", "Failed")
    failed = jobs.condition("flaky", "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert "worker 0 failed" in failed["message"] and "code 1" in failed["message"]
    assert status["restarts"] == 1
    assert "Restarted" in jobs.event_reasons("flaky")


def test_all_workers_succeeding_completes_the_job_and_counts_usage(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("done", namespace).workers(2).gpus(8).pool(pool).obj())
    jobs.wait_phase("done", "Running")
    # Pod times have whole seconds: let the workers run measurably before they finish.
    wait_for(
        lambda: all(age(pod) >= 2 for pod in jobs.pods("done")),
        timeout=30,
        message="workers ran 2 s",
    )
    for pod in jobs.pods("done"):
        finish(cluster, namespace, pod["metadata"]["name"], exit_code=0)
    status = jobs.wait_phase("done", "Succeeded")
    assert status["deviceHours"] > 0
    assert status["cost"] > 0 and status["currency"] == "USD"
    assert status["completionTime"]
    assert "Succeeded" in jobs.event_reasons("done")


def test_a_job_that_can_never_fit_fails_unschedulable(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1")])
    jobs.create(training_job("huge", namespace).workers(4).gpus(8).pool(pool).obj())
    jobs.wait_phase("huge", "Failed")
    failed = jobs.condition("huge", "Failed")
    assert failed is not None and failed["reason"] == "Unschedulable"
    assert "Unschedulable" in jobs.event_reasons("huge")


KILL_POINTS = {
    # the placement is in status, no pod exists yet
    "after-placement": lambda jobs: (jobs.status("crashy").get("placement") or {}).get("nodes"),
    # some worker pods exist (created concurrently), the gang is still gated
    "mid-creation": lambda jobs: jobs.pods("crashy"),
}


def _freeze_at(
    cluster: Cluster, namespace: str, kill_point: str, pid: int, frozen: threading.Event
) -> None:
    """SIGSTOP `pid` on the first watch event at the kill point. A watch without a
    resourceVersion starts with the current objects, so nothing created before it is missed."""
    stream = watch.Watch()
    events: Any
    if kill_point == "mid-creation":
        events = stream.stream(
            cluster.core.list_namespaced_pod,
            namespace,
            label_selector="corral.dev/job=crashy",
            timeout_seconds=60,
        )
    else:
        events = stream.stream(
            cluster.custom.list_namespaced_custom_object,
            "corral.dev",
            "v1alpha1",
            namespace,
            "trainingjobs",
            timeout_seconds=60,
        )
    for event in events:
        obj = event["object"]
        if kill_point == "mid-creation" or ((obj.get("status") or {}).get("placement") or {}).get(
            "nodes"
        ):
            os.kill(pid, signal.SIGSTOP)
            frozen.set()
            stream.stop()
            return


@pytest.mark.parametrize("kill_point", sorted(KILL_POINTS))
def test_operator_killed_mid_placement_converges_without_duplicates(
    cluster: Cluster,
    namespace: str,
    make_pool: MakePool,
    jobs: Jobs,
    start_operator: StartOperator,
    kill_point: str,
) -> None:
    pool = make_pool([node(f"h{i}").rack("r1").gpus(8) for i in range(4)])
    first = start_operator()
    # A watch freezes the operator the moment the kill point is reached (polling with kubectl
    # took longer than the operator needs to create and ungate a whole gang).
    frozen_event = threading.Event()
    watcher = threading.Thread(
        target=_freeze_at, args=(cluster, namespace, kill_point, first.process.pid, frozen_event)
    )
    watcher.start()
    jobs.create(training_job("crashy", namespace).workers(16).gpus(2).pool(pool).obj())
    watcher.join(timeout=60)
    assert frozen_event.is_set(), f"{kill_point} not reached in 60 s"
    # Check the kill point really is mid-placement, then kill the operator.
    frozen = jobs.pods("crashy")
    assert KILL_POINTS[kill_point](jobs), f"{kill_point} no longer holds at kill time"
    assert len(frozen) < 16 or any(p["spec"].get("schedulingGates") for p in frozen), (
        f"{kill_point}: the gang was already complete and ungated when the operator was killed"
    )
    first.process.kill()
    start_operator()
    jobs.wait_phase("crashy", "Running", timeout=90)

    def stable() -> list[dict[str, Any]] | None:
        pods = [p for p in jobs.pods("crashy") if not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == 16 else None

    pods = wait_for(stable, timeout=30, message="16 live worker pods")
    indexes = Counter(p["metadata"]["labels"]["corral.dev/worker-index"] for p in pods)
    assert all(count == 1 for count in indexes.values()) and len(indexes) == 16
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert all(count * 2 <= 8 for count in per_node.values()), per_node
    attempts = {re.sub(r".*-r", "", p["metadata"]["name"]) for p in pods}
    assert len(attempts) == 1


def test_gpupool_status_equals_a_recount_from_the_api(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool(
        [node("h1").rack("r1"), node("h2").rack("r1"), node("h3").rack("r2").cordoned()]
    )
    jobs.create(training_job("user", namespace).workers(1).gpus(4).pool(pool).obj())
    jobs.wait_phase("user", "Running")

    def recount() -> dict[str, int]:
        nodes = [
            n
            for n in cluster.kubectl.json("get", "nodes", "-l", f"e2e.corral.dev/pool={pool}")[
                "items"
            ]
        ]
        names = {n["metadata"]["name"] for n in nodes}
        pods = cluster.kubectl.json("get", "pods", "-A")["items"]
        allocated = sum(
            int(c.get("resources", {}).get("requests", {}).get("nvidia.com/gpu", 0))
            for p in pods
            if p["spec"].get("nodeName") in names
            and p["status"].get("phase") not in ("Succeeded", "Failed")
            for c in p["spec"]["containers"]
        )
        allocatable = sum(int(n["status"]["allocatable"]["nvidia.com/gpu"]) for n in nodes)
        return {"nodes": len(nodes), "allocatable": allocatable, "allocated": allocated}

    def matches() -> dict[str, Any] | None:
        status = (
            cluster.custom.get_cluster_custom_object(
                "corral.dev", "v1alpha1", "gpupools", pool
            ).get("status")
            or {}
        )
        counted = recount()
        seen = {
            "nodes": status.get("nodes"),
            "allocatable": (status.get("devices") or {}).get("allocatable"),
            "allocated": (status.get("devices") or {}).get("allocated"),
        }
        return status if seen == counted else None

    status = wait_for(matches, timeout=30, message="GPUPool status equal to a recount")
    assert status["readyNodes"] == 3
    assert status["devices"]["free"] == 8 + 4  # the cordoned host's devices are not free to use
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "1 node(s)" in degraded["message"]


def test_metrics_endpoint_serves_corral_metrics(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1")])
    jobs.create(training_job("measured", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("measured", "Running")

    def scraped() -> str | None:
        text = operator.metrics()
        wanted = [
            f'corral_pool_devices{{pool="{pool}",state="allocated"}} 8.0',
            "corral_placement_seconds_count",
            "corral_job_queue_seconds_count",
            'corral_jobs{phase="Running"}',
        ]
        return text if all(w in text for w in wanted) else None

    wait_for(scraped, timeout=30, message="metrics with the pool's allocated devices")


def test_reserved_env_in_the_template_fails_the_job_naming_the_field(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1")])
    body = training_job("clash", namespace).pool(pool).obj()
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MASTER_ADDR", "value": "x"}
    ]
    jobs.create(body)
    jobs.wait_phase("clash", "Failed")
    failed = jobs.condition("clash", "Failed")
    assert failed is not None and failed["reason"] == "InvalidSpec"
    assert "spec.template.spec.containers[0].env: MASTER_ADDR is set by Corral" in failed["message"]
    assert not jobs.pods("clash")


def test_a_worker_deleted_by_someone_else_is_recreated_on_its_node(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    jobs.create(training_job("steady", namespace).workers(2).gpus(8).pool(pool).obj())
    status = jobs.wait_phase("steady", "Running")
    victim = next(p for p in jobs.pods("steady") if p["metadata"]["name"] == "steady-w1-r0")
    cluster.core.delete_namespaced_pod("steady-w1-r0", namespace, grace_period_seconds=0)

    def recreated() -> dict[str, Any] | None:
        pods = {p["metadata"]["name"]: p for p in jobs.pods("steady")}
        pod = pods.get("steady-w1-r0")
        fresh = pod and pod["metadata"]["uid"] != victim["metadata"]["uid"]
        return pod if fresh and pod["status"].get("phase") == "Running" else None

    pod = wait_for(recreated, timeout=60, message="worker 1 recreated and Running")
    assert pod["spec"]["nodeName"] == status["placement"]["nodes"][1]
    assert jobs.status("steady")["attempt"] == 0
    assert "WorkerRecreated" in jobs.event_reasons("steady")


def test_deleting_a_job_deletes_its_workers_and_service(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1")])
    jobs.create(training_job("shortlived", namespace).workers(1).gpus(8).pool(pool).obj())
    jobs.wait_phase("shortlived", "Running")
    jobs.delete("shortlived")
    wait_for(lambda: not jobs.pods("shortlived"), timeout=60, message="workers garbage-collected")
    wait_for(
        lambda: not cluster.kubectl("get", "service", "-n", namespace, "-o", "name").strip(),
        timeout=60,
        message="rendezvous Service garbage-collected",
    )


def test_a_template_the_api_server_refuses_fails_the_job_with_its_message(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    body = training_job("badname", namespace).workers(2).gpus(8).pool(pool).obj()
    body["spec"]["template"]["spec"]["containers"][0]["name"] = "Trainer_Main"  # not a DNS label
    jobs.create(body)
    jobs.wait_phase("badname", "Failed")
    failed = jobs.condition("badname", "Failed")
    assert failed is not None and failed["reason"] == "PodRejected"
    assert "spec.containers[0].name" in failed["message"], failed["message"]
    wait_for(lambda: not jobs.pods("badname"), timeout=30, message="no worker pods left")
    assert "PodRejected" in jobs.event_reasons("badname")


def test_a_gang_not_bound_in_time_is_replaced_whole(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    body = (
        training_job("unbound", namespace)
        .workers(2)
        .gpus(8)
        .pool(pool)
        .spec(placementTimeoutSeconds=3)
        .obj()
    )
    # No scheduler of that name runs: kube-scheduler never binds these pods, as when capacity is
    # taken behind Corral's back.
    body["spec"]["template"]["spec"]["schedulerName"] = "no-such-scheduler"
    jobs.create(body)
    wait_for(
        lambda: jobs.status("unbound").get("attempt", 0) >= 1,
        timeout=60,
        message="the gang re-placed",
    )
    reasons = jobs.event_reasons("unbound")
    assert "Replaced" in reasons
    replaced = next(e for e in jobs.events("unbound") if e["reason"] == "Replaced")
    assert "not bound within 3s" in replaced["message"]
    pods = wait_for(
        lambda: [p for p in jobs.pods("unbound") if not p["metadata"].get("deletionTimestamp")],
        timeout=30,
        message="the next attempt's workers",
    )
    assert all(not p["metadata"]["name"].endswith("-r0") for p in pods)
