"""The runtime's clock, injected so that unit tests can run ten minutes of operation in
milliseconds: wall time for what is written to status, monotonic time and sleeping for timers."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time (UTC), for status fields and events."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go backwards, for timers."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Time moves only when a test calls `advance`; sleepers wake when their time has come."""

    def __init__(self, start: datetime | None = None):
        self.start = start or datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.elapsed + seconds, next(self._counter), future))
        await future

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self.elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
