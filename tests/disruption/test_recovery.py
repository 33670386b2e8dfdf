"""Recovery from interruptions, driven through the in-memory cluster (the same lifecycle and pass
as the operator): checkpoint on notice, move the gang, count interruptions apart from restarts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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


def test_notice_checkpoints_then_replaces_only_the_affected_worker_in_place() -> None:
    c = started(cluster(), maxRestarts=0)
    first = status(c)["placement"]["nodes"]
    noticed = first[0]
    kept = {k: copy.deepcopy(p) for k, p in workers(c).items() if p["spec"]["nodeName"] != noticed}
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
    assert (s["interruptions"], s["restarts"], s["attempt"]) == (1, 0, 0)
    assert s["lastCheckpoint"]["step"] == 4200 and s["lastCheckpoint"]["uri"] == "s3://ckpt/4200"
    assert s["lastRestart"]["reason"] == "SpotReclaimed"
    assert s["lastRestart"]["lostWorkSeconds"] == 0
    assert "in place" in s["lastRestart"]["message"]
    assert "disruption" not in s
    assert s["placement"]["replacements"] == [1, 0]

    run(c, later)
    s = status(c)
    assert s["phase"] == "Running" and s["attempt"] == 0
    assert noticed not in s["placement"]["nodes"], "the new worker avoids the noticed node"
    assert s["placement"]["nodes"][1] == first[1]
    now_running = workers(c)
    assert sorted(now_running) == ["default/trainer-w0-r0-x1", "default/trainer-w1-r0"]
    for key, pod in kept.items():  # the unaffected worker was never touched
        assert now_running[key]["status"]["startTime"] == pod["status"]["startTime"]
        assert now_running[key]["metadata"]["labels"] == pod["metadata"]["labels"]


def rack_fleet(racks: dict[str, int]) -> InMemoryCluster:
    nodes = [
        spot_node(f"{rack}-h{i}").label("network.corral.dev/rack", rack).obj()
        for rack, hosts in racks.items()
        for i in range(hosts)
    ]
    return InMemoryCluster(nodes, [pool_builder("p").select(pool="p").obj()])


def notice_and_ack(c: InMemoryCluster, nodes: list[str], now: datetime, step: int = 100) -> None:
    for name in nodes:
        c.set_node(
            c.nodes[name]
            | {"spec": {"taints": [{"key": notices.NTH_SPOT_ITN, "effect": "NoSchedule"}]}}
        )
    c.reconcile(KEY, now)
    request = {p["metadata"]["annotations"][protocol.REQUESTED] for p in workers(c).values()}
    ack(c, request.pop(), step)
    c.reconcile(KEY, now + timedelta(seconds=1))


def test_without_room_in_the_span_domain_the_whole_gang_moves() -> None:
    c = rack_fleet({"ra": 2, "rb": 2})
    started(c)
    first = status(c)["placement"]
    assert first["level"] == "network.corral.dev/rack"
    notice_and_ack(c, first["nodes"][:1], T0 + timedelta(seconds=60))
    s = status(c)
    assert s["attempt"] == 1 and s["interruptions"] == 1
    assert "no room for worker(s) 0 in the gang's span domain" in s["lastRestart"]["message"]
    run(c, T0 + timedelta(seconds=62))
    s = status(c)
    assert s["phase"] == "Running" and s["placement"]["domain"] != first["domain"]
    assert not set(s["placement"]["nodes"]) & set(first["nodes"])


BLOCK = "network.corral.dev/block"
RACK = "network.corral.dev/rack"


@pytest.mark.parametrize(
    ("required", "in_place"),
    [(None, False), (RACK, False), (BLOCK, True)],
    ids=["nothing required", "rack required", "block required"],
)
def test_a_gang_that_filled_its_rack_is_replaced_in_place_as_wide_as_it_requires(
    required: str | None, in_place: bool
) -> None:
    """The gang fills rack ra; rb, in the same block, has room. Only a job that requires no more
    than the block may span it: its noticed worker moves to rb alone and the gang's span becomes
    the block. Otherwise the whole gang moves (to rb, or elsewhere), as before."""
    nodes = [
        spot_node(f"{rack}-h{i}").label(BLOCK, "b1").label(RACK, rack).obj()
        for rack in ("ra", "rb")
        for i in range(2)
    ]
    c = InMemoryCluster(nodes, [pool_builder("p").select(pool="p").levels(BLOCK, RACK).obj()])
    started(c, **({"topology": {"required": required}} if required else {}))
    first = status(c)["placement"]
    assert (first["level"], first["domain"]) == (RACK, "ra")
    notice_and_ack(c, first["nodes"][:1], T0 + timedelta(seconds=60))
    s = status(c)
    assert s["interruptions"] == 1
    if not in_place:
        assert s["attempt"] == 1
        assert "or any wider one its topology.required allows" in s["lastRestart"]["message"]
        return
    assert s["attempt"] == 0 and s["placement"]["replacements"] == [1, 0]
    assert (s["placement"]["level"], s["placement"]["domain"]) == (BLOCK, "b1")
    assert "the gang now spans" in s["lastRestart"]["message"]
    run(c, T0 + timedelta(seconds=62))
    s = status(c)
    assert s["phase"] == "Running"
    nodes = s["placement"]["nodes"]
    assert nodes[1] == first["nodes"][1] and nodes[0].startswith("rb-")


def test_several_noticed_nodes_are_replaced_at_once_inside_the_span_domain() -> None:
    c = rack_fleet({"ra": 6, "rb": 6})
    started(c, workers=4)
    first = status(c)["placement"]
    noticed = first["nodes"][1:3]
    notice_and_ack(c, noticed, T0 + timedelta(seconds=60))
    s = status(c)
    assert s["attempt"] == 0 and s["interruptions"] == 1
    assert s["placement"]["replacements"] == [0, 1, 1, 0]
    run(c, T0 + timedelta(seconds=62))
    s = status(c)
    assert s["phase"] == "Running" and s["placement"]["domain"] == first["domain"]
    nodes = s["placement"]["nodes"]
    assert nodes[0] == first["nodes"][0] and nodes[3] == first["nodes"][3]
    assert not set(nodes) & set(noticed)
    assert all(n.startswith(first["domain"]) for n in nodes)


def test_a_gang_that_cannot_re_form_is_re_placed_whole_though_its_domain_has_room() -> None:
    """spec.rendezvous.replaceInPlace false (a launcher that cannot take a new member): the
    noticed worker's room exists in the rack, yet the whole gang moves, as one interruption."""
    c = rack_fleet({"ra": 6, "rb": 6})
    started(c, workers=2, rendezvous={"replaceInPlace": False})
    first = status(c)["placement"]
    notice_and_ack(c, first["nodes"][:1], T0 + timedelta(seconds=60))
    s = status(c)
    assert (s["attempt"], s["interruptions"], s["restarts"]) == (1, 1, 0)
    assert "in place" not in s["lastRestart"]["message"]
    assert s["lastCheckpoint"]["step"] == 100
    run(c, T0 + timedelta(seconds=62))
    s = status(c)
    assert s["phase"] == "Running" and first["nodes"][0] not in s["placement"]["nodes"]


