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
from operator_support import Jobs, MakePool, RunningOperator


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


def test_each_source_checkpoints_replaces_in_place_and_resumes_from_the_acknowledged_step(
    cluster: Cluster, namespace: str, make_pool: MakePool, jobs: Jobs, operator: RunningOperator
) -> None:
    sources = list(interrupt.SOURCES)
    pool = make_pool([node(f"s{i}").rack("r1").spot() for i in range(4 + len(sources))])
    jobs.create(training_job("trainer", namespace).workers(4).gpus(8).pool(pool).obj())
    status = jobs.wait_phase("trainer", "Running", timeout=60)
    for round_, source in enumerate(sources, start=1):
        # Checkpoint request ids have whole-second resolution: a request made in the second the
        # gang last changed cannot be told from one made before it (kwok starts a replaced worker
        # within milliseconds; a real one takes seconds), so each round begins in a later second.
        began = time.time()
        wait_for(
            lambda b=began: int(time.time()) > int(b),
            timeout=2,
            interval=0.05,
            message="the next second",
        )
        attempt = status["attempt"]
        index = round_ % 4
        noticed = status["placement"]["nodes"][index]
        before = uids(attempt_pods(jobs, "trainer", attempt))
        interrupt.notify(cluster.api, noticed, source, 120, datetime.now(UTC))

        def requested(a: int = attempt) -> str | None:
            pods = attempt_pods(jobs, "trainer", a)
            ids = {p["metadata"].get("annotations", {}).get(protocol.REQUESTED) for p in pods}
            return ids.pop() if len(pods) == 4 and len(ids) == 1 and None not in ids else None

        request = wait_for(requested, timeout=30, message=f"{source}: checkpoint requested")
        assert jobs.status("trainer")["phase"] == "Checkpointing"
        assert jobs.status("trainer")["disruption"]["source"] == interrupt.READ_AS[source]
        step = 1000 * round_
        for pod in attempt_pods(jobs, "trainer", attempt):  # the workload acknowledges
            cluster.core.patch_namespaced_pod(
                pod["metadata"]["name"],
                namespace,
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
    assert "corral_interruptions_total" in operator.metrics()


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
