"""The operator's runtime against the in-memory API: outcomes, and the requests they took.

Every test here counts what the operator sent: a reconcile of an unchanged object writes nothing,
and status changes only when something a user can see changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.controllers.harness import Harness

from corral.fleet.resources import offered, pod_requests
from corral.fleet.testing import job, node, pool

Scenario = Callable[[Harness], Awaitable[None]]


def fleet(hosts: int = 4, **harness: Any) -> Harness:
    return Harness(
        nodes=[node(f"h{i}").rack(f"r{i // 2}").label("pool", "p").gpus(8) for i in range(hosts)],
        pools=[pool("p").select(pool="p")],
        **harness,
    )


def run(scenario: Scenario, h: Harness | None = None) -> Harness:
    harness = h or fleet()

    async def main() -> None:
        async with harness.running():
            await scenario(harness)

    asyncio.run(main())
    return harness


def gang(name: str, workers: int = 2, gpus: int = 8) -> dict[str, Any]:
    return job(name).workers(workers).gpus(gpus).dict()


def names(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods)


def assert_never_overcommitted(h: Harness) -> None:
    nodes = {n["metadata"]["name"]: n for n in h.api.items("", "nodes")}
    used: dict[str, dict[str, int]] = {}
    for p in h.api.items("", "pods"):
        where = p["spec"].get("nodeName")
        if where and p["status"].get("phase") not in ("Succeeded", "Failed"):
            for name, amount in pod_requests(p["spec"]).items():
                used.setdefault(where, {})[name] = used.get(where, {}).get(name, 0) + amount
    for where, amounts in used.items():
        allocatable = offered(nodes[where]["status"]["allocatable"])
        for name, amount in amounts.items():
            assert amount <= allocatable.get(name, 0), f"{where} overcommitted on {name}"


# -- the happy path ---------------------------------------------------------------------------


def test_a_gang_is_placed_created_ungated_bound_and_running() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j"))
        await h.converge()
        assert h.phase("j") == "Running"
        pods = sorted(h.job_pods("j"), key=lambda p: p["metadata"]["name"])
        assert names(pods) == ["j-w0-r0", "j-w1-r0"]
        planned = h.job("j")["status"]["placement"]["nodes"]
        assert [p["spec"]["nodeName"] for p in pods] == planned
        assert h.reasons("j") == ["Queued", "Placed", "Running"] or h.reasons("j") == [
            "Placed",
            "Running",
        ]
        # One create per pod, one ungate per pod, the Service once; no pod was written twice.
        assert h.api.requests[("POST", "pods")] == 2
        assert h.api.requests[("PATCH", "pods")] == 2
        assert h.api.requests[("POST", "services")] == 1

    run(scenario)


def test_a_job_seen_before_its_pool_waits_for_it_and_is_placed_once_it_exists() -> None:
    """`kubectl apply -f` of a directory (or a GitOps sync) creates a GPUPool and its jobs
    together; the job's watch event may come first. It waits; it does not fail."""

    async def scenario(h: Harness) -> None:
        h.api.put(job("j").workers(2).gpus(8).pools("late").dict())
        await h.converge()
        assert h.phase("j") == "Queued"
        assert "late" in str(h.job("j")["status"])
        writes = h.api.writes()
        await h.run_for(30)
        assert h.api.writes() == writes, "waiting for the pool writes nothing more"
        h.api.put(pool("late").select(pool="q").dict())
        await h.converge()
        assert h.phase("j") == "Running"

    nodes = [node(f"q{i}").rack("r0").label("pool", "q").gpus(8) for i in range(2)]
    run(scenario, Harness(nodes=nodes, pools=[]))


# -- writes are bounded -----------------------------------------------------------------------


def test_a_reconcile_of_an_unchanged_job_writes_nothing() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j"))
        await h.converge()
        await h.run_for(5)  # the pool status sync (delayed, coalesced) is done too
        before = h.api.writes()
        assert h.operator is not None
        for _ in range(5):
            await h.operator.jobs.reconcile("default/j")
        await h.operator.pools.sync()
        assert h.api.writes() == before

    run(scenario)


