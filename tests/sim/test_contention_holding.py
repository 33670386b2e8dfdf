"""The simulator and the operator read the same demand between pools: running gangs count.

The simulator's cluster once gave the pass only the waiting jobs, so the pools' contention left
out every gang holding capacity, which the operator counts: a flexible job could go to another
pool in the simulator than on the cluster. Both clusters now answer `holding_jobs()`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.controllers.harness import Harness

from corral.fleet.testing import NodeBuilder, PoolBuilder, job, node, pool
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
PRODUCT = "nvidia.com/gpu.product"


def nodes() -> list[NodeBuilder]:
    # t4: 16 devices on two hosts; g2: 8 on one. A 2-device job that takes either weighs 1/16
    # on each t4 device and 1/8 on each g2 one: alone, t4 is the less contended pool.
    return [
        *(node(f"t4-{i}").label(PRODUCT, "T4").label("pool", "t4").gpus(8) for i in range(2)),
        node("g2-0").label(PRODUCT, "G2").label("pool", "g2").gpus(8),
    ]


def pools() -> list[PoolBuilder]:
    return [
        pool("t4").select(pool="t4").accelerator("T4"),
        pool("g2").select(pool="g2").accelerator("G2"),
    ]


RUNNING = job("busy").workers(1).gpus(8).accelerator("T4").dict()  # holds 8 of t4's 16
FLEXIBLE = job("any").workers(1).gpus(2).accelerator("T4", "G2").dict()


def test_the_simulator_counts_the_gangs_that_hold_capacity() -> None:
    c = InMemoryCluster([n.obj() for n in nodes()], [p.obj() for p in pools()])
    c.submit(RUNNING, T0)
    c.settle(T0)
    c.start_bound(T0)
    c.settle(T0)
    assert [r.key for r in c.holding_jobs()] == ["default/busy"]
    c.submit(FLEXIBLE, T0)
    c.settle(T0)
    # With busy's 8 devices t4 weighs 9/16 per device, g2 1/8: any goes to g2.
    assert c.jobs["default/any"]["status"]["placement"]["pool"] == "g2"


def test_the_operator_makes_the_same_choice() -> None:
    h = Harness(nodes=nodes(), pools=pools())

    async def scenario() -> None:
        async with h.running():
            h.api.put(RUNNING)
            await h.converge()
            assert h.phase("busy") == "Running"
            h.api.put(FLEXIBLE)
            await h.converge()
            assert h.job("any")["status"]["placement"]["pool"] == "g2"

    asyncio.run(scenario())
