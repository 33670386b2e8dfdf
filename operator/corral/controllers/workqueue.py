"""A work queue of keys in the style of client-go's: deduplicated, delayed adds, one owner per key.

A key added while it is being processed is processed again afterwards (the event that added it
may carry news the running pass did not see); a key added many times while waiting runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time


class WorkQueue:
    def __init__(self) -> None:
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
        due = time.monotonic() + delay
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

    async def run_timers(self) -> None:
        """Move delayed keys to the ready queue when due; runs for the life of the operator."""
        while True:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                due, _, key = heapq.heappop(self._delayed)
                if self._due.get(key) == due:  # else superseded by an earlier add_after
                    del self._due[key]
                    self.add(key)
            timeout = self._delayed[0][0] - now if self._delayed else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)
