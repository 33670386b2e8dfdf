"""The operator's runtime against the in-memory API, on a fake clock.

    h = Harness(nodes=[node("h1").gpus(8)...], pools=[pool("p").select(pool="p")])
    async with h.running():
        h.api.put(job("j").workers(2).gpus(8).dict())
        await h.converge()            # operator + kube-scheduler + kubelet until quiet
        await h.run_for(600)          # ten simulated minutes, one second at a time

Everything the operator sends goes through `h.api` (counted per verb and resource); the fake's
`schedule`/`start` play kube-scheduler and the kubelet and are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from corral.controllers.clock import FakeClock
from corral.controllers.runtime import Operator
from corral.fleet.testing import NodeBuilder, PoolBuilder
from corral.kube.fake import Crashed, FakeAPI

Obj = dict[str, Any]


class Harness:
    def __init__(
        self,
        nodes: Iterable[NodeBuilder] = (),
        pools: Iterable[PoolBuilder] = (),
        usage_refresh_seconds: float = 60.0,
        api: FakeAPI | None = None,
        clock: FakeClock | None = None,
    ):
        self.clock = clock or FakeClock()
        self.api = api or FakeAPI(clock=self.clock.now)
        self.usage_refresh_seconds = usage_refresh_seconds
        for builder in nodes:
            self.api.put(builder.obj())
        for builder in pools:
            self.api.put(builder.dict())
        self.events: list[tuple[str, str, str, str]] = []
        """(object name, type, reason, message) of every event the operator posted."""
        self.operator: Operator | None = None
        self.actors = True
        """Whether kube-scheduler and the kubelet act between rounds."""

    # -- the operator -------------------------------------------------------------------------

    def _post(self, involved: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append(
            ((involved.get("metadata") or {}).get("name", ""), type_, reason, message)
        )

    async def start(self) -> Operator:
        self.operator = Operator(
            self.api,
            clock=self.clock,
            post_event=self._post,
            usage_refresh_seconds=self.usage_refresh_seconds,
        )
        starting = asyncio.create_task(self.operator.start())
        for _ in range(10_000):
            if starting.done():
                break
            await asyncio.sleep(0)
        await starting
        await self.settle()
        return self.operator

    async def stop(self) -> None:
        """Stop as a killed process does: tasks gone, nothing flushed."""
        if self.operator is None:
            return
        for task in self.operator.tasks:
            task.cancel()
        await asyncio.gather(*self.operator.tasks, return_exceptions=True)
        for informer_watch in list(self.api._watches):
            informer_watch.queue.put_nowait(None)
        await asyncio.sleep(0)
        self.operator = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Harness]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    @property
    def crashed(self) -> bool:
        """The operator's worker died of an injected crash (FakeAPI.crash_after)."""
        if self.operator is None:
            return False
        for task in self.operator.tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                if isinstance(error, Crashed):
                    return True
                if error is not None:
                    raise error
        return False

    # -- time and the other actors ------------------------------------------------------------

    def _quiet(self) -> bool:
        op = self.operator
        if op is None:
            return True
        watches_drained = all(w.queue.empty() for w in self.api._watches)
        return op.queue.idle and watches_drained

    async def settle(self, limit: int = 20_000) -> None:
        """Let the operator work until it has nothing ready (delayed keys may wait)."""
        quiet = 0
        for _ in range(limit):
            await asyncio.sleep(0)
            if self.crashed:
                return
            quiet = quiet + 1 if self._quiet() else 0
            if quiet >= 5:
                return
        raise AssertionError("the operator never became quiet (a loop of work?)")

    async def converge(self, rounds: int = 30) -> None:
        """Operator, kube-scheduler and kubelet in turns until nothing changes."""
        for _ in range(rounds):
            await self.settle()
            if self.crashed:
                return
            before = self.api._last_rv
            if self.actors:
                self.api.tick()
            await self.settle()
            if self.api._last_rv == before:
                return
        raise AssertionError("the cluster did not converge")

    async def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Advance the clock `seconds`, one step at a time, converging after each step."""
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            await self.converge()
            if self.crashed:
                return

    # -- reads --------------------------------------------------------------------------------

    def job(self, name: str, namespace: str = "default") -> Obj:
        found = self.api.obj(
            f"/apis/corral.dev/v1alpha1/namespaces/{namespace}/trainingjobs/{name}"
        )
        assert found is not None, f"no job {namespace}/{name}"
        return found

    def phase(self, name: str, namespace: str = "default") -> str | None:
        return (self.job(name, namespace).get("status") or {}).get("phase")

    def pods(self, namespace: str = "default") -> list[Obj]:
        return self.api.items("", "pods", namespace)

    def job_pods(self, name: str, namespace: str = "default") -> list[Obj]:
        uid = self.job(name, namespace)["metadata"]["uid"]
        return [
            pod
            for pod in self.pods(namespace)
            if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
        ]

    def reasons(self, name: str) -> list[str]:
        return [reason for who, _, reason, _ in self.events if who == name]
