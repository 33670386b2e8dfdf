"""The assumed-pod ledger: devices promised to a placement before its pods exist.

Kube-scheduler's assume cache, for gangs (and Kueue's assume/forget): the scheduling pass enters a
gang's planned workers in the fleet snapshot the moment it places the gang, so the next gang of
the same pass, a millisecond later, cannot be given the same devices. A planned worker is a pod
record under the name its pod will have, so the real pod, when the cache sees it, simply takes the
record's place. If the write that records the placement fails, or the plan is dropped (a new
attempt, a re-placement, the job deleted), the planned workers that were never created are
forgotten. This is the only place that writes assumed records into the snapshot.

Quota admission reads the ledger too: a planned worker counts against its namespace's
ResourceQuotas until its pod exists, and then until a quota of its namespace moves. The API
server raises a quota's `used` as it admits the pod, but the quota's watch event may reach the
cache after the pod does (the operator's own write puts the pod there at once), and a pass in
between would see neither the plan nor the count, and admit a gang over the quota.
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
        self._uncounted: dict[str, dict[PodKey, Amounts]] = {}
        """Namespace -> its planned workers created since a ResourceQuota of it last moved: the
        API server counted them, the quotas as read may not have yet."""
        self._uncounted_total: dict[str, Amounts] = {}
        """Namespace -> what its `_uncounted` request together, kept as they come and go: every
        pass reads it, and in a namespace whose quotas never move (or that has none) it holds
        every worker made."""
        self._quota_epoch: dict[str, int] = {}
        """Namespace -> how many times its quotas moved (what a planned worker's create is
        compared against)."""
        self._sent: dict[PodKey, int] = {}
        """Planned worker not seen yet -> its namespace's quota epoch when it was planned: a quota
        that moved since may already count it."""

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
            self._sent[key] = self._quota_epoch.get(namespace, 0)
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
                self._sent.pop(key, None)
                self.snapshot.remove_pod(*key)
        if not planned:
            self._planned.pop(owner, None)

    def observed(self, key: PodKey, gone: bool = False) -> None:
        """The cache saw the real pod created (or `gone`): the ledger's record is no longer it. A
        worker just created is still counted for quota admission until a quota of its namespace
        moves, unless one already moved since it was planned (and so may count it)."""
        record = self._assumed.pop(key, None)
        sent = self._sent.pop(key, None)
        namespace = key[0]
        if gone:
            uncounted = self._uncounted.get(namespace)
            requests = uncounted.pop(key, None) if uncounted is not None else None
            if requests is not None:
                add_into(self._uncounted_total[namespace], requests, -1)
            if uncounted is not None and not uncounted:
                del self._uncounted[namespace]
                del self._uncounted_total[namespace]
        elif record is not None and sent == self._quota_epoch.get(namespace, 0):
            uncounted = self._uncounted.setdefault(namespace, {})
            if key not in uncounted:
                uncounted[key] = record.requests
                add_into(self._uncounted_total.setdefault(namespace, {}), record.requests)

    def quotas_moved(self, namespace: str) -> None:
        """A ResourceQuota of `namespace` changed in the cache: what it says as `used` now counts
        every pod the API server had admitted when it changed, the workers created before."""
        self._quota_epoch[namespace] = self._quota_epoch.get(namespace, 0) + 1
        self._uncounted.pop(namespace, None)
        self._uncounted_total.pop(namespace, None)

    def assumed(self, owner: str | None = None) -> set[PodKey]:
        """Planned pods still counted from the ledger's records (of one owner, or all)."""
        if owner is None:
            return set(self._assumed)
        return {key for key in self._planned.get(owner, {}) if key in self._assumed}

    def owners(self) -> set[str]:
        return set(self._planned)

    def assumed_requests(self) -> dict[str, Amounts]:
        """Namespace -> summed requests of planned workers that the namespace's ResourceQuotas,
        as read, have not counted: pods not created yet, and pods created since a quota of their
        namespace last moved. What admission adds to the quotas' `used`."""
        totals: dict[str, Amounts] = {}
        for key, record in self._assumed.items():
            add_into(totals.setdefault(key[0], {}), record.requests)
        for namespace, uncounted in self._uncounted_total.items():
            add_into(totals.setdefault(namespace, {}), uncounted)
        return totals
