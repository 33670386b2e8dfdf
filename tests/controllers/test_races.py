"""Reservations and lost races, through the whole runtime against the in-memory API: workers are
nominated through pods/status before they are ungated, and a gang whose planned room is taken is
re-placed whole at once — never left partly bound, never waiting for placementTimeoutSeconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.controllers.harness import Harness

from corral import metrics
from corral.fleet.testing import job, node, pod, pool

Scenario = Callable[[Harness], Awaitable[None]]


def fleet() -> Harness:
    return Harness(
        nodes=[node(f"h{i}").rack(f"r{i // 2}").label("pool", "p").gpus(8) for i in range(4)],
        pools=[pool("p").select(pool="p")],
    )


def run(scenario: Scenario) -> Harness:
    harness = fleet()

    async def main() -> None:
        async with harness.running():
            await scenario(harness)

    asyncio.run(main())
    return harness


def races() -> float:
    return metrics.REGISTRY.get_sample_value("corral_gang_races_total", {"pool": "p"}) or 0.0


def gang(name: str = "j") -> dict[str, Any]:
    body = job(name).workers(2).gpus(8).dict()
    body["spec"]["placementTimeoutSeconds"] = 600  # a lost race must not wait for this
    return body


def planned(h: Harness, name: str = "j") -> list[str]:
    return list(h.job(name)["status"]["placement"]["nodes"])


def test_workers_are_nominated_to_their_nodes_once_before_they_are_ungated() -> None:
    async def scenario(h: Harness) -> None:
        h.actors = False  # kube-scheduler and the kubelet stay away: look at the gated gang
        h.api.put(gang())
        await h.converge()
        pods = sorted(h.job_pods("j"), key=lambda p: p["metadata"]["name"])
        assert [p["status"].get("nominatedNodeName") for p in pods] == planned(h)
        assert all(not p["spec"].get("schedulingGates") for p in pods)  # then ungated
        assert h.api.requests[("PATCH", "pods/status")] == 2  # one nomination per worker
        # Each nomination may follow its own pod's create at once, but no worker is ungated
        # before every worker exists and is nominated.
        writes = [(verb, path) for verb, path in h.api.log if "/pods" in path and verb != "GET"]
        ungates = [
            i
            for i, (verb, path) in enumerate(writes)
            if verb == "PATCH" and not path.endswith("/status")
        ]
        others = [
            i for i, (verb, path) in enumerate(writes) if verb == "POST" or path.endswith("/status")
        ]
        assert len(ungates) == 2 and len(others) == 4
        assert max(others) < min(ungates), writes
        h.actors = True
        await h.converge()
        assert h.phase("j") == "Running"
        assert h.api.requests[("PATCH", "pods/status")] == 2  # never written again

    run(scenario)


def test_a_worker_that_cannot_bind_re_places_the_whole_gang_at_once() -> None:
    before = races()

    async def scenario(h: Harness) -> None:
        h.actors = False
        h.api.put(gang())
        await h.converge()
        first = planned(h)
        # Another workload's pod lands on a planned node between the ungate and the bind.
        h.api.put(pod("intruder", "web").on(first[1]).gpus(8).obj())
        h.api.schedule()  # kube-scheduler: worker 0 binds, worker 1 is Unschedulable
        h.api.start()
        await h.settle()

        # At once: the bound worker 0 is released, and the next attempt is already planned.
        status = h.job("j")["status"]
        assert status["attempt"] == 1
        old = [p for p in h.job_pods("j") if p["metadata"]["name"].endswith("-r0")]
        assert old and all(p["metadata"].get("deletionTimestamp") for p in old)
        h.actors = True
        await h.converge()  # no clock advance: not the 600 s timeout, not a backoff
        assert h.phase("j") == "Running"
        again = planned(h)
        assert first[1] not in again
        [message] = [m for who, _, reason, m in h.events if who == "j" and reason == "RaceLost"]
        assert f"worker 1 cannot bind to node {first[1]}" in message
        assert "Insufficient nvidia.com/gpu" in message
        assert f"node {first[1]} now holds web/intruder" in message
        assert races() == before + 1

    run(scenario)


def test_room_taken_before_the_ungate_re_places_without_binding_anything() -> None:
    async def scenario(h: Harness) -> None:
        h.actors = False
        # The nominations fail for now: the operator stops before ungating and retries later.
        failing = h.api.fail("PATCH", "pods/status", 500, times=1000)
        h.api.put(gang())
        await h.settle()
        first = planned(h)
        assert all(p["spec"].get("schedulingGates") for p in h.job_pods("j"))
        # Meanwhile another scheduler nominates its own pod to a planned node.
        h.api.put(pod("theirs", "batch").nominated(first[0]).gpus(8).obj())
        failing.times = 0
        h.clock.advance(5)
        await h.settle()

        assert h.job("j")["status"]["attempt"] == 1
        assert not [p for p in h.job_pods("j") if p["metadata"]["name"].endswith("-r0")]
        # The only ungates were of the new attempt's workers: attempt 0 never bound anything.
        ungated = [p for p in h.job_pods("j") if not p["spec"].get("schedulingGates")]
        assert h.api.requests[("PATCH", "pods")] == len(ungated)
        h.actors = True
        await h.converge()
        assert h.phase("j") == "Running"
        assert first[0] not in planned(h)
        assert "RaceLost" in h.reasons("j")

    run(scenario)


def test_without_the_pods_status_permission_the_gang_still_binds_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A chart older than the operator (no patch on pods/status): nominations are refused, the
    gang binds unprotected, one warning says what to grant, and nothing retries for ever."""
    caplog.set_level("WARNING", logger="corral.executor")

    async def scenario(h: Harness) -> None:
        h.api.fail("PATCH", "pods/status", 403, times=1_000_000)
        h.api.put(gang())
        await h.converge()
        assert h.phase("j") == "Running"
        tried = h.api.requests[("PATCH", "pods/status")]
        assert 2 <= tried <= 4  # at creation, and once more just before the ungate
        await h.run_for(120)
        assert h.api.requests[("PATCH", "pods/status")] == tried

    run(scenario)
    warnings = [r.getMessage() for r in caplog.records if "pods/status" in r.getMessage()]
    assert len(warnings) == 1
    assert "grant patch on pods/status" in warnings[0]