@pytest.mark.parametrize("jobs", [1, 4])
def test_steady_state_writes_are_one_usage_refresh_per_job_per_period(jobs: int) -> None:
    """The write loop of old (each status echo re-enqueued the job, and usage moved with the
    clock, so every reconcile wrote): now ten quiet minutes cost one status write per running
    job per refresh period, and nothing else."""

    async def scenario(h: Harness) -> None:
        for i in range(jobs):
            h.api.put(gang(f"j{i}", workers=1))
        await h.converge()
        assert all(h.phase(f"j{i}") == "Running" for i in range(jobs))
        await h.run_for(5)  # the start-up burst is over
        before = dict(h.api.requests)
        for minute in range(10):
            # kwok's node heartbeats: status churn placement does not care about
            for n in h.api.items("", "nodes"):
                n["status"]["conditions"][0]["lastHeartbeatTime"] = (
                    f"2026-11-30T12:{minute:02d}:00Z"
                )
                h.api.put(n)
            await h.run_for(60, step=5)
        delta = {k: v - before.get(k, 0) for k, v in h.api.requests.items()}
        status_writes = delta.get(("PATCH", "trainingjobs/status"), 0)
        assert jobs * 9 <= status_writes <= jobs * 11, delta
        others = {
            k: v
            for k, v in delta.items()
            if v
            and k[0] in ("POST", "PUT", "PATCH", "DELETE")
            and k != ("PATCH", "trainingjobs/status")
        }
        assert others == {}, others
        # usage moved forward once a minute
        assert h.job("j0")["status"]["deviceHours"] > 0

    run(scenario, fleet(hosts=4))


def test_worker_counts_that_alone_change_are_written_at_most_once_a_second() -> None:
    """A gang's workers bind and start one by one (64 of them within a couple of seconds on a
    real fleet): each pod event used to be one status write of the whole job. Now counts alone
    wait for the batch period; the phase change to Running is written at once, with the
    counts."""

    async def scenario(h: Harness) -> None:
        h.actors = False
        h.api.put(gang("j", workers=8))
        await h.converge()
        assert len(h.job_pods("j")) == 8
        before = h.api.requests[("PATCH", "trainingjobs/status")]
        for _ in range(8):  # one pod binds and starts every 0.1 s
            h.api.schedule(limit=1)
            h.api.start(limit=1)
            h.clock.advance(0.1)
            await h.settle()
        assert h.phase("j") == "Running"
        assert h.job("j")["status"]["workers"]["running"] == 8
        assert h.api.requests[("PATCH", "trainingjobs/status")] - before == 1
        await h.run_for(3)  # the held writes come due: nothing is left to write
        assert h.api.requests[("PATCH", "trainingjobs/status")] - before == 1

    run(scenario, fleet(hosts=8))


def test_held_worker_counts_are_written_once_the_batch_period_is_over() -> None:
    async def scenario(h: Harness) -> None:
        h.actors = False
        h.api.put(gang("j", workers=4))
        await h.converge()
        before = h.api.requests[("PATCH", "trainingjobs/status")]
        h.api.schedule(limit=2)  # half the gang binds, then nothing for a while
        await h.settle()
        assert h.job("j")["status"]["workers"]["bound"] == 0, "held: the plan was just written"
        await h.run_for(1)
        assert h.job("j")["status"]["workers"]["bound"] == 2
        assert h.api.requests[("PATCH", "trainingjobs/status")] - before == 1
        await h.run_for(5)
        assert h.api.requests[("PATCH", "trainingjobs/status")] - before == 1

    run(scenario)


def test_usage_refresh_period_is_a_setting() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j", workers=1))
        await h.converge()
        await h.run_for(5)
        before = h.api.requests[("PATCH", "trainingjobs/status")]
        await h.run_for(600, step=10)
        assert h.api.requests[("PATCH", "trainingjobs/status")] - before in (2, 3)

    run(scenario, fleet(usage_refresh_seconds=300))


def test_pool_status_is_written_only_when_it_changes() -> None:
    async def scenario(h: Harness) -> None:
        await h.run_for(5)
        first = h.api.requests[("PATCH", "gpupools/status")]
        assert first == 1
        await h.run_for(120, step=5)
        assert h.api.requests[("PATCH", "gpupools/status")] == first
        h.api.put(gang("j"))
        await h.converge()
        await h.run_for(5)
        status = h.api.obj("/apis/corral.dev/v1alpha1/gpupools/p")
        assert status is not None and status["status"]["devices"]["allocated"] == 16

    run(scenario)


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "resource", "status", "after_apply"),
    [
        ("PATCH", "trainingjobs/status", 409, False),
        ("PATCH", "trainingjobs/status", 500, False),
        ("PATCH", "trainingjobs/status", 429, False),
        ("PATCH", "trainingjobs/status", 0, True),
        ("POST", "pods", 500, False),
        ("POST", "pods", 0, True),
        ("POST", "services", 0, True),
        ("PATCH", "pods", 503, False),
        ("PATCH", "pods", 0, True),
        ("DELETE", "pods", 500, False),
        ("LIST", "pods", 500, False),
    ],
)
def test_every_injected_fault_converges_without_duplicates(
    verb: str, resource: str, status: int, after_apply: bool
) -> None:
    async def scenario(h: Harness) -> None:
        h.api.fail(verb, resource, status, times=2, after_apply=after_apply)
        h.api.put(gang("a"))
        h.api.put(gang("b", workers=1))
        await h.run_for(30)
        h.api.finish("default", "b-w0-r0", exit_code=1)  # a restart: deletes and re-creates
        await h.run_for(90)
        assert h.phase("a") == "Running"
        assert h.phase("b") == "Running"
        assert names(h.job_pods("a")) == ["a-w0-r0", "a-w1-r0"]
        assert names(h.job_pods("b")) == ["b-w0-r1"]
        assert_never_overcommitted(h)

    run(scenario)


