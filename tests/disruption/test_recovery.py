"""Recovery from interruptions, driven through the in-memory cluster (the same lifecycle and pass
as the operator): checkpoint on notice, move the gang, count interruptions apart from restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from corral.disruption import notices
from corral.fleet.testing import job, node
from corral.fleet.testing import pool as pool_builder
from corral.sdk import protocol
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
KEY = "default/trainer"


def spot_node(name: str) -> Any:
    return node(name).rack("r0").label("pool", "p").gpus(8).spot()


def cluster(hosts: int = 4) -> InMemoryCluster:
    return InMemoryCluster(
        [spot_node(f"h{i}").obj() for i in range(hosts)],
        [pool_builder("p").select(pool="p").obj()],
    )


def status(c: InMemoryCluster) -> dict[str, Any]:
    return dict(c.jobs[KEY]["status"])


def run(c: InMemoryCluster, now: datetime) -> None:
    """Settle the pass and the lifecycle, let bound workers start, settle again."""
    for _ in range(4):
        c.settle(now)
        c.start_bound(now)
    c.settle(now)


def started(c: InMemoryCluster, workers: int = 2, **spec: Any) -> InMemoryCluster:
    body = job("trainer").workers(workers).gpus(8).dict()
    body["spec"].update(spec)
    c.submit(body, T0)
    run(c, T0)
    assert status(c)["phase"] == "Running", status(c)
    return c


def workers(c: InMemoryCluster) -> dict[str, dict[str, Any]]:
    attempt = status(c)["attempt"]
    return {
        key: pod
        for key, pod in c.pods.items()
        if pod["metadata"]["labels"]["corral.dev/restart"] == str(attempt)
    }


def ack(c: InMemoryCluster, request: str, step: int, uri: str = "s3://ckpt/") -> None:
    for pod in workers(c).values():
        pod["metadata"]["annotations"].update(
            {protocol.COMPLETED: request, protocol.STEP: str(step), protocol.URI: uri + str(step)}
        )
        c._touch(pod)


def notice_on(c: InMemoryCluster, name: str, key: str = notices.NTH_SPOT_ITN) -> None:
    c.set_node(spot_node(name).taint(key, "evt-1").obj())


def events(c: InMemoryCluster) -> list[str]:
    return [f"{e.reason}: {e.message}" for _, e in c.recorded.events]


def test_notice_checkpoints_then_moves_the_gang_without_using_restarts() -> None:
    c = started(cluster(), maxRestarts=0)
    first = status(c)["placement"]["nodes"]
    noticed = first[0]
    notice_on(c, noticed)
    now = T0 + timedelta(seconds=60)
    c.reconcile(KEY, now)
    assert status(c)["phase"] == "Checkpointing"
    assert status(c)["disruption"]["source"] == "aws-nth"
    requested = {p["metadata"]["annotations"].get(protocol.REQUESTED) for p in workers(c).values()}
    (request,) = requested
    assert request and request.endswith("-notice")
    assert any(e.startswith("TerminationNotice") for e in events(c))

    ack(c, request, 4200)
    later = now + timedelta(seconds=5)
    c.reconcile(KEY, later)
    s = status(c)
    assert (s["interruptions"], s["restarts"]) == (1, 0)
    assert s["lastCheckpoint"]["step"] == 4200 and s["lastCheckpoint"]["uri"] == "s3://ckpt/4200"
    assert s["lastRestart"]["reason"] == "SpotReclaimed"
    assert s["lastRestart"]["lostWorkSeconds"] == 0
    assert "disruption" not in s

    run(c, later)
    s = status(c)
    assert s["phase"] == "Running" and s["attempt"] == 1
    assert noticed not in s["placement"]["nodes"], "the new placement avoids the noticed node"


def test_a_workload_that_never_acknowledges_moves_after_the_timeout_with_lost_work() -> None:
    c = started(cluster(), checkpoint={"timeoutSeconds": 30})
    notice_on(c, status(c)["placement"]["nodes"][1], notices.KARPENTER_DISRUPTED)
    now = T0 + timedelta(seconds=600)
    c.reconcile(KEY, now)
    assert status(c)["phase"] == "Checkpointing"
    c.reconcile(KEY, now + timedelta(seconds=29))
    assert status(c)["phase"] == "Checkpointing"
    c.reconcile(KEY, now + timedelta(seconds=30))
    s = status(c)
    assert s["interruptions"] == 1 and s["restarts"] == 0
    assert "lastCheckpoint" not in s
    assert s["lastRestart"]["lostWorkSeconds"] == 630  # since the gang started, no checkpoint
    assert "did not acknowledge" in s["lastRestart"]["message"]


def test_the_wait_is_bounded_by_the_notice_deadline() -> None:
    c = started(cluster())  # timeoutSeconds 90 by default; GKE gives 30 s
    notice_on(c, status(c)["placement"]["nodes"][0], notices.GKE_IMPENDING_TERMINATION)
    now = T0 + timedelta(seconds=100)
    c.reconcile(KEY, now)
    assert c.due[KEY] <= now + timedelta(seconds=20.5)  # 30 s - 10 s margin
    c.reconcile(KEY, now + timedelta(seconds=20))
    assert status(c)["interruptions"] == 1


def test_a_withdrawn_notice_lets_the_gang_run_on() -> None:
    c = started(cluster())
    name = status(c)["placement"]["nodes"][0]
    notice_on(c, name)
    c.reconcile(KEY, T0 + timedelta(seconds=10))
    assert status(c)["phase"] == "Checkpointing"
    c.set_node(spot_node(name).obj())
    c.reconcile(KEY, T0 + timedelta(seconds=11))
    s = status(c)
    assert s["phase"] == "Running" and s["interruptions"] == 0 and "disruption" not in s


def test_a_worker_terminated_by_the_platform_is_an_interruption() -> None:
    c = started(cluster(), maxRestarts=0)
    key, pod = next(iter(workers(c).items()))
    pod["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
    ]
    namespace, _, name = key.partition("/")
    c.finish(namespace, name, 143, T0 + timedelta(seconds=5))
    c.reconcile(KEY, T0 + timedelta(seconds=5))
    s = status(c)
    assert (s["interruptions"], s["restarts"], s["phase"]) == (1, 0, "Recovering")
    assert s["lastRestart"]["reason"] == "Maintenance"


def test_an_application_failure_still_uses_the_restart_budget() -> None:
    c = started(cluster(), maxRestarts=3)
    key = next(iter(workers(c)))
    namespace, _, name = key.partition("/")
    c.finish(namespace, name, 1, T0 + timedelta(seconds=5))
    c.reconcile(KEY, T0 + timedelta(seconds=5))
    s = status(c)
    assert (s["interruptions"], s["restarts"]) == (0, 1)
    assert s["lastRestart"]["reason"] == "AppError"


def test_a_node_lost_without_notice_is_a_node_failure_and_the_gang_resumes() -> None:
    c = started(cluster(), maxRestarts=0)
    lost = status(c)["placement"]["nodes"][0]
    c.remove_node(lost)
    now = T0 + timedelta(seconds=60)
    c.reconcile(KEY, now)
    s = status(c)
    assert (s["interruptions"], s["restarts"]) == (1, 0)
    assert s["lastRestart"]["reason"] == "NodeFailure"
    run(c, now)
    assert status(c)["phase"] == "Running" and lost not in status(c)["placement"]["nodes"]


def test_interruptions_never_exhaust_max_restarts() -> None:
    c = started(cluster(hosts=8), maxRestarts=0)
    now = T0
    for round_ in range(3):
        now += timedelta(seconds=300)
        c.remove_node(status(c)["placement"]["nodes"][0])
        c.reconcile(KEY, now)
        run(c, now)
        assert status(c)["phase"] == "Running", (round_, status(c))
    assert status(c)["interruptions"] == 3 and status(c)["restarts"] == 0


def test_restarted_workers_get_the_resume_point_in_their_env() -> None:
    from corral.api.trainingjob import CheckpointRecord
    from corral.disruption.checkpoints import resume_env
    from corral.fleet.testing import job as job_builder
    from corral.kube import builders

    spec = job_builder("trainer").workers(2).gpus(8).obj().spec
    record = CheckpointRecord(id="1796040000-notice", step=4200, time=T0, uri="s3://ckpt/4200")
    pod = builders.worker_pod(
        namespace="default",
        job="trainer",
        uid="u",
        spec=spec,
        index=1,
        attempt=3,
        node="h1",
        pool="p",
        resource_name="nvidia.com/gpu",
        pool_tolerations=[],
        resume_env=resume_env(record),
    )
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env[protocol.RESUME_STEP_ENV] == "4200"
    assert env[protocol.RESUME_FROM_ENV] == "s3://ckpt/4200"
    assert env[protocol.RESUME_ID_ENV] == "1796040000-notice"


def test_a_storm_every_job_resumes_from_its_own_checkpoint_and_nothing_is_overcommitted() -> None:
    """Half the spot nodes noticed at once under several running jobs: each job checkpoints,
    moves and runs again; none resumes from an older checkpoint than it had; no node holds more
    devices than it has."""
    c = InMemoryCluster(
        [spot_node(f"h{i:02d}").obj() for i in range(12)],
        [pool_builder("p").select(pool="p").obj()],
    )
    names = [f"j{i}" for i in range(3)]
    for name in names:
        c.submit(job(name).workers(2).gpus(8).dict(), T0)
    run(c, T0)
    keys = [f"default/{name}" for name in names]
    assert all(c.jobs[k]["status"]["phase"] == "Running" for k in keys)
    now = T0 + timedelta(seconds=600)
    used = sorted({n for k in keys for n in c.jobs[k]["status"]["placement"]["nodes"]})
    for name in used[::2] + [n for n in sorted(c.nodes) if n not in used][:3]:  # half of them
        notice_on(c, name)
    c.settle(now)
    before: dict[str, int] = {}
    for index, key in enumerate(keys):
        s = c.jobs[key]["status"]
        if s["phase"] != "Checkpointing":
            continue
        request = {
            p["metadata"]["annotations"][protocol.REQUESTED]
            for p in c.pods.values()
            if p["metadata"]["labels"]["corral.dev/job"] == key.split("/")[1]
            and p["metadata"]["labels"]["corral.dev/restart"] == str(s["attempt"])
        }.pop()
        step = 100 * (index + 1)
        before[key] = step
        for pod in c.pods.values():
            if pod["metadata"]["labels"]["corral.dev/job"] == key.split("/")[1]:
                pod["metadata"]["annotations"].update(
                    {protocol.COMPLETED: request, protocol.STEP: str(step)}
                )
                c._touch(pod)
    assert before, "the storm hit at least one job"
    later = now + timedelta(seconds=5)
    run(c, later)
    for key in keys:
        s = c.jobs[key]["status"]
        assert s["phase"] == "Running", (key, s)
        assert s["restarts"] == 0
        if key in before:
            assert s["interruptions"] == 1 and s["lastCheckpoint"]["step"] == before[key]
            noticed = {n for n in c.nodes if c.node_notice(n) is not None}
            assert not noticed & set(s["placement"]["nodes"])
    for name, amounts in c.snapshot.usage.items():
        assert amounts.get("nvidia.com/gpu", 0) <= 8, (name, amounts)
