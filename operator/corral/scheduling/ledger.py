"""The assumed-pod ledger: devices promised to a placement before its pods exist.

Kube-scheduler's assume cache, for gangs (and Kueue's assume/forget): the scheduling pass enters a
gang's planned workers in the fleet snapshot the moment it places the gang, so the next gang of
the same pass, a millisecond later, cannot be given the same devices. A planned worker is a pod
record under the name its pod will have, so the real pod, when the cache sees it, simply takes the
record's place. If the write that records the placement fails, or the plan is dropped (a new
attempt, a re-placement, the job deleted), the planned workers that were never created are
forgotten. This is the only place that writes assumed records into the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from corral.fleet.objects import PodKey, PodRecord
from corral.fleet.resources import Amounts, add_into
from corral.fleet.snapshot import FleetSnapshot


class Ledger:
    def __init__(self, snapshot: FleetSnapshot):
        self.snapshot = snapshot
        self._planned: dict[str, dict[PodKey, PodRecord]] = {}
        """Owner (workload key) -> its planned workers, created or not."""
        self._assumed: dict[PodKey, PodRecord] = {}
        """Planned workers whose pod the cache has not seen (their record is the ledger's), kept
        by key so that what they request is summed without walking every plan: plans stay until
        their attempt ends, so on a busy fleet most planned workers exist and are not assumed."""

    def assume(
        self, owner: str, namespace: str, workers: Mapping[str, str], requests: Mapping[str, int]
    ) -> None:
        """Plan pods `workers` (pod name -> node), each taking `requests` on its node. A pod that
        already exists keeps its own record."""
        planned = self._planned.setdefault(owner, {})
        for name, node in workers.items():
            key = (namespace, name)
            record = PodRecord(key=key, node=node, requests=dict(requests), active=True)
            planned[key] = record
            if key in self.snapshot.pods and key not in self._assumed:
                continue  # the real pod is known: it counts for itself
            self._assumed[key] = record
            self.snapshot.upsert_record(record)

    def forget(self, owner: str, names: Iterable[str] | None = None) -> None:
        """Drop the plan of `owner` (or of some of its pods); records of pods that were never
        created leave the snapshot."""
        planned = self._planned.get(owner, {})
        keys = list(planned) if names is None else [k for k in planned if k[1] in set(names)]
        for key in keys:
            planned.pop(key, None)
            if key in self._assumed:
                del self._assumed[key]
                self.snapshot.remove_pod(*key)
        if not planned:
            self._planned.pop(owner, None)

    def observed(self, key: PodKey) -> None:
        """The cache saw the real pod (created or deleted): the ledger's record is no longer it."""
        self._assumed.pop(key, None)

    def assumed(self, owner: str | None = None) -> set[PodKey]:
        """Planned pods still counted from the ledger's records (of one owner, or all)."""
        if owner is None:
            return set(self._assumed)
        return {key for key in self._planned.get(owner, {}) if key in self._assumed}

    def owners(self) -> set[str]:
        return set(self._planned)

    def assumed_requests(self) -> dict[str, Amounts]:
        """Namespace -> summed requests of planned workers whose pods do not exist yet (what
        a ResourceQuota has not counted, and admission must)."""
        totals: dict[str, Amounts] = {}
        for key, record in self._assumed.items():
            add_into(totals.setdefault(key[0], {}), record.requests)
        return totals
