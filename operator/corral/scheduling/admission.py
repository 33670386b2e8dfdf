"""Admission: may a waiting workload be tried in a pool now? Checks that never hold a pool.

Run for each waiting workload in queue order, before the solver:
1. **Pool access** — a pool with `spec.namespaceSelector` takes workloads only from namespaces
   whose labels match it (Kueue's ClusterQueue namespaceSelector).
2. **Quota** — the gang's requests (devices of the pool's resource, cpu, memory, pod count) must
   fit what is left of every ResourceQuota of the namespace that counts such pods: what the
   quota allows, less what it has used, less the planned workers of earlier placements whose
   pods do not exist yet, less what earlier jobs of this pass took. Otherwise the API server
   would refuse the pods after the gang was placed.
3. **Own constraints** — the gang must fit the pool with every pod gone, under its own
   nodeSelector, tolerations and capacity types (`placement.feasibility`).
A workload refused by all of its pools is `Inadmissible` with the first reason in that order.
Of the pools left, those it can never fit however empty (a worker bigger than any host, a gang
bigger than the pool or than its largest required domain) are dropped too, unless none would be
left: then the solver fails it with that reason (Unschedulable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from corral.api.quantity import format_quantity
from corral.fleet.memo import kept
from corral.fleet.pool import PoolView
from corral.fleet.resources import CPU, MEMORY, Amounts, add_into
from corral.fleet.snapshot import FleetSnapshot
from corral.placement.feasibility import empty_fit_problem
from corral.placement.request import PlacementRequest
from corral.placement.solver import static_refusal
from corral.scheduling.queue import Inadmissible
from corral.scheduling.tenancy import PodFacts, ResourceQuota, Tenancy


def _never_fits(view: PoolView, request: PlacementRequest) -> bool:
    refusal = static_refusal(view, request)
    return refusal is not None and refusal.permanent


def gang_requests(request: PlacementRequest, resource: str) -> Amounts:
    """What all workers of the gang request together, as a quota counts it."""
    per_worker = request.worker_requests(resource)
    return {name: amount * request.workers for name, amount in per_worker.items()}


@dataclass
class Admission:
    """Admission for one pass: remembers what the pass has placed, per namespace."""

    snapshot: FleetSnapshot
    tenancy: Tenancy
    pending: Mapping[str, Amounts] = field(default_factory=dict)
    """Namespace -> requests of planned workers whose pods do not exist yet."""
    charged: dict[str, Amounts] = field(default_factory=dict)
    """Namespace -> requests of the gangs this pass placed."""
    unit: str = "gang"
    """What is admitted, as messages name it: a gang of workers, or one inference replica."""

    def pools(
        self, namespace: str, request: PlacementRequest, pools: frozenset[str], pod: PodFacts
    ) -> frozenset[str] | Inadmissible:
        if self.tenancy.quotas.get(namespace):
            return self._pools(namespace, request, pools, pod)
        # Without a quota the answer reads only what stays put from pass to pass (the pools, their
        # nodes, the namespace's labels) and a waiting job is asked on every pass: it is kept on
        # the (immutable) request until the tenancy or the snapshot's pools and nodes change.
        seen = (self.snapshot.static_epoch, self.tenancy, namespace, pools)
        return kept(
            request, "_admission", seen, lambda: self._pools(namespace, request, pools, pod)
        )

    def _pools(
        self, namespace: str, request: PlacementRequest, pools: frozenset[str], pod: PodFacts
    ) -> frozenset[str] | Inadmissible:
        known = self.snapshot.pools
        views = [known[name] for name in sorted(pools) if name in known]
        if not views:
            return pools  # nothing to check: the solver explains why no pool qualifies
        allowed = views
        if any(view.spec.namespace_selector is not None for view in views):
            labels = self.tenancy.labels_of(namespace)
            allowed = [
                view
                for view in views
                if view.spec.namespace_selector is None
                or view.spec.namespace_selector.matches(labels)
            ]
        if not allowed:
            return Inadmissible(
                "PoolNotAllowed",
                f"namespace {namespace} may not use pool(s) {', '.join(v.name for v in views)}: "
                "their spec.namespaceSelector does not match the namespace's labels (label the "
                "namespace to match, or name a pool it may use)",
            )
        within: list[tuple[PoolView, str | None]] = []
        over: list[tuple[PoolView, str | None]] = []
        for view in allowed:
            problem = self.quota_problem(namespace, gang_requests(request, view.resource_name), pod)
            (over if problem else within).append((view, problem))
        if not within:
            return Inadmissible("QuotaExceeded", str(over[0][1]))
        fitting: list[tuple[PoolView, str | None]] = []
        misfits: list[tuple[PoolView, str | None]] = []
        for view, _ in within:
            problem = empty_fit_problem(view, request)
            (misfits if problem else fitting).append((view, problem))
        if not fitting:
            return Inadmissible(
                "NoMatchingNodes", "; ".join(str(p) for _, p in misfits), admitted=True
            )
        # A pool the gang can never fit, however empty (its hosts or domains too small), is no
        # pool to try it in or to hold for it: a StrictFIFO job waiting there would keep from it
        # the jobs that can use it. Left to the solver only when no pool is left, so that its
        # permanent refusal says why.
        possible = [(view, p) for view, p in fitting if not _never_fits(view, request)]
        return frozenset(view.name for view, _ in possible or fitting)

    def quota_problem(self, namespace: str, gang: Amounts, pod: PodFacts) -> str | None:
        for quota in self.tenancy.quotas.get(namespace, ()):
            if not quota.applies_to(pod):
                continue
            for resource, hard in sorted(quota.hard.items()):
                need = gang.get(resource, 0)
                if need <= 0:
                    continue
                pending = self.pending.get(namespace, {}).get(resource, 0)
                charged = self.charged.get(namespace, {}).get(resource, 0)
                used = quota.used.get(resource, 0)
                left = hard - used - pending - charged
                if need > left:
                    return _quota_message(
                        quota, resource, need, hard, used, pending + charged, self.unit
                    )
        return None

    def placed(self, namespace: str, gang: Amounts) -> None:
        add_into(self.charged.setdefault(namespace, {}), gang)


def _quota_message(
    quota: ResourceQuota,
    resource: str,
    need: int,
    hard: int,
    used: int,
    promised: int,
    unit: str = "gang",
) -> str:
    left = max(0, hard - used - promised)
    shown = _shown(resource)
    promise = (
        f", {shown(promised)} promised to pods planned but not yet created" if promised else ""
    )
    return (
        f"ResourceQuota {quota.namespace}/{quota.name}: {quota.keys[resource]}: the {unit} needs "
        f"{shown(need)}, {shown(left)} left of {shown(hard)} ({shown(used)} used{promise})"
    )


def _shown(resource: str) -> Callable[[int], str]:
    """How an amount of `resource` is written (cpu in cores, memory with a binary suffix)."""
    if resource == CPU:
        return lambda millis: format_quantity(Fraction(millis, 1000))
    if resource == MEMORY:
        return format_quantity
    return str
