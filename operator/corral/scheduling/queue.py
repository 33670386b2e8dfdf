"""The order in which waiting gangs are offered capacity, and when a gang may go ahead of another.

Policy (documented in docs/training.md):
- **Order.** Waiting jobs are tried by priority (the value of their PriorityClass, higher first),
  then by creation time, then by name.
- **Admission first.** A job refused at admission (over its namespace's quota or its budget,
  allowed in none of its pools, naming a PriorityClass that does not exist, or unable to fit its
  pools even with every pod gone because of its own constraints) waits *without holding
  anything*: it is `Inadmissible`, with a reason it can act on, and is looked at again on every
  pass (a pass runs when nodes, pools, quotas, namespaces or priority classes change).
- **Holding, per pool.** When an admitted job does not fit now, each pool it could use whose
  `spec.queueing` is StrictFIFO is *held* for it: later jobs may not be placed in that pool in
  this pass, even if they would fit — a big gang never starves behind a stream of small ones.
  A later job may still use its other, unheld pools; with no pool left it is `Held`. Pools with
  BestEffortFIFO are never held: later jobs that fit go ahead (Kueue's two strategies).
- A job that can never fit (Failed, Unschedulable) holds nothing.
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
    """A job not tried this pass because jobs ahead of it hold every pool it could use."""

    behind: str
    behind_priority: int
    pools: tuple[str, ...]

    @property
    def reason(self) -> str:
        return (
            f"waiting behind {self.behind} (priority {self.behind_priority}), which is queued for "
            f"pool(s) {', '.join(self.pools)} (spec.queueing: StrictFIFO)"
        )


@dataclass(frozen=True)
class Inadmissible:
    """A job refused before placement: it waits, holds nothing, and says why."""

    reason: str
    """PascalCase, for conditions and events: QuotaExceeded, PoolNotAllowed, NoMatchingNodes,
    PriorityClassNotFound, BudgetExceeded."""
    message: str
    admitted: bool = False
    """Whether the job passed admission proper (quota, access, budget) and only its fit failed:
    the Admitted condition stays True for NoMatchingNodes."""


@dataclass(frozen=True)
class Outcome(Generic[R]):
    entry: QueueEntry
    result: R | Held | Inadmissible


Admit = Callable[[QueueEntry], "frozenset[str] | Inadmissible"]
"""The pools a job may be tried in now (a subset of its entry's), or why it may not be tried."""


def queue_order(entries: Iterable[QueueEntry]) -> list[QueueEntry]:
    return sorted(entries, key=lambda e: (-e.priority, e.since, e.key))


def schedule(
    entries: Iterable[QueueEntry],
    try_place: Callable[[QueueEntry, frozenset[str]], R],
    fits: Callable[[R], bool],
    permanent: Callable[[R], bool],
    admit: Admit | None = None,
    strict: Callable[[str], bool] = lambda pool: True,
) -> list[Outcome[R]]:
    """One pass over the queue. `admit` runs first for each job, in queue order (so it may count
    what earlier jobs of the pass took); `try_place(entry, pools)` must make its placement
    visible to the next call (the caller's assumed ledger), so two gangs of one pass never get
    the same devices. `strict(pool)`: whether the pool is StrictFIFO."""
    held: dict[str, QueueEntry] = {}
    outcomes: list[Outcome[R]] = []
    for entry in queue_order(entries):
        allowed = admit(entry) if admit is not None else entry.pools
        if isinstance(allowed, Inadmissible):
            outcomes.append(Outcome(entry, allowed))
            continue
        free = allowed.difference(held) if held else allowed
        if allowed and not free:
            blockers = sorted(allowed)
            head = held[blockers[0]]
            outcomes.append(Outcome(entry, Held(head.key, head.priority, tuple(blockers))))
            continue
        result = try_place(entry, free)
        if free != allowed and not fits(result) and permanent(result):
            # Never in the pools it could be tried in, but a held one may still take it: it waits
            # behind that pool's head (it was failed for good, though the held pool had room).
            blockers = sorted(allowed.intersection(held))
            head = held[blockers[0]]
            outcomes.append(Outcome(entry, Held(head.key, head.priority, tuple(blockers))))
            continue
        outcomes.append(Outcome(entry, result))
        if not fits(result) and not permanent(result):
            for pool in free:
                if strict(pool):
                    held.setdefault(pool, entry)
    return outcomes
