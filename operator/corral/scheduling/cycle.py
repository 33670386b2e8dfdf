"""The scheduling pass: offer capacity to waiting workloads in queue order, all-or-nothing.

Generic over workloads: a `Candidate` is anything waiting with a gang request (a TrainingJob's
workers today). Each placement is entered in the ledger before the next candidate is tried, so two
gangs of one pass never get the same devices. The caller turns outcomes into statuses and writes
them, and tells the ledger to forget a placement whose write failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from corral.cost.objective import solve as solve_for_objective
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.placement.filters import candidate_pool_set
from corral.placement.scarcity import Contention, contention
from corral.scheduling.admission import Admission, gang_requests
from corral.scheduling.ledger import Ledger
from corral.scheduling.queue import Held, Inadmissible, Outcome, QueueEntry, schedule
from corral.scheduling.tenancy import PodFacts, Tenancy

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
    pod: PodFacts = field(default_factory=PodFacts)
    """What ResourceQuota scopes read of the workload's pods."""
    refused: Inadmissible | None = None
    """Refused by its own domain before the pass (budget, an unknown PriorityClass)."""


def run(
    candidates: Sequence[Candidate],
    snapshot: FleetSnapshot,
    ledger: Ledger,
    solve: Solve = place,
    tenancy: Tenancy | None = None,
    holding: Callable[[], Iterable[PlacementRequest]] = tuple,
) -> list[Outcome[Placement | NoFit]]:
    """One pass. Outcomes come in queue order; a Placement is already in the ledger.

    `holding()`: the requests of the jobs that hold capacity now (placed or running). With the
    candidates they are the jobs present, whose demand on each pool (`placement.scarcity`) decides
    between pools for a job that several accept; asked once, and only when such a job is tried."""
    by_key = {candidate.key: candidate for candidate in candidates}
    pressure: list[Contention] = []

    def contended() -> Contention:
        # One figure for the whole pass: the jobs it places were counted as waiting already.
        if not pressure:
            present = [c.request for c in candidates]
            present.extend(holding())
            pressure.append(contention(snapshot, present))
        return pressure[0]

    admission = Admission(snapshot, tenancy or Tenancy(), ledger.assumed_requests())

    def admit(entry: QueueEntry) -> frozenset[str] | Inadmissible:
        candidate = by_key[entry.key]
        if candidate.refused is not None:
            return candidate.refused
        return admission.pools(candidate.namespace, candidate.request, entry.pools, candidate.pod)

    entries = [
        QueueEntry(
            key=c.key,
            priority=c.priority,
            since=c.since,
            pools=candidate_pool_set(snapshot, c.request),
        )
        for c in candidates
    ]

    def try_place(entry: QueueEntry, pools: frozenset[str]) -> Placement | NoFit:
        candidate = by_key[entry.key]
        request = candidate.request
        if len(pools) > 1:
            request = replace(request, pools=tuple(sorted(pools)), contention=contended())
        elif pools:
            request = replace(request, pools=tuple(sorted(pools)))
        try:
            # The job's placementObjective picks among pools (corral.cost.objective); the
            # solver (or the simulator's baseline policy) places inside each.
            result = solve_for_objective(snapshot, request, solve)
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
            admission.placed(candidate.namespace, gang_requests(request, view.resource_name))
        return result

    def strict(pool: str) -> bool:
        view = snapshot.pools.get(pool)
        return view is None or view.spec.queueing == "StrictFIFO"

    return schedule(
        entries,
        try_place,
        fits=lambda r: isinstance(r, Placement),
        permanent=lambda r: isinstance(r, NoFit) and r.permanent,
        admit=admit,
        strict=strict,
    )


__all__ = ["Candidate", "Held", "Inadmissible", "Outcome", "Solve", "run"]
