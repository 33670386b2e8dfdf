"""A running gang under the deadline spot policy moves between spot and on-demand when the policy
changes its mind: a checkpoint first, then the whole gang re-placed on the other capacity,
counted as an interruption of kind CapacityPolicy (never a restart), one event saying why, and
no flapping. The operator's runtime against the fake API on a fake clock, every request counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.controllers.harness import Harness
from tests.controllers.test_operator import assert_never_overcommitted
from tests.disruption.test_operator_notices import acknowledge, workers_of

from corral.fleet.testing import NodeBuilder, job, node, pool
from corral.sdk import protocol

HOUR = 3600.0


def host(name: str, kind: str, cordoned: bool = False) -> NodeBuilder:
    builder = node(name).rack("r0").label("pool", "p").gpus(8)
    builder = builder.spot() if kind == "spot" else builder.on_demand()
    return builder.cordoned() if cordoned else builder


def run(scenario: Callable[[Harness], Awaitable[None]], spot_up: bool = True) -> Harness:
    nodes = [host(f"s{i}", "spot", cordoned=not spot_up) for i in range(2)]
    nodes += [host(f"o{i}", "on-demand") for i in range(2)]
    h = Harness(nodes=nodes, pools=[pool("p").select(pool="p")])

    async def main() -> None:
        async with h.running():
            await scenario(h)

    asyncio.run(main())
    return h


def deadline_job(h: Harness) -> dict[str, Any]:
    """1,000 steps at 200 per hour: 5 h of work due in 10 h; 10-minute restarts; no periodic
    checkpoints (the test asks for none but the policy's)."""
    body = job("j").workers(2).gpus(8).capacity("spot", "on-demand").dict()
    deadline = h.clock.now() + timedelta(hours=10)
    body["spec"]["deadline"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["spec"]["progress"] = {"totalSteps": 1000, "stepsPerHour": 200}
    body["spec"]["checkpoint"] = {"intervalSeconds": 0}
    return body


def kinds(h: Harness) -> set[str]:
    nodes = h.job("j")["status"]["placement"]["nodes"]
    return {name[0] for name in nodes}


def policy_events(h: Harness) -> list[str]:
    return [m for who, _, reason, m in h.events if who == "j" and reason == "CapacityPolicy"]


def writes_since(h: Harness, before: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    grown = {k: v - before.get(k, 0) for k, v in h.api.requests.items()}
    return {k: v for k, v in grown.items() if k[0] in ("POST", "PATCH", "DELETE", "PUT") and v}


async def advance(h: Harness, seconds: float) -> None:
    """Time passes in one jump (the operator's timers all fire), then everything settles."""
    h.clock.advance(seconds)
    await h.converge()


def requested(h: Harness) -> set[str | None]:
    return {
        p["metadata"].get("annotations", {}).get(protocol.REQUESTED)
        for p in workers_of(h, "j").values()
    }


def test_the_safety_net_moves_a_running_gang_from_spot_to_on_demand_for_good() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(deadline_job(h))
        await h.converge()
        assert h.phase("j") == "Running" and kinds(h) == {"s"}
        assert len(policy_events(h)) == 1  # placed on spot, said why
        # 4.6 h in, no checkpoint yet: 5.4 h left < 5 h of work + 2 x 10 min + a policy period.
        await advance(h, 4.6 * HOUR)
        status = h.job("j")["status"]
        assert status["phase"] == "Checkpointing"
        assert (status["capacity"]["type"], status["capacity"]["placed"]) == ("on-demand", "spot")
        assert status["capacity"]["committed"] is True
        (request,) = requested(h)
        assert request is not None and request.endswith("-policy")
        before = dict(h.api.requests)
        await acknowledge(h, "j", 100)
        await h.converge()
        status = h.job("j")["status"]
        assert h.phase("j") == "Running" and kinds(h) == {"o"}
        assert (status["interruptions"], status["restarts"], status["attempt"]) == (1, 0, 1)
        restart = status["lastRestart"]
        assert (restart["reason"], restart["source"], restart["lostWorkSeconds"]) == (
            "CapacityPolicy",
            "policy",
            0,
        )
        assert "moving the gang from spot to on-demand: safety net" in restart["message"]
        assert status["capacity"]["placed"] == "on-demand"
        assert status["lastCheckpoint"]["step"] == 100
        env = workers_of(h, "j")["j-w0-r1"]["spec"]["containers"][0]["env"]
        assert {"name": protocol.RESUME_STEP_ENV, "value": "100"} in env
        (moved,) = policy_events(h)[1:]  # one event for the move, saying why
        assert "Interruption 1 (CapacityPolicy)" in moved and "safety net" in moved
        # What the move cost: two old workers deleted, two new ones created, nominated and
        # ungated, and three status writes (the checkpoint read back and the gang ended, the
        # new placement, Running again).
        assert writes_since(h, before) == {
            ("PATCH", "trainingjobs/status"): 3,
            ("DELETE", "pods"): 2,
            ("POST", "pods"): 2,
            ("PATCH", "pods/status"): 2,
            ("PATCH", "pods"): 2,
        }, writes_since(h, before)
        # Even far ahead of the line afterwards, it stays on on-demand: no flapping.
        await acknowledge_new_checkpoint(h, 950)
        before = dict(h.api.requests)
        for _ in range(4):
            await advance(h, 0.25 * HOUR)
        assert kinds(h) == {"o"} and h.job("j")["status"]["interruptions"] == 1
        assert len(policy_events(h)) == 2
        assert ("DELETE", "pods") not in writes_since(h, before)
        assert_never_overcommitted(h)

    run(scenario)


async def acknowledge_new_checkpoint(h: Harness, step: int) -> None:
    """A checkpoint the workload made on its own schedule, asked through checkpoint-now."""
    body = h.job("j")
    body["metadata"].setdefault("annotations", {})["corral.dev/checkpoint-now"] = (
        h.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    h.api.put(body)
    await h.converge()
    await acknowledge(h, "j", step)
    await h.converge()
    assert h.job("j")["status"]["lastCheckpoint"]["step"] == step


@pytest.mark.parametrize(
    ("spot_back", "step", "moves"),
    [
        pytest.param(True, 900, True, id="ahead by more than the hysteresis, spot fits: spot"),
        pytest.param(False, 900, False, id="ahead, but spot does not fit: stays"),
        pytest.param(True, 360, False, id="ahead by less than the hysteresis: stays"),
    ],
)
def test_an_on_demand_gang_well_ahead_of_the_line_moves_to_spot_when_it_fits(
    spot_back: bool, step: int, moves: bool
) -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(deadline_job(h))
        await h.converge()
        assert h.phase("j") == "Queued"  # no spot, on the line: waits for spot
        # 3 h later it is 3 h behind (tolerance: half the 5 h slack): on-demand.
        await advance(h, 3 * HOUR)
        assert h.phase("j") == "Running" and kinds(h) == {"o"}
        # At 3.5 h the workload has done `step` of 1,000 steps: 900 (4.5 h of work at 200 per
        # hour) is 5.5 h ahead of the line (work / (5 h / 10 h) - 3.5 h), 360 is 0.1 h ahead;
        # the hysteresis is 2 x 10 min.
        await advance(h, 0.5 * HOUR)
        await acknowledge_new_checkpoint(h, step)
        assert h.phase("j") == "Running" and kinds(h) == {"o"}, "no spot yet"
        if spot_back:
            for i in range(2):
                h.api.put(host(f"s{i}", "spot").obj())
        await advance(h, 60)  # the next look at the running gang (the usage refresh)
        if not moves:
            status = h.job("j")["status"]
            assert h.phase("j") == "Running" and kinds(h) == {"o"}
            assert status["interruptions"] == 0 and status["capacity"]["type"] == "on-demand"
            before = dict(h.api.requests)
            await advance(h, 600)
            assert not writes_since(h, before).get(("PATCH", "trainingjobs/status"), 0) > 1
            return
        assert h.phase("j") == "Checkpointing"
        (request,) = requested(h)
        assert request is not None and request.endswith("-policy")
        await acknowledge(h, "j", step + 10)
        await h.converge()
        status = h.job("j")["status"]
        assert h.phase("j") == "Running" and kinds(h) == {"s"}
        assert (status["interruptions"], status["restarts"]) == (1, 0)
        assert status["lastRestart"]["reason"] == "CapacityPolicy"
        assert "from on-demand to spot" in status["lastRestart"]["message"]
        assert "ahead of the line" in status["lastRestart"]["message"]
        assert status["lastCheckpoint"]["step"] == step + 10
        assert not status["capacity"]["committed"]
        # On spot it stays while spot is there: only the safety net could take it back.
        await advance(h, 0.5 * HOUR)
        assert kinds(h) == {"s"} and h.job("j")["status"]["interruptions"] == 1

    run(scenario, spot_up=False)


def test_a_move_whose_checkpoint_is_never_acknowledged_goes_after_the_timeout_with_lost_work() -> (
    None
):
    async def scenario(h: Harness) -> None:
        h.api.put(deadline_job(h))
        await h.converge()
        await advance(h, 4.6 * HOUR)
        assert h.phase("j") == "Checkpointing"
        await advance(h, 30)
        assert h.phase("j") == "Checkpointing", "waits up to checkpoint.timeoutSeconds (90 s)"
        await advance(h, 61)
        status = h.job("j")["status"]
        assert h.phase("j") == "Running" and kinds(h) == {"o"}
        assert status["lastRestart"]["reason"] == "CapacityPolicy"
        assert status["lastRestart"]["lostWorkSeconds"] > 4 * HOUR
        assert "did not acknowledge checkpoint" in status["lastRestart"]["message"]

    run(scenario)


def test_until_the_rate_is_known_the_choice_reads_any_then_the_first_decision_is_told() -> None:
    async def scenario(h: Harness) -> None:
        body = deadline_job(h)
        del body["spec"]["progress"]["stepsPerHour"]
        h.api.put(body)
        await h.converge()
        capacity = h.job("j")["status"]["capacity"]
        assert h.phase("j") == "Running" and kinds(h) == {"o"}
        assert (capacity["type"], capacity["placed"]) == ("any", "on-demand")
        assert "no steps-per-hour estimate yet" in capacity["reason"]
        assert policy_events(h) == []
        before = dict(h.api.requests)
        await advance(h, 0.5 * HOUR)
        assert writes_since(h, before).get(("PATCH", "trainingjobs/status"), 0) <= 1, "usage only"
        await acknowledge_new_checkpoint(h, 100)  # 100 steps in 0.5 h: 200 per hour
        capacity = h.job("j")["status"]["capacity"]
        assert capacity["stepsPerHour"] == 200
        assert (capacity["type"], capacity["placed"]) == ("on-demand", "on-demand")
        (told,) = policy_events(h)
        assert told.startswith("staying on on-demand: no spot")

    run(scenario, spot_up=False)
