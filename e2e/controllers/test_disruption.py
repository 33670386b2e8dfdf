"""Termination notices on a real control plane with `corral run`: the operator asks the workers to
checkpoint (the test is the workload, through the annotation hook), replaces the affected worker
in place (the others keep running: same pods) or, without room in the gang's rack, moves the
whole gang, and restarts from the acknowledged step; interruptions are counted, restarts are
not."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from builders import node, training_job
from corral.disruption import notices
from corral.localfleet import interrupt
from corral.sdk import protocol
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, RunningOperator, metric


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


def attempt_pods(jobs: Jobs, name: str, attempt: int) -> list[dict[str, Any]]:
    return [
        p
        for p in jobs.pods(name)
        if p["metadata"]["labels"].get("corral.dev/restart") == str(attempt)
        and not p["metadata"].get("deletionTimestamp")
    ]


def running(jobs: Jobs, name: str, attempt: int, interruptions: int) -> dict[str, Any] | None:
    status = jobs.status(name)
    if (
        status.get("phase") == "Running"
        and status.get("attempt") == attempt
        and status.get("interruptions") == interruptions
    ):
        return status
    return None


def uids(pods: list[dict[str, Any]]) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


def requested(jobs: Jobs, name: str, attempt: int, workers: int) -> str | None:
    """The checkpoint request id once every live worker of the attempt carries the same one."""
    pods = attempt_pods(jobs, name, attempt)
    ids = {p["metadata"].get("annotations", {}).get(protocol.REQUESTED) for p in pods}
    return ids.pop() if len(pods) == workers and len(ids) == 1 and None not in ids else None


def acknowledge(
    cluster: Cluster, jobs: Jobs, name: str, attempt: int, request: str, step: int
) -> None:
    """The workload's side of the annotation hook: every worker reports the checkpoint durable."""
    for pod in attempt_pods(jobs, name, attempt):
        cluster.core.patch_namespaced_pod(
            pod["metadata"]["name"],
            jobs.namespace,
            {
                "metadata": {
                    "annotations": {
                        protocol.COMPLETED: request,
                        protocol.STEP: str(step),
                        protocol.URI: f"s3://ckpt/{step}",
                    }
                }
            },
        )


def next_second() -> None:
    """Checkpoint request ids have whole-second resolution: a request made in the second the gang
    last changed cannot be told from one made before it (kwok starts a replaced worker within
    milliseconds; a real one takes seconds), so a step that asks for one begins a second later."""
    began = time.time()
    wait_for(lambda: int(time.time()) > int(began), timeout=2, interval=0.05, message="next second")