def test_a_conflicting_status_write_is_decided_again_from_a_fresh_read() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j"))
        await h.converge()
        # someone else changes the job (a label) between the operator's read and its write
        h.api.fail("PATCH", "trainingjobs/status", 409, times=1)
        h.api.finish("default", "j-w0-r0", exit_code=1)
        await h.run_for(20)
        assert h.job("j")["status"]["restarts"] == 1
        assert h.phase("j") == "Running"

    run(scenario)


# -- the cache stays true ---------------------------------------------------------------------


def test_deletions_missed_while_the_watch_was_down_are_not_phantoms() -> None:
    """Deleted while the operator could not see: a node and a pod of another workload. After the
    relist (410 Gone) the devices the phantom pod held are free and no gang goes to the gone node."""

    async def scenario(h: Harness) -> None:
        blocker = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "other", "namespace": "default"},
            "spec": {
                "nodeName": "h0",
                "containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "8"}}}],
            },
            "status": {"phase": "Running"},
        }
        for name in ("h1", "h2", "h3"):
            h.api.put(node(name).rack("r9").label("pool", "p").gpus(8).cordoned().obj())
        h.api.put(blocker)
        await h.run_for(3)
        h.api.disconnect()
        h.api.remove(blocker)
        h.api.remove("/api/v1/nodes/h3")
        for name in ("h1", "h2"):  # uncordoned: the only free room is h0 (freed) and h1, h2
            h.api.put(node(name).rack("r9").label("pool", "p").gpus(8).obj())
        h.api.reconnect(expire=True)
        await h.run_for(3)
        assert h.operator is not None
        assert "h3" not in h.operator.cache.nodes
        assert "default/other" not in h.operator.cache.pods
        assert sum(i.relists for i in h.operator.informers) >= 1
        h.api.put(gang("j", workers=3))
        await h.converge()
        assert h.phase("j") == "Running"
        assert sorted(h.job("j")["status"]["placement"]["nodes"]) == ["h0", "h1", "h2"]

    run(scenario)


def test_a_reconnected_watch_replays_what_it_missed() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j"))
        await h.converge()
        lists = h.api.requests[("LIST", "pods")]
        h.api.disconnect()
        h.api.finish("default", "j-w0-r0", exit_code=0)
        h.api.finish("default", "j-w1-r0", exit_code=0)
        h.api.reconnect(expire=False)
        await h.run_for(3)
        assert h.phase("j") == "Succeeded"
        assert h.api.requests[("LIST", "pods")] == lists  # no relist was needed

    run(scenario)


def test_a_job_recreated_under_the_same_name_never_adopts_the_old_pods() -> None:
    """Ownership is by UID: a pod of the old job that still exists (its deletion is slow) is
    neither counted, nor deleted, nor adopted by the new job."""

    async def scenario(h: Harness) -> None:
        h.api.put(gang("j", workers=1))
        await h.converge()
        old = h.job_pods("j")[0]
        old_uid = h.job("j")["metadata"]["uid"]
        # The job is deleted and re-created at once; GC has removed the old Service but the old
        # pod lingers (it is still terminating).
        h.api.objects[("corral.dev", "trainingjobs")].pop(("default", "j"))
        h.api.remove("/api/v1/namespaces/default/services/j")
        h.api.put(gang("j", workers=1))
        await h.converge()
        assert h.job("j")["metadata"]["uid"] != old_uid
        pod = h.api.obj("/api/v1/namespaces/default/pods/j-w0-r0")
        assert pod is not None and pod["metadata"]["uid"] == old["metadata"]["uid"]
        blocked = [m for who, _, reason, m in h.events if who == "j" and reason == "Blocked"]
        assert (
            blocked and "a Pod named j-w0-r0 exists and is not owned by this object" in blocked[0]
        )
        assert h.phase("j") != "Running"
        # The old pod goes (GC): the new job proceeds with a pod of its own.
        h.api.remove(pod)
        await h.run_for(30)
        assert h.phase("j") == "Running"
        new = h.job_pods("j")
        assert len(new) == 1 and new[0]["metadata"]["uid"] != old["metadata"]["uid"]

    run(scenario)


