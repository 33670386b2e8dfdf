"""A work queue of keys in the style of client-go's: deduplicated, delayed adds, one owner per key.

A key added while it is being processed is processed again afterwards (the event that added it
may carry news the running pass did not see); a key added many times while waiting runs once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from corral.controllers.clock import Clock, SystemClock


class WorkQueue:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._again: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        """The one pending delayed add per key: the earliest asked for wins."""
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()

    def add(self, key: str) -> None:
        if key in self._processing:
            self._again.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        due = self.clock.monotonic() + delay
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        heapq.heappush(self._delayed, (due, next(self._counter), key))
        self._wakeup.set()

    async def get(self) -> str:
        key = await self._ready.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def get_nowait(self) -> str:
        """The next ready key (raises asyncio.QueueEmpty when none is)."""
        key = self._ready.get_nowait()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def delayed(self) -> int:
        """Keys waiting for a delayed add."""
        return len(self._due)

    @property
    def idle(self) -> bool:
        """Nothing ready and nothing being processed (delayed keys may be waiting)."""
        return not self._queued and not self._processing

    def fire_due(self) -> None:
        """Move the delayed keys whose time has come to the ready queue."""
        now = self.clock.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == due:  # else superseded by an earlier add_after
                del self._due[key]
                self.add(key)

    async def run_timers(self) -> None:
        """Move delayed keys to the ready queue when due; runs for the life of the operator."""
        while True:
            self.fire_due()
            self._wakeup.clear()
            if not self._delayed:
                await self._wakeup.wait()
                continue
            timeout = self._delayed[0][0] - self.clock.monotonic()
            waiter = asyncio.ensure_future(self._wakeup.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()