def test_replacement_never_takes_devices_planned_for_another_gang() -> None:
    """The pass placed another gang (its workers are only in the ledger, no pod yet): the
    in-place replacement sees those devices as taken and re-places the whole gang instead."""
    c = rack_fleet({"ra": 3, "rb": 3})
    started(c)
    mine = status(c)["placement"]["nodes"]
    c.submit(job("other").workers(1).gpus(8).dict(), T0)
    c.run_pass(T0)  # placed, its worker assumed in the ledger, no pod created yet
    other = c.jobs["default/other"]["status"]["placement"]["nodes"]
    assert not c.pods.keys() & {"default/other-w0-r0"}
    assert other[0].startswith(mine[0][:2])  # best fit: the last free host of the same rack
    notice_and_ack(c, mine[:1], T0 + timedelta(seconds=60))
    s = status(c)
    assert s["attempt"] == 1, "no room left in the rack once the planned worker counts"
    run(c, T0 + timedelta(seconds=62))
    for name, amounts in c.snapshot.usage.items():
        assert amounts.get("nvidia.com/gpu", 0) <= 8, (name, amounts)


def test_a_kept_worker_failing_while_the_gang_re_forms_restarts_the_gang_as_the_same_interruption() -> (
    None
):
    c = started(cluster(), maxRestarts=0)
    noticed = status(c)["placement"]["nodes"][0]
    notice_and_ack(c, [noticed], T0 + timedelta(seconds=60))
    assert status(c)["phase"] == "Recovering" and status(c)["attempt"] == 0
    c.finish("default", "trainer-w1-r0", 1, T0 + timedelta(seconds=62))
    c.reconcile(KEY, T0 + timedelta(seconds=62))
    s = status(c)
    assert (s["interruptions"], s["restarts"], s["attempt"]) == (1, 0, 1)
    assert "re-formed" in s["lastRestart"]["message"]
    run(c, T0 + timedelta(seconds=63))
    assert status(c)["phase"] == "Running"


