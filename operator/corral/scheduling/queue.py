"""The order in which waiting gangs are offered capacity, and when a gang may go ahead of another.

Policy (documented in docs/training.md): waiting jobs are tried in order of `spec.priority`
(higher first), then creation time, then name. When a job does not fit, every pool it could use
is *held* for it: later jobs that could use one of those pools wait behind it, even if they would
fit now. Jobs whose pools are all free of held gangs are still placed (backfill onto capacity the
blocked gang cannot use). This is Kueue's StrictFIFO, per pool: a big gang never starves behind a
stream of small ones, at the price of idle devices while it waits for enough of them to free up.
A job that can never fit (Failed, Unschedulable) holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class QueueEntry:
    key: str
    """namespace/name"""
    priority: int
    since: datetime
    """Creation time: first come, first served within a priority."""
    pools: frozenset[str]
    """Pools whose hard constraints the job meets (where it could ever run)."""


@dataclass(frozen=True)
class Held:
    """A job not tried this pass because a job ahead of it holds one of its pools."""

    behind: str
    behind_priority: int
    pools: tuple[str, ...]

    @property
    def reason(self) -> str:
        return (
            f"waiting behind {self.behind} (priority {self.behind_priority}), which is queued for "
            f"pool(s) {', '.join(self.pools)}"
        )


@dataclass(frozen=True)
class Outcome(Generic[R]):
    entry: QueueEntry
    result: R | Held


def queue_order(entries: Iterable[QueueEntry]) -> list[QueueEntry]:
    return sorted(entries, key=lambda e: (-e.priority, e.since, e.key))


def schedule(
    entries: Iterable[QueueEntry],
    try_place: Callable[[QueueEntry], R],
    fits: Callable[[R], bool],
    permanent: Callable[[R], bool],
) -> list[Outcome[R]]:
    """One pass over the queue. `try_place` must make its placement visible to the next call
    (the caller's assumed ledger), so two gangs of one pass never get the same devices."""
    held: dict[str, QueueEntry] = {}
    outcomes: list[Outcome[R]] = []
    for entry in queue_order(entries):
        blockers = sorted(pool for pool in entry.pools if pool in held)
        if blockers:
            head = held[blockers[0]]
            outcomes.append(Outcome(entry, Held(head.key, head.priority, tuple(blockers))))
            continue
        result = try_place(entry)
        outcomes.append(Outcome(entry, result))
        if not fits(result) and not permanent(result):
            for pool in entry.pools:
                held.setdefault(pool, entry)
    return outcomes
