"""The work queue: one owner per key, deduplicated adds, delayed adds."""

from __future__ import annotations

import asyncio

from corral.controllers.clock import FakeClock
from corral.controllers.workqueue import WorkQueue


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_adds_of_a_waiting_key_collapse() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        for key in ["a", "b", "a", "a"]:
            queue.add(key)
        got = [await queue.get(), await queue.get()]
        assert len(queue) == 0
        return got

    assert run(scenario()) == ["a", "b"]


def test_a_key_added_while_processing_runs_again_after() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a")  # news arrived during the reconcile
        assert len(queue) == 0, "not handed to a second worker while the first holds it"
        queue.done(key)
        return [await asyncio.wait_for(queue.get(), 1)]

    assert run(scenario()) == ["a"]


def test_delayed_adds_arrive_in_order_of_their_time() -> None:
    async def scenario() -> list[str]:
        clock = FakeClock()
        queue = WorkQueue(clock)
        timers = asyncio.create_task(queue.run_timers())
        queue.add_after("late", 0.2)
        queue.add_after("soon", 0.05)
        await settle()
        assert len(queue) == 0  # nothing is due before the clock moves
        clock.advance(0.1)
        await settle()
        got = [queue.get_nowait()]
        clock.advance(0.1)
        await settle()
        got.append(queue.get_nowait())
        timers.cancel()
        return got

    assert run(scenario()) == ["soon", "late"]


def test_one_pending_delayed_add_per_key_the_earliest_wins() -> None:
    async def scenario() -> list[str]:
        clock = FakeClock()
        queue = WorkQueue(clock)
        timers = asyncio.create_task(queue.run_timers())
        for _ in range(100):  # a busy job re-arms its refresh timer on every event
            queue.add_after("job", 0.3)
        queue.add_after("job", 0.05)
        assert queue.delayed == 1
        clock.advance(0.05)
        await settle()
        got = [queue.get_nowait()]
        queue.done("job")
        clock.advance(0.4)  # past the superseded due time: nothing more arrives
        await settle()
        assert len(queue) == 0 and queue.delayed == 0
        timers.cancel()
        return got

    assert run(scenario()) == ["job"]
