"""The operator's runtime (FakeAPI, fake clock) on termination notices: what it writes, counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.controllers.harness import Harness
from tests.controllers.test_operator import assert_never_overcommitted

from corral.disruption import notices
from corral.fleet.testing import NodeBuilder, job, node, pool
from corral.sdk import protocol

Scenario = Callable[[Harness], Awaitable[None]]


def host(name: str, rack: str = "r0") -> NodeBuilder:
    return node(name).rack(rack).label("pool", "p").gpus(8).spot()


def run(scenario: Scenario, hosts: int = 4) -> Harness:
    h = Harness(nodes=[host(f"h{i}") for i in range(hosts)], pools=[pool("p").select(pool="p")])

    async def main() -> None:
        async with h.running():
            await scenario(h)

    asyncio.run(main())
    return h


def warnings(h: Harness, name: str) -> list[str]:
    return [m for who, _, reason, m in h.events if who == name and reason == "MalformedNotice"]


def with_annotation(builder: NodeBuilder, key: str, value: str) -> dict[str, Any]:
    obj = builder.obj()
    obj["metadata"].setdefault("annotations", {})[key] = value
    return obj


def test_a_malformed_notice_is_one_warning_event_per_node() -> None:
    async def scenario(h: Harness) -> None:
        bad = host("h1").taint(notices.CORRAL_TERMINATING, "soon")
        h.api.put(bad.obj())
        await h.converge()
        assert len(warnings(h, "h1")) == 1
        assert "corral.dev/terminating='soon' is not a deadline" in warnings(h, "h1")[0]
        # Other changes of the node (a label, heartbeats) repeat nothing.
        h.api.put(bad.label("extra", "1").obj())
        await h.run_for(3)
        assert len(warnings(h, "h1")) == 1
        # A different malformed value is told again; a fixed one is not a problem.
        h.api.put(with_annotation(bad, notices.CORRAL_TERMINATING_DEADLINE, "tomorrow"))
        await h.converge()
        assert len(warnings(h, "h1")) == 2 and "tomorrow" in warnings(h, "h1")[1]
        h.api.put(host("h1").taint(notices.CORRAL_TERMINATING, "20261130T120000Z").obj())
        await h.converge()
        assert len(warnings(h, "h1")) == 2
        assert not warnings(h, "h0")

    run(scenario)


def workers_of(h: Harness, name: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in h.job_pods(name)}


async def acknowledge(h: Harness, name: str, step: int) -> str:
    """The workload acknowledges the checkpoint its pods were asked for (as corral.sdk does; the
    workload's writes are not the operator's and are not counted)."""
    pods = list(workers_of(h, name).values())
    (request,) = {p["metadata"]["annotations"][protocol.REQUESTED] for p in pods}
    for pod in pods:
        pod["metadata"]["annotations"].update(
            {protocol.COMPLETED: request, protocol.STEP: str(step), protocol.URI: f"s3://c/{step}"}
        )
        h.api.put(pod)
    return request


def test_in_place_replacement_keeps_the_other_workers_and_writes_only_what_it_must() -> None:
    async def scenario(h: Harness) -> None:
        h.api.put(job("j").workers(3).gpus(8).dict())
        await h.converge()
        assert h.phase("j") == "Running"
        status = h.job("j")["status"]
        noticed = status["placement"]["nodes"][1]
        before = {n: p["metadata"]["uid"] for n, p in workers_of(h, "j").items()}
        h.api.put(host(noticed).taint(notices.NTH_SPOT_ITN).obj())
        await h.converge()
        assert h.phase("j") == "Checkpointing"
        requests = dict(h.api.requests)
        await acknowledge(h, "j", 500)
        await h.converge()
        status = h.job("j")["status"]
        assert status["phase"] == "Running" and status["attempt"] == 0
        assert (status["interruptions"], status["restarts"]) == (1, 0)
        now = {n: p["metadata"]["uid"] for n, p in workers_of(h, "j").items()}
        assert now["j-w0-r0"] == before["j-w0-r0"] and now["j-w2-r0"] == before["j-w2-r0"]
        assert "j-w1-r0" not in now and "j-w1-r0-x1" in now
        assert status["placement"]["nodes"][1] != noticed
        new = workers_of(h, "j")["j-w1-r0-x1"]
        env = {e["name"]: e.get("value") for e in new["spec"]["containers"][0]["env"]}
        assert (
            env[protocol.RESUME_STEP_ENV] == "500" and env[protocol.RESUME_FROM_ENV] == "s3://c/500"
        )
        assert new["metadata"]["labels"]["corral.dev/replacement"] == "1"
        assert env["RANK"] == "1"
        # What the replacement cost: the old worker deleted, the new one created, nominated to
        # its node and ungated, and two status writes (the replacement, then Running again).
        grown = {k: v - requests.get(k, 0) for k, v in h.api.requests.items()}
        writes = {
            k: v for k, v in grown.items() if k[0] in ("POST", "PATCH", "DELETE", "PUT") and v
        }
        assert writes == {
            ("DELETE", "pods"): 1,
            ("POST", "pods"): 1,
            ("PATCH", "pods/status"): 1,
            ("PATCH", "pods"): 1,
            ("PATCH", "trainingjobs/status"): 2,
        }, writes
        assert_never_overcommitted(h)

    run(scenario)