def test_each_source_checkpoints_replaces_in_place_and_resumes_from_the_acknowledged_step(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    sources = list(interrupt.SOURCES)
    pool = make_pool([node(f"s{i}").rack("r1").spot() for i in range(4 + len(sources))])
    jobs.create(training_job("trainer", namespace).workers(4).gpus(8).pool(pool).obj())
    status = jobs.wait_phase("trainer", "Running", timeout=60)
    for round_, source in enumerate(sources, start=1):
        next_second()
        attempt = status["attempt"]
        index = round_ % 4
        noticed = status["placement"]["nodes"][index]
        before = uids(attempt_pods(jobs, "trainer", attempt))
        interrupt.notify(cluster.api, noticed, source, 120, datetime.now(UTC))

        request = wait_for(
            lambda a=attempt: requested(jobs, "trainer", a, 4),
            timeout=30,
            message=f"{source}: checkpoint requested",
        )
        assert jobs.status("trainer")["phase"] == "Checkpointing"
        assert jobs.status("trainer")["disruption"]["source"] == interrupt.READ_AS[source]
        step = 1000 * round_
        acknowledge(cluster, jobs, "trainer", attempt, request, step)
        status = wait_for(
            lambda a=attempt, r=round_: running(jobs, "trainer", a, r),
            timeout=60,
            message=f"{source}: gang running again",
        )
        assert (status["interruptions"], status["restarts"]) == (round_, 0)
        assert status["lastCheckpoint"]["step"] == step
        assert status["lastRestart"]["reason"] == "SpotReclaimed"
        assert status["lastRestart"]["lostWorkSeconds"] == 0
        assert noticed not in status["placement"]["nodes"]
        # In place: the same attempt, the other three workers are the very same pods, and only
        # the affected index has a new pod, which resumes from the acknowledged step.
        after = attempt_pods(jobs, "trainer", attempt)
        kept = {n: u for n, u in before.items() if f"-w{index}-" not in n}
        assert {n: u for n, u in uids(after).items() if n in kept} == kept
        (new,) = [p for p in after if p["metadata"]["name"] not in before]
        assert new["metadata"]["labels"]["corral.dev/worker-index"] == str(index)
        env = env_of(new)
        assert env[protocol.RESUME_STEP_ENV] == str(step)
        assert env[protocol.RESUME_FROM_ENV] == f"s3://ckpt/{step}"
    assert "TerminationNotice" in jobs.event_reasons("trainer")
    assert "SpotReclaimed" in jobs.event_reasons("trainer")
    text = operator.metrics()
    for source in sources:
        labels = {"pool": pool, "source": interrupt.READ_AS[source]}
        assert metric(text, "corral_interruptions_total", **labels) == 1, (source, text)


def test_a_workload_that_never_acknowledges_moves_the_whole_gang_when_its_rack_is_full(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    pool = make_pool([node(f"s{i}").rack(f"r{i // 2}").spot() for i in range(4)])
    jobs.create(
        training_job("silent", namespace)
        .workers(2)
        .gpus(8)
        .pool(pool)
        .spec(checkpoint={"timeoutSeconds": 3})
        .obj()
    )
    status = jobs.wait_phase("silent", "Running", timeout=60)
    noticed = status["placement"]["nodes"][1]
    first_rack = status["placement"]["domain"]
    interrupt.notify(cluster.api, noticed, "corral", 120, datetime.now(UTC))
    status = wait_for(
        lambda: running(jobs, "silent", 1, 1), timeout=60, message="gang running again"
    )
    assert (status["interruptions"], status["restarts"]) == (1, 0)
    assert "lastCheckpoint" not in status
    assert status["lastRestart"]["lostWorkSeconds"] > 0
    assert "did not acknowledge" in status["lastRestart"]["message"]
    assert "no room for worker(s) 1 in the gang's span domain" in status["lastRestart"]["message"]
    assert status["placement"]["domain"] != first_rack
    assert notices.node_notices(
        cluster.api.sanitize_for_serialization(cluster.core.read_node(noticed))
    ).notices
    assert noticed not in status["placement"]["nodes"]


def test_a_storm_every_job_resumes_from_no_older_a_checkpoint_and_nothing_is_overcommitted(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    """Half the spot nodes noticed at once under three running jobs: `both` loses both its nodes
    (moved whole), `one` loses one (replaced in place), `silent` loses one and never answers the
    notice's request (after its timeout it resumes from the checkpoint it had, the lost work
    reported). The free nodes left are exactly as many as the moved workers need."""
    pool = make_pool([node(f"s{i:02d}").rack("r1").spot() for i in range(12)])
    names = ["both", "one", "silent"]
    for name in names:
        jobs.create(
            training_job(name, namespace)
            .workers(2)
            .gpus(8)
            .pool(pool)
            .spec(checkpoint={"timeoutSeconds": 3 if name == "silent" else 30})
            .obj()
        )
    placed = {name: jobs.wait_phase(name, "Running")["placement"]["nodes"] for name in names}
    # `silent` had a checkpoint before the storm (asked for on demand, acknowledged).
    next_second()
    asked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    jobs.cluster.custom.patch_namespaced_custom_object(
        "corral.dev",
        "v1alpha1",
        namespace,
        "trainingjobs",
        "silent",
        {"metadata": {"annotations": {"corral.dev/checkpoint-now": asked}}},
    )
    request = wait_for(lambda: requested(jobs, "silent", 0, 2), timeout=30, message="asked")
    acknowledge(cluster, jobs, "silent", 0, request, 500)
    wait_for(
        lambda: (jobs.status("silent").get("lastCheckpoint") or {}).get("step") == 500,
        timeout=30,
        message="silent's checkpoint at step 500 recorded",
    )
    used = {n for nodes in placed.values() for n in nodes}
    free = sorted(n for n in (f"{pool}-s{i:02d}" for i in range(12)) if n not in used)
    noticed = [*placed["both"], placed["one"][0], placed["silent"][1], *free[:2]]
    assert len(set(noticed)) == 6, "half of the 12 spot nodes"
    before = {name: uids(attempt_pods(jobs, name, 0)) for name in names}

    next_second()
    now = datetime.now(UTC)
    for name in noticed:
        interrupt.notify(cluster.api, name, "aws", 120, now)
    for step, name in ((1000, "both"), (2000, "one")):  # these two answer; `silent` does not
        request = wait_for(
            lambda name=name: requested(jobs, name, 0, 2), timeout=30, message=f"{name}: asked"
        )
        acknowledge(cluster, jobs, name, 0, request, step)
    statuses = {
        name: wait_for(
            lambda name=name: running(jobs, name, jobs.status(name).get("attempt", 0), 1),
            timeout=60,
            message=f"{name}: running again",
        )
        for name in names
    }

    resumed = {"both": 1000, "one": 2000, "silent": 500}
    for name, status in statuses.items():
        assert (status["interruptions"], status["restarts"]) == (1, 0), (name, status)
        assert status["lastCheckpoint"]["step"] == resumed[name], (name, status)
        assert not set(noticed) & set(status["placement"]["nodes"]), (name, status)
        # Every new worker resumes from the job's own checkpoint; the kept one is the same pod.
        after = attempt_pods(jobs, name, status["attempt"])
        new = [p for p in after if p["metadata"]["uid"] not in before[name].values()]
        assert len(new) == (2 if name == "both" else 1), (name, uids(after))
        for pod in new:
            assert env_of(pod)[protocol.RESUME_STEP_ENV] == str(resumed[name]), (name, pod)
    assert statuses["both"]["attempt"] == 1, "both its nodes went: the whole gang moved"
    assert statuses["one"]["attempt"] == 0, "one node went: replaced in place"
    assert statuses["silent"]["lastRestart"]["lostWorkSeconds"] > 0
    assert "did not acknowledge" in statuses["silent"]["lastRestart"]["message"]
    for name in ("both", "one"):
        assert statuses[name]["lastRestart"]["lostWorkSeconds"] == 0, statuses[name]

    # Nothing overcommitted: every live worker bound to a node of its own.
    live = [
        p
        for name in names
        for p in jobs.pods(name)
        if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
    ]
    bound = [p["spec"]["nodeName"] for p in live]
    assert len(bound) == 6 and len(set(bound)) == 6, bound
    assert not set(bound) & set(noticed), bound

    # The disruption metrics count what happened, once each.
    text = operator.metrics()
    labels = {"pool": pool, "source": "aws-nth"}
    assert metric(text, "corral_interruptions_total", **labels) == 3
    # (By this test's pool: jobs of earlier tests, whose namespaces and nodes are still being
    # deleted, are interrupted too, and the operator counts them on their own pools.)
    mine = {"pool": pool}
    assert metric(text, "corral_recovery_seconds_count", **mine) == 3
    assert metric(text, "corral_checkpoint_seconds_count", **mine) == 3  # silent's, both's, one's
    assert metric(text, "corral_lost_work_seconds_count", **mine) == 3
    assert metric(text, "corral_lost_work_seconds_sum", **mine) > 0  # silent's
