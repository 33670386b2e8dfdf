"""The deadline spot policy with `corral run` on a real control plane: jobs with `spec.deadline`
and `spec.progress` on a pool of spot and on-demand nodes are offered the capacity the policy
chose, and each choice is one `CapacityPolicy` event saying why (docs/disruption.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from builders import node, training_job
from harness import Cluster, wait_for
from operator_support import Jobs, MakePool, RunningOperator


def deadline_job(name: str, namespace: str, pool: str, hours: float, workers: int = 1) -> Any:
    """One hour of work (1,000 steps at 1,000 per hour), 10-minute restarts, due in `hours`."""
    deadline = datetime.now(UTC) + timedelta(hours=hours)
    return (
        training_job(name, namespace)
        .workers(workers)
        .gpus(8)
        .pool(pool)
        .spec(
            deadline=deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
            capacity={"types": ["spot", "on-demand"]},
            progress={"totalSteps": 1000, "stepsPerHour": 1000, "restartOverheadSeconds": 600},
        )
        .obj()
    )


def policy_events(jobs: Jobs, name: str) -> list[str]:
    return [e["message"] for e in jobs.events(name) if e["reason"] == "CapacityPolicy"]


def test_ahead_of_the_line_runs_on_spot_too_close_a_deadline_on_on_demand_and_each_says_why(
    cluster: Cluster,
    namespace: str,
    make_pool: MakePool,
    jobs: Jobs,
    operator: RunningOperator,
) -> None:
    pool = make_pool(
        [node("spot-0").rack("r1").spot(), node("spot-1").rack("r1").spot()]
        + [node(f"od-{i}").rack("r2") for i in range(2)]
    )
    spot = {f"{pool}-spot-0", f"{pool}-spot-1"}
    # The operator decides with what its cache holds: let it see the four Ready nodes first (its
    # pool status says so), or the first decision may be "no spot" and then change, as it should.
    wait_for(
        lambda: (
            cluster.custom.get_cluster_custom_object("corral.dev", "v1alpha1", "gpupools", pool)
            .get("status", {})
            .get("readyNodes")
            == 4
        ),
        timeout=15,
        message="the operator sees the pool's nodes",
    )
    # 9 h of slack for 1 h of work: ahead of the line, spot fits -> spot.
    jobs.create(deadline_job("ahead", namespace, pool, hours=10))
    # 1 h of work due in 70 min: less than the work + 2 x restart overhead + a policy period is
    # left, so the safety net sends it to on-demand for good.
    jobs.create(deadline_job("late", namespace, pool, hours=70 / 60))
    ahead = jobs.wait_phase("ahead", "Running", timeout=30)
    late = jobs.wait_phase("late", "Running", timeout=30)

    assert set(ahead["placement"]["nodes"]) <= spot
    assert (ahead["capacity"]["type"], ahead["capacity"]["placed"]) == ("spot", "spot")
    assert not ahead["capacity"].get("committed")
    (why,) = wait_for(lambda: policy_events(jobs, "ahead"), timeout=10, message="ahead's event")
    assert "spot is available" in why

    assert not set(late["placement"]["nodes"]) & spot
    assert (late["capacity"]["type"], late["capacity"]["placed"]) == ("on-demand", "on-demand")
    assert late["capacity"]["committed"] is True
    (why,) = wait_for(lambda: policy_events(jobs, "late"), timeout=10, message="late's event")
    assert "safety net" in why and "on-demand until the end" in why

    # Ahead of the line, but the one spot node left cannot hold two workers: it waits for spot,
    # holding no pool, and says so (the free on-demand node is not taken).
    jobs.create(deadline_job("waiter", namespace, pool, hours=10, workers=2))
    placed = wait_for(
        lambda: (c := jobs.condition("waiter", "Placed")) and c["reason"] == "WaitingForSpot" and c,
        timeout=15,
        message="waiter waits for spot",
    )
    assert "waiting for spot" in placed["message"]
    status = jobs.status("waiter")
    assert status["phase"] == "Queued" and status["capacity"]["type"] == "none"
    assert "placement" not in status
