"""The scheduling pass applies the economics: a job's placementObjective picks the pool, and a
carbon-deferred job waits, visibly, holding no pool (the pass on the in-memory cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.fleet.testing import job, node, pool
from corral.sim.memory import InMemoryCluster

NIGHT = [100.0] * 6 + [400.0] * 12 + [100.0] * 6
MORNING = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def cluster() -> InMemoryCluster:
    nodes = [node(f"h{i}").label("pool", "p").gpus(8).obj() for i in range(2)]
    return InMemoryCluster(nodes, [pool("p").select(pool="p").hourly_carbon(NIGHT).obj()])


def flexible(name: str, deadline: str) -> dict[str, object]:
    body = job(name).gpus(8).dict()
    body["spec"]["deadline"] = deadline
    body["spec"]["carbonDeferral"] = {"expectedDurationSeconds": 3600}
    return body


def condition(c: InMemoryCluster, key: str) -> dict[str, str]:
    status = c.jobs[key]["status"]
    return next(x for x in status["conditions"] if x["type"] == "Placed")


def test_a_deferred_job_says_why_and_until_when_and_holds_no_pool() -> None:
    c = cluster()
    key = c.submit(flexible("late", "2026-12-02T06:00:00Z"), MORNING)
    eager = c.submit(job("now").gpus(8).dict(), MORNING + timedelta(seconds=1))
    c.settle(MORNING + timedelta(seconds=1))
    status = c.jobs[key]["status"]
    assert status["phase"] == "Queued"
    assert status["deferredUntil"] == "2026-12-01T18:00:00Z"
    placed = condition(c, key)
    assert placed["reason"] == "CarbonDeferred"
    assert "pool p from 2026-12-01T18:00Z averages 100 gCO2e/kWh" in placed["message"]
    assert [e.reason for k, e in c.recorded.events if k == key] == ["CarbonDeferred"]
    # created after it, the eager job is not held behind it: a deferred job holds no pool
    assert c.jobs[eager]["status"]["phase"] == "Placing"
    assert c.due[key] == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    c.settle(datetime(2026, 12, 1, 18, 0, tzinfo=UTC))
    status = c.jobs[key]["status"]
    assert status["phase"] == "Placing" and "deferredUntil" not in status


def test_a_job_past_its_latest_start_is_placed_at_once() -> None:
    c = cluster()
    key = c.submit(flexible("tight", "2026-12-01T10:00:00Z"), MORNING)
    c.settle(MORNING)
    assert c.jobs[key]["status"]["phase"] == "Placing"


def test_cost_per_work_is_applied_by_the_pass() -> None:
    h100 = pool("h100").select(pool="h").pricing(4.0).power(700, peak_tflops=989)
    a100 = pool("a100").select(pool="a").pricing(1.5).accelerator("A100").power(400, 312)
    nodes = [
        node("h0").label("pool", "h").gpus(8).obj(),
        node("a0").label("pool", "a").gpus(8).obj(),
    ]
    c = InMemoryCluster(nodes, [h100.obj(), a100.obj()])
    body = job("j").gpus(8).dict()
    body["spec"]["placementObjective"] = "CostPerWork"
    key = c.submit(body, MORNING)
    c.settle(MORNING)
    assert c.jobs[key]["status"]["placement"]["pool"] == "h100"
    assert (
        "placementObjective CostPerWork: h100 has the lowest price per unit"
        in condition(c, key)["message"]
    )