@pytest.mark.parametrize("applied", range(1, 6))
def test_an_in_place_replacement_cut_short_at_any_action_converges(applied: int) -> None:
    """The operator dies after the first `applied` actions of the replacement's decision: a new
    reconcile finishes it, with one worker per index and nothing overcommitted."""
    c = started(cluster())
    noticed = status(c)["placement"]["nodes"][0]
    notice_on(c, noticed)
    now = T0 + timedelta(seconds=60)
    c.reconcile(KEY, now)
    request = {p["metadata"]["annotations"][protocol.REQUESTED] for p in workers(c).values()}
    ack(c, request.pop(), 7)
    actions = c.decide(KEY, now)
    assert len(actions) >= 4
    c.apply(KEY, actions[:applied], now)
    run(c, now + timedelta(seconds=1))
    s = status(c)
    assert s["phase"] == "Running" and s["interruptions"] == 1 and s["attempt"] == 0
    indexes = sorted(
        int(p["metadata"]["labels"]["corral.dev/worker-index"]) for p in c.pods.values()
    )
    assert indexes == [0, 1]
    assert noticed not in s["placement"]["nodes"]
    for name, amounts in c.snapshot.usage.items():
        assert amounts.get("nvidia.com/gpu", 0) <= 8, (name, amounts)


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


def test_an_interrupted_gang_waits_as_interrupted_ahead_of_newer_jobs_of_its_priority() -> None:
    c = started(cluster(hosts=2))
    c.submit(job("newer").workers(1).gpus(8).dict(), T0 + timedelta(seconds=30))
    notice_and_ack(c, status(c)["placement"]["nodes"][:1], T0 + timedelta(seconds=60))
    later = T0 + timedelta(seconds=62)
    run(c, later)
    run(c, later + timedelta(seconds=1))
    placed = next(x for x in status(c)["conditions"] if x["type"] == "Placed")
    assert (placed["status"], placed["reason"]) == ("False", "Interrupted"), placed
    assert placed["message"].startswith("interrupted, waiting for capacity (SpotReclaimed): ")
    queued = [e for k, e in c.recorded.events if k == KEY and e.reason == "Queued"]
    assert len(queued) == 1, "told once per stay in the queue"
    newer = c.jobs["default/newer"]["status"]
    assert "placement" not in newer, "the newer job of the same priority waits behind it"
    c.set_node(spot_node("h9").obj())
    run(c, later + timedelta(seconds=2))
    assert status(c)["phase"] == "Running" and status(c)["interruptions"] == 1
