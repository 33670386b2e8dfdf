"""The scheduling pass: offer capacity to waiting workloads in queue order, all-or-nothing.

Generic over workloads: a `Candidate` is anything waiting with a gang request (a TrainingJob's
workers today). Each placement is entered in the ledger before the next candidate is tried, so two
gangs of one pass never get the same devices. The caller turns outcomes into statuses and writes
them, and tells the ledger to forget a placement whose write failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.cost.objective import solve as solve_for_objective
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, Placement, PlacementRequest, candidate_pools, place
from corral.scheduling.ledger import Ledger
from corral.scheduling.queue import Held, Outcome, QueueEntry, schedule

Solve = Callable[[FleetSnapshot, PlacementRequest], Placement | NoFit]


@dataclass(frozen=True)
class Candidate:
    key: str
    """namespace/name of the workload."""
    namespace: str
    priority: int
    since: datetime
    """When it started waiting (creation): first come, first served within a priority."""
    request: PlacementRequest
    worker_name: Callable[[int], str]
    """The pod name worker i will have (the ledger plans under that name)."""
    owner: str = ""
    """Ledger owner of the planned workers (default: `key`)."""


def run(
    candidates: Sequence[Candidate],
    snapshot: FleetSnapshot,
    ledger: Ledger,
    solve: Solve = place,
) -> list[Outcome[Placement | NoFit]]:
    """One pass. Outcomes come in queue order; a Placement is already in the ledger."""
    by_key = {candidate.key: candidate for candidate in candidates}
    entries = [
        QueueEntry(
            key=c.key,
            priority=c.priority,
            since=c.since,
            pools=frozenset(candidate_pools(snapshot, c.request)),
        )
        for c in candidates
    ]

    def try_place(entry: QueueEntry) -> Placement | NoFit:
        candidate = by_key[entry.key]
        try:
            # The job's placementObjective picks among pools (corral.cost.objective); the
            # solver (or the simulator's baseline policy) places inside each.
            result = solve_for_objective(snapshot, candidate.request, solve)
        except Exception as exc:  # a solver bug on one job must not stop the pass for all
            return NoFit(
                reason=f"Corral could not place this job ({type(exc).__name__}: {exc}); "
                "this is a bug in Corral, please report it",
                permanent=True,
            )
        if isinstance(result, Placement):
            view = snapshot.pools[result.pool]
            ledger.assume(
                candidate.owner or candidate.key,
                candidate.namespace,
                {candidate.worker_name(i): node for i, node in enumerate(result.assignments)},
                candidate.request.worker_requests(view.resource_name),
            )
        return result

    return schedule(
        entries,
        try_place,
        fits=lambda r: isinstance(r, Placement),
        permanent=lambda r: isinstance(r, NoFit) and r.permanent,
    )


__all__ = ["Candidate", "Held", "Outcome", "Solve", "run"]
