"""The deadline spot policy applied to waiting TrainingJobs (`spec.deadline` with `spec.progress`):
each placement is offered spot, on-demand, or nothing yet, as `corral.disruption.policy` decides
from the job's progress against the straight line to its deadline. Driven through the in-memory
cluster (the operator's own pass and lifecycle; no API, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.api.conditions import get_condition
from corral.api.trainingjob import CapacityStatus, TrainingJobSpec, TrainingJobStatus
from corral.fleet.testing import NodeBuilder, job, node, pool
from corral.sim.memory import InMemoryCluster
from corral.training import capacity

T0 = datetime(2026, 11, 30, tzinfo=UTC)
KEY = "default/d"


def host(name: str, kind: str, cordoned: bool = False) -> dict[str, Any]:
    builder: NodeBuilder = node(name).rack("r0").label("pool", "p").gpus(8)
    builder = builder.spot() if kind == "spot" else builder.on_demand()
    return (builder.cordoned() if cordoned else builder).obj()


def cluster(spot_up: bool = True) -> InMemoryCluster:
    nodes = [host(f"s{i}", "spot", cordoned=not spot_up) for i in range(2)]
    nodes += [host(f"o{i}", "on-demand") for i in range(2)]
    return InMemoryCluster(nodes, [pool("p").select(pool="p").obj()])


def deadline_job(
    hours: float = 10.0, steps_per_hour: float | None = 200.0, name: str = "d"
) -> dict[str, Any]:
    """1000 steps: 5 h of work at 200 steps/h, so 5 h of slack in 10 h (tolerance 2.5 h)."""
    obj = job(name).workers(2).gpus(8).capacity("spot", "on-demand").dict()
    progress: dict[str, Any] = {"totalSteps": 1000, "restartOverheadSeconds": 600}
    if steps_per_hour is not None:
        progress["stepsPerHour"] = steps_per_hour
    obj["spec"]["deadline"] = (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    obj["spec"]["progress"] = progress
    return obj


def status(c: InMemoryCluster, key: str = KEY) -> TrainingJobStatus:
    return TrainingJobStatus.model_validate(c.jobs[key]["status"])


def placed_on(c: InMemoryCluster, key: str = KEY) -> set[str]:
    placement = c.jobs[key]["status"].get("placement")
    return {name[0] for name in placement["nodes"]} if placement else set()


def policy_events(c: InMemoryCluster) -> list[str]:
    return [e.message for key, e in c.recorded.events if e.reason == "CapacityPolicy"]


@pytest.mark.parametrize(
    ("spot_up", "submitted_hours_ago", "expected", "where"),
    [
        pytest.param(True, 0.0, "spot", {"s"}, id="spot available: spot"),
        pytest.param(False, 0.0, "none", set(), id="no spot, on the line: wait"),
        pytest.param(False, 3.0, "on-demand", {"o"}, id="no spot, 3 h behind: on-demand"),
        pytest.param(True, 4.7, "on-demand", {"o"}, id="safety net: on-demand though spot is up"),
    ],
)
def test_the_policy_chooses_what_the_gang_is_offered(
    spot_up: bool, submitted_hours_ago: float, expected: str, where: set[str]
) -> None:
    c = cluster(spot_up)
    c.submit(deadline_job(), T0)
    now = T0 + timedelta(hours=submitted_hours_ago)
    c.run_pass(now)
    chosen = status(c).capacity
    assert chosen is not None and chosen.type == expected, chosen
    assert placed_on(c) == where
    assert len(policy_events(c)) == 1  # one event saying why
    if expected == "none":
        placed = get_condition(status(c).conditions, "Placed")
        assert placed is not None and placed.reason == "WaitingForSpot"
        assert status(c).phase == "Queued"
    else:
        assert chosen.placed == expected
    assert chosen.committed == (submitted_hours_ago == 4.7)


def test_a_job_waiting_for_spot_holds_no_pool_and_writes_nothing_new_while_it_waits() -> None:
    c = cluster(spot_up=False)
    c.submit(deadline_job(), T0)
    c.submit(job("other").workers(2).gpus(8).dict(), T0 + timedelta(seconds=1))
    c.settle(T0 + timedelta(seconds=1))
    assert placed_on(c) == set()
    assert placed_on(c, "default/other") == {"o"}, "a later job is not held behind it"
    writes = c.recorded.writes
    c.run_pass(T0 + timedelta(minutes=10))
    assert c.recorded.writes == writes
    assert len(policy_events(c)) == 1


def test_a_waiting_job_that_falls_behind_goes_to_on_demand_with_an_event() -> None:
    c = cluster(spot_up=False)
    c.submit(deadline_job(), T0)
    c.run_pass(T0)
    c.run_pass(T0 + timedelta(hours=2.6))
    assert placed_on(c) == {"o"}
    assert status(c).capacity.type == "on-demand"  # type: ignore[union-attr]
    events = policy_events(c)
    assert len(events) == 2 and "behind the line" in events[1], events


def test_without_a_rate_the_job_is_placed_as_its_spec_allows_and_says_why() -> None:
    c = cluster(spot_up=False)
    c.submit(deadline_job(steps_per_hour=None), T0)
    c.run_pass(T0)
    chosen = status(c).capacity
    assert chosen is not None and "no steps-per-hour estimate" in chosen.reason
    assert (chosen.type, chosen.placed) == ("any", "on-demand")
    assert placed_on(c) == {"o"}
    assert chosen.rate_time == T0, "the learned rate counts from the gang's start"


def test_jobs_without_a_deadline_or_a_choice_of_capacity_are_left_alone() -> None:
    c = cluster(spot_up=False)
    plain = job("plain").workers(1).gpus(8).capacity("spot", "on-demand").dict()
    spot_only = deadline_job(name="spotonly")
    spot_only["spec"]["capacity"] = {"types": ["spot"]}
    c.submit(plain, T0)
    c.submit(spot_only, T0)
    c.run_pass(T0)
    assert status(c, "default/plain").capacity is None
    assert status(c, "default/spotonly").capacity is None


def spec_and_status(**capacity_fields: Any) -> tuple[TrainingJobSpec, TrainingJobStatus]:
    spec = TrainingJobSpec.model_validate(deadline_job(steps_per_hour=None)["spec"])
    fields = {"type": "spot", "reason": "", "since": T0, **capacity_fields}
    return spec, TrainingJobStatus(capacity=CapacityStatus.model_validate(fields))


def test_the_rate_is_learned_from_checkpoints_counted_from_the_gang_s_start() -> None:
    spec, before = spec_and_status(rate_step=100, rate_time=T0)
    learned = capacity.learn(spec, before, 300, T0 + timedelta(hours=1))
    assert learned is not None and learned.steps_per_hour == pytest.approx(200.0)
    again = capacity.learn(
        spec, before.model_copy(update={"capacity": learned}), 450, T0 + timedelta(hours=2)
    )
    assert again is not None and again.steps_per_hour == pytest.approx(0.7 * 200 + 0.3 * 150)
    # a rate in the spec wins: nothing is learned
    spec.progress.steps_per_hour = 50.0  # type: ignore[union-attr]
    assert capacity.learn(spec, before, 300, T0 + timedelta(hours=1)) == before.capacity