def test_a_deleted_rendezvous_service_is_created_again() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(gang("j"))
        await h.converge()
        h.api.remove("/api/v1/namespaces/default/services/j")
        await h.run_for(2)
        assert h.api.obj("/api/v1/namespaces/default/services/j") is not None
        assert h.api.requests[("POST", "services")] == 2

    run(scenario)


def test_a_service_of_the_same_name_owned_by_someone_else_blocks_with_an_event() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "j",
                    "namespace": "default",
                    "labels": {"corral.dev/job": "j"},
                },
                "spec": {"clusterIP": "None"},
            }
        )
        h.api.put(gang("j"))
        await h.run_for(10)
        assert "Blocked" in h.reasons("j")
        assert h.reasons("j").count("Blocked") == 1  # told once, not on every retry
        assert h.job_pods("j") == []  # no worker starts without its rendezvous name

    run(scenario)


def test_a_gang_never_bound_is_replaced_whole_and_its_devices_are_freed() -> None:
    """Unbound workers are deleted at once; the answer of such a delete must not bring the pod
    back into the cache after its DELETED event (a phantom holding devices for good)."""

    async def scenario(h: Harness) -> None:
        body = job("u").workers(2).gpus(8).dict()
        body["spec"]["placementTimeoutSeconds"] = 3
        body["spec"]["template"]["spec"]["schedulerName"] = "no-such-scheduler"
        h.api.put(body)
        await h.run_for(5)  # placed at 1 s, not bound by 4 s
        assert h.job("u")["status"]["attempt"] == 1
        await h.run_for(6)  # the 5 s backoff, then placed again on the same two hosts
        status = h.job("u")["status"]
        assert status["attempt"] == 1 and status.get("placement"), status
        assert names(h.job_pods("u")) == ["u-w0-r1", "u-w1-r1"]
        assert h.operator is not None
        assert sorted(h.operator.cache.pods) == ["default/u-w0-r1", "default/u-w1-r1"]

    run(scenario, fleet(hosts=2))


# -- crash safety -----------------------------------------------------------------------------


async def _lifecycle(h: Harness) -> None:
    """Two gangs placed and run, one restarted after a failure, one finishing."""
    h.api.put(gang("a"))
    h.api.put(gang("b", workers=1))
    await h.run_for(5)
    if h.crashed:
        return
    h.api.finish("default", "b-w0-r0", exit_code=1)
    await h.run_for(5)
    if h.crashed:
        return
    for name in ("a-w0-r0", "a-w1-r0"):
        if h.api.obj(f"/api/v1/namespaces/default/pods/{name}") is not None:
            h.api.finish("default", name, exit_code=0)
    await h.run_for(5)


def _count_writes() -> int:
    h = fleet()
    run(_lifecycle, h)
    return h.api.writes()


def test_killed_after_any_write_a_restarted_operator_converges() -> None:
    """Kill the operator after write k, for every k of a lifecycle, start a new one on the same
    cluster state: every job converges, one pod per index and attempt, no orphan, no overcommit."""
    total = _count_writes()
    assert total > 10
    for k in range(total):
        h = fleet()
        h.api.crash_after = k

        async def crash_then_restart(h: Harness = h, k: int = k) -> None:
            await h.start()
            await _lifecycle(h)
            assert h.crashed, f"write {k + 1} never came: the scenario is not deterministic"
            await h.stop()
            h.api.crash_after = None
            async with h.running():
                await h.run_for(40)
                for name in ("a-w0-r0", "a-w1-r0"):
                    pod = h.api.obj(f"/api/v1/namespaces/default/pods/{name}")
                    if pod is not None and pod["status"]["phase"] == "Running":
                        h.api.finish("default", name, exit_code=0)
                b = h.api.obj("/api/v1/namespaces/default/pods/b-w0-r0")
                if b is not None and b["status"]["phase"] == "Running":
                    h.api.finish("default", "b-w0-r0", exit_code=1)
                await h.run_for(40)

        asyncio.run(crash_then_restart())
        assert h.phase("a") == "Succeeded", f"crash after write {k}"
        assert h.phase("b") == "Running", f"crash after write {k}"
        pods = h.pods()
        by_job_index: dict[tuple[str, str, str], int] = {}
        for p in pods:
            labels = p["metadata"]["labels"]
            slot = (
                labels["corral.dev/job"],
                labels["corral.dev/worker-index"],
                labels["corral.dev/restart"],
            )
            by_job_index[slot] = by_job_index.get(slot, 0) + 1
            assert (
                p["metadata"]["ownerReferences"][0]["uid"]
                == h.job(labels["corral.dev/job"])["metadata"]["uid"]
            )
        assert all(count == 1 for count in by_job_index.values()), f"crash after write {k}"
        assert names(h.job_pods("b")) == ["b-w0-r1"], f"crash after write {k}"
        assert_never_overcommitted(h)
