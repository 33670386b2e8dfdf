"""A hostile tenant on the local fleet (issue 9): team-b fills its namespace with jobs that once
stopped scheduling for everyone — a nodeSelector no node matches (at the highest priority), a
gang over its GPU quota, a PriorityClass that does not exist, a budget the run would blow, a
template the operator refuses, a worker larger than any node. A plain 2-worker job of team-a, created
after all of them, is Running within seconds; each poison job says why it waits or failed; the
operator never restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from builders import node, training_job
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, RunningOperator

HIGH = "e2e-hostile-high"


@pytest.fixture
def team_b(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(f"{request.node.name}-b")
    cluster.kubectl(
        "create", "quota", "gpus", "-n", name, "--hard=requests.nvidia.com/gpu=8"
    )  # fmt: skip
    cluster.kubectl("create", "priorityclass", HIGH, "--value=1000000")
    yield name
    cluster.kubectl.run("delete", "priorityclass", HIGH, "--wait=false", check=False)
    cluster.delete_namespace(name)


def test_poison_jobs_of_one_team_never_stop_a_plain_job_of_another(
    cluster: Cluster,
    namespace: str,
    team_b: str,
    make_pool: MakePool,
    jobs: Jobs,
    operator: RunningOperator,
) -> None:
    pool = make_pool([node("h1").rack("r1"), node("h2").rack("r1")])
    hostile = Jobs(cluster, team_b)
    poison = {
        # (job, the reason it must carry: Placed for the waiting ones, Failed for the rest)
        "selector": (
            training_job("selector", team_b).workers(1).gpus(1).pool(pool)
            .spec(priorityClassName=HIGH).obj(),
            ("Placed", "NoMatchingNodes"),
        ),
        "over-quota": (
            training_job("over-quota", team_b).workers(2).gpus(8).pool(pool).obj(),
            ("Placed", "QuotaExceeded"),
        ),
        "no-class": (
            training_job("no-class", team_b).workers(1).gpus(8).pool(pool)
            .spec(priorityClassName="platinum").obj(),
            ("Placed", "PriorityClassNotFound"),
        ),
        "budget": (
            training_job("budget", team_b).workers(1).gpus(8).pool(pool)
            .spec(budget={"deviceHours": 1, "expectedDurationSeconds": 3600}).obj(),
            ("Placed", "BudgetExceeded"),
        ),
        "reserved-env": (
            training_job("reserved-env", team_b).workers(1).gpus(8).pool(pool).obj(),
            ("Failed", "InvalidSpec"),
        ),
        "too-big": (  # within the quota (GPUs only), but no node has 5,000 cores
            training_job("too-big", team_b).workers(1).gpus(8).pool(pool).obj(),
            ("Failed", "Unschedulable"),
        ),
    }  # fmt: skip
    selector = poison["selector"][0]
    selector["spec"]["template"]["spec"]["nodeSelector"] = {"gpu": "does-not-exist"}
    env = poison["reserved-env"][0]["spec"]["template"]["spec"]["containers"][0]
    env["env"] = [{"name": "RANK", "value": "0"}]
    too_big = poison["too-big"][0]["spec"]["template"]["spec"]["containers"][0]
    too_big["resources"]["requests"]["cpu"] = "5000"
    for body, _ in poison.values():
        hostile.create(body)

    started = time.monotonic()
    jobs.create(training_job("plain", namespace).workers(2).gpus(8).pool(pool).obj())
    jobs.wait_phase("plain", "Running", timeout=30)
    running_after = time.monotonic() - started

    for name, (_, (type_, reason)) in poison.items():
        condition = wait_for(
            lambda name=name, type_=type_: hostile.condition(name, type_),
            timeout=30,
            message=f"{type_} condition on {name}",
        )
        assert condition["reason"] == reason, (name, condition)
        assert condition["message"], name
        assert not hostile.pods(name), f"{name} got pods"
    assert hostile.phase("selector") == "Queued"
    assert (
        "nodeSelector gpu=does-not-exist not matched"
        in hostile.condition("selector", "Placed")["message"]
    )
    assert "the gang needs 16, 8 left of 8" in hostile.condition("over-quota", "Placed")["message"]

    assert operator.process.returncode is None, "the operator exited"
    assert "Traceback" not in operator.process.logs()
    print(f"plain job Running {running_after:.1f} s after it was created, behind 6 poison jobs")
