"""The scheduling pass and the lifecycle driven through the in-memory cluster (no API, no clock):
the ledger never double-books and never leaks, whatever happens to a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.fleet.testing import job, node, pool
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, tzinfo=UTC)
GPU = "nvidia.com/gpu"


def cluster(hosts: int = 4) -> InMemoryCluster:
    return InMemoryCluster(
        [node(f"h{i}").rack(f"r{i // 2}").label("pool", "p").gpus(8).obj() for i in range(hosts)],
        [pool("p").select(pool="p").obj()],
    )


def used(c: InMemoryCluster) -> int:
    return sum(amounts.get(GPU, 0) for amounts in c.snapshot.usage.values())


def test_two_gangs_of_one_pass_never_get_the_same_devices() -> None:
    c = cluster()
    c.submit(job("a").workers(2).gpus(8).dict(), T0)
    c.submit(job("b").workers(2).gpus(8).dict(), T0)
    assert sorted(c.run_pass(T0)) == ["default/a", "default/b"]
    a = set(c.jobs["default/a"]["status"]["placement"]["nodes"])
    b = set(c.jobs["default/b"]["status"]["placement"]["nodes"])
    assert not a & b
    assert used(c) == 32  # both plans are counted before any pod exists


def test_a_job_deleted_before_its_pods_exist_frees_its_plan() -> None:
    c = cluster()
    c.submit(job("a").workers(4).gpus(8).dict(), T0)
    c.run_pass(T0)
    assert used(c) == 32
    c.delete_job("default/a")
    assert used(c) == 0


def test_a_replaced_gang_releases_its_old_plan() -> None:
    c = cluster()
    c.submit(job("a").workers(2).gpus(8).dict(), T0)
    c.run_pass(T0)
    planned = c.jobs["default/a"]["status"]["placement"]["nodes"]
    # the planned node is cordoned before the workers bind: the whole gang is re-placed
    c.snapshot.upsert_node(node(planned[1]).label("pool", "p").gpus(8).cordoned().obj())
    c.reconcile("default/a", T0)
    assert c.jobs["default/a"]["status"]["attempt"] == 1
    c.settle(T0 + timedelta(seconds=10))
    assert used(c) == 16, "the first attempt's plan left the ledger"
    assert c.jobs["default/a"]["status"]["phase"] in ("Placing", "Running")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["submit", "finish", "fail", "delete"]), st.integers(0, 5)),
        max_size=25,
    )
)
def test_the_ledger_always_equals_what_plans_and_pods_hold(ops: list[tuple[str, int]]) -> None:
    c = cluster(hosts=6)
    now = T0
    for op, n in ops:
        now += timedelta(seconds=30)
        key = f"default/j{n}"
        if op == "submit" and key not in c.jobs:
            c.submit(job(f"j{n}").workers(1 + n % 3).gpus(8).dict(), now)
        elif op == "delete":
            c.delete_job(key)
        elif op in ("finish", "fail"):
            for pod in list(c.pods.values()):
                if (
                    pod["metadata"]["labels"]["corral.dev/job"] == f"j{n}"
                    and pod["status"]["phase"] == "Running"
                ):
                    c.finish("default", pod["metadata"]["name"], 0 if op == "finish" else 1, now)
        c.settle(now)
        c.start_bound(now)
        c.settle(now)
        # what the snapshot counts == active pods + planned workers not created yet
        expected = 0
        for obj in c.jobs.values():
            status = obj.get("status") or {}
            placement = status.get("placement")
            if placement and status.get("phase") not in ("Succeeded", "Failed"):
                prefix = f"{obj['metadata']['name']}-w"
                made = [
                    p
                    for p in c.pods.values()
                    if p["metadata"]["name"].startswith(prefix)
                    and p["metadata"]["name"].endswith(f"-r{status.get('attempt', 0)}")
                ]
                expected += 8 * (len(placement["nodes"]) - len(made))
        expected += sum(
            8 for p in c.pods.values() if p["status"]["phase"] not in ("Succeeded", "Failed")
        )
        assert used(c) == expected
        for name, amounts in c.snapshot.usage.items():
            assert amounts.get(GPU, 0) <= 8, f"{name} overcommitted"
