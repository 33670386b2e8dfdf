"""One pool's view of the fleet: its nodes, their topology tree, and capacity indexes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from corral.api.gpupool import GPUPool
from corral.api.selection import CapacityType
from corral.fleet.capacity import capacity_type_from_labels
from corral.fleet.demand import WorkerDemand
from corral.fleet.objects import NodeRecord
from corral.fleet.resources import Amounts
from corral.fleet.topology import Domain, Topology

MAX_INDEXES = 64
"""Capacity indexes kept per pool (one per distinct worker demand, least recently used dropped).
A queue of jobs with many different cpu/memory requests (the Alibaba openb trace has 87) made a
smaller limit rebuild indexes over the whole pool in every pass; keeping one costs a few
microseconds per pod change."""

MAX_MEMOS = 8
"""Memos kept per capacity index (one per gang size and search level, least recent dropped)."""

_NO_USAGE: Amounts = {}


class PoolView:
    """A pool and the nodes it holds; kept current by `FleetSnapshot`."""

    def __init__(self, pool: GPUPool, usage: Mapping[str, Amounts], implicit: bool = False):
        self.pool = pool
        self.name: str = pool.metadata.name or ""
        self.spec = pool.spec
        self.resource_name = pool.spec.resource_name
        self.implicit = implicit
        """The pool `corral plan` makes up when given none: its accelerator and location are
        unknown, so requirements on them are not checked against it. Only the caller that made
        the pool can say so — never anything on the object (a user could write it)."""
        self.topology = Topology(pool.spec.topology.levels)
        self.nodes: dict[str, NodeRecord] = {}
        self.capacity_types: dict[str, CapacityType] = {}
        self.price_milli: dict[str, int] = {}
        """Node -> its price per device-hour in thousandths of the currency unit."""
        self.total_devices = 0
        """Allocatable devices of all member nodes."""
        self.overlapping: set[str] = set()
        """Nodes this pool selects that another pool selects too: they count in neither."""
        self.advised: set[str] = set()
        """Member nodes with an advisory notice (placement avoids them when it has a choice)."""
        self._usage = usage
        self._indexes: OrderedDict[WorkerDemand, CapacityIndex] = OrderedDict()
        self.static_memo: dict[object, object] = {}
        """Answers that depend on the pool's nodes but not on their usage (what fits the pool
        when it is empty); cleared whenever a node joins, leaves or changes."""

    def static(self, key: Hashable, compute: Callable[[], object]) -> object:
        """`compute()` memoised in `static_memo` under `key`: for answers that read the pool's
        nodes, never their usage (they stay true until a node joins, leaves or changes)."""
        if key not in self.static_memo:
            self.static_memo[key] = compute()
        return self.static_memo[key]

    # -- membership -------------------------------------------------------------------------

    def add_node(self, node: NodeRecord) -> None:
        self._set(node)
        self.topology.add(node.name, node.labels)
        for index in self._indexes.values():
            index.update(node.name)

    def remove_node(self, name: str) -> None:
        if name not in self.nodes:
            return
        self.static_memo.clear()
        for index in self._indexes.values():
            index.forget(name)
        dropped = self.topology.remove(name)
        if dropped:
            for index in self._indexes.values():
                index.drop(dropped)
        self.total_devices -= self.devices(name)
        del self.nodes[name]
        del self.capacity_types[name]
        del self.price_milli[name]
        self.advised.discard(name)

    def replace_node(self, node: NodeRecord) -> None:
        """A node changed: move it in the tree if its labels moved it, then refresh indexes."""
        old = self.nodes.get(node.name)
        if old is None or any(
            old.labels.get(level) != node.labels.get(level) for level in self.topology.levels
        ):
            self.remove_node(node.name)
            self.add_node(node)
            return
        self._set(node)
        self.refresh(node.name)

    def refresh(self, name: str) -> None:
        """The node's usage (its pods) changed."""
        if name in self.nodes:
            for index in self._indexes.values():
                index.update(name)

    def _set(self, node: NodeRecord) -> None:
        self.static_memo.clear()
        if node.name in self.nodes:
            self.total_devices -= self.devices(node.name)
        self.nodes[node.name] = node
        self.total_devices += self.devices(node.name)
        if node.advisory is not None:
            self.advised.add(node.name)
        else:
            self.advised.discard(node.name)
        capacity_type = (
            capacity_type_from_labels(node.labels)
            if self.spec.capacity_type == "auto"
            else self.spec.capacity_type
        )
        self.capacity_types[node.name] = capacity_type
        self.price_milli[node.name] = round(self.spec.pricing.per_device_hour(capacity_type) * 1000)

    # -- per-node figures -------------------------------------------------------------------

    def usage(self, name: str) -> Amounts:
        return self._usage.get(name, _NO_USAGE)

    def devices(self, name: str) -> int:
        return self.nodes[name].allocatable.get(self.resource_name, 0)

    def allocated(self, name: str) -> int:
        return self.usage(name).get(self.resource_name, 0)

    def free(self, name: str, resource: str | None = None) -> int:
        """Free amount of a resource (devices by default) on a node; never negative."""
        resource = resource or self.resource_name
        node = self.nodes[name]
        return max(0, node.allocatable.get(resource, 0) - self.usage(name).get(resource, 0))

    def price_per_device_hour(self, name: str) -> float:
        return self.spec.pricing.per_device_hour(self.capacity_types[name])

    def untolerated(self, name: str, demand: WorkerDemand) -> list[Mapping[str, Any]]:
        return demand.untolerated(self.nodes[name].taints, self.spec.tolerations)

    def why_unusable(self, name: str, demand: WorkerDemand, own_only: bool = False) -> str | None:
        """Why a worker of this demand may never land on the node now (None if it may).
        `own_only`: only what the workload itself asks for (taints it does not tolerate,
        capacity types, nodeSelector), not the node's passing state (NotReady, cordoned, a
        termination or advisory notice)."""
        node = self.nodes[name]
        if not own_only and not node.ready:
            return "not Ready"
        if not own_only and node.unschedulable:
            return "cordoned"
        if not own_only and node.notice is not None:
            return f"termination notice ({node.notice})"
        if not own_only and demand.steer_clear and node.advisory is not None:
            return f"advisory notice ({node.advisory}), avoided while other nodes have room"
        # A noticed node's taints are mostly the platform's notice (NTH, Karpenter, GKE): like
        # the notice itself they pass, so they do not count against the workload either.
        untolerated = [] if own_only and node.notice is not None else self.untolerated(name, demand)
        if untolerated:
            taint = untolerated[0]
            value = f"={taint['value']}" if taint.get("value") else ""
            return f"taint {taint.get('key')}{value}:{taint.get('effect')} not tolerated"
        capacity_type = self.capacity_types[name]
        if capacity_type not in demand.capacity_types:
            return f"capacity type {capacity_type} not allowed"
        for key, value in demand.node_selector:
            if node.labels.get(key) != value:
                return f"nodeSelector {key}={value} not matched"
        if node.allocatable.get(self.resource_name, 0) <= 0:
            return f"no {self.resource_name}"
        return None

    # -- capacity indexes -------------------------------------------------------------------

    def drop_indexes(self) -> None:
        self._indexes.clear()

    def index(self, demand: WorkerDemand) -> CapacityIndex:
        """Per-domain capacity for workers of this demand, built once and then kept current."""
        index = self._indexes.get(demand)
        if index is None:
            index = CapacityIndex(self, demand)
            self._indexes[demand] = index
            if len(self._indexes) > MAX_INDEXES:
                self._indexes.popitem(last=False)
        else:
            self._indexes.move_to_end(demand)
        return index


class CapacityIndex:
    """How many workers of one demand fit on each node and in each domain of a pool.

    `fits[node]` is whole workers (a node with 7 free devices holds one 4-device worker), limited
    by devices, cpu, memory and pod slots; `free[node]` is its free devices. Both are zero for a
    node such a worker may not use. `cap[domain]` and `room[domain]` are their sums over the
    domain; a node change updates the node's ancestors only.
    """

    def __init__(self, view: PoolView, demand: WorkerDemand):
        self.view = view
        self.demand = demand
        self.fits: dict[str, int] = {}
        self.free: dict[str, int] = {}
        self.cap: dict[Domain, int] = {}
        self.room: dict[Domain, int] = {}
        self.fits_count: dict[int, int] = {}
        """How many nodes hold exactly k workers, per k > 0 (the largest k is a quick test of
        whether any single node holds a gang)."""
        self.stamp: dict[Domain, int] = {}
        """Bumped on every domain a node change reaches: a memo of anything computed from a
        domain's contents (see `memo`) is valid while its stamp is unchanged."""
        self._memos: OrderedDict[tuple[object, ...], dict[Domain, tuple[int, Any]]] = OrderedDict()
        for name in view.nodes:
            self._add(name)

    def memo(self, key: tuple[object, ...]) -> dict[Domain, tuple[int, Any]]:
        """A per-domain memo for one computation (`key` names it and its parameters)."""
        memo = self._memos.get(key)
        if memo is None:
            memo = self._memos[key] = {}
            if len(self._memos) > MAX_MEMOS:
                self._memos.popitem(last=False)
        else:
            self._memos.move_to_end(key)
        return memo

    def drop(self, domains: list[Domain]) -> None:
        """Forget domains the tree dropped (their figures are zero, their memos dead)."""
        for domain in domains:
            self.cap.pop(domain, None)
            self.room.pop(domain, None)
            self.stamp.pop(domain, None)
            for memo in self._memos.values():
                memo.pop(domain, None)

    def _touch(self, name: str) -> None:
        stamp = self.stamp
        for domain in self.view.topology.parent_of[name].ancestors():
            stamp[domain] = stamp.get(domain, 0) + 1

    def _measure(self, name: str) -> tuple[int, int]:
        view = self.view
        if view.why_unusable(name, self.demand) is not None:
            return 0, 0
        node = view.nodes[name]
        used = view.usage(name)
        free = node.allocatable.get(view.resource_name, 0) - used.get(view.resource_name, 0)
        if free <= 0:
            return 0, 0
        return self.demand.workers_held(node.allocatable, used, free), free

    def _apply(self, name: str, fits: int, free: int) -> None:
        cap, room = self.cap, self.room
        for domain in self.view.topology.parent_of[name].ancestors():
            total = cap.get(domain, 0) + fits
            if total:
                cap[domain] = total
            else:
                cap.pop(domain, None)
            total = room.get(domain, 0) + free
            if total:
                room[domain] = total
            else:
                room.pop(domain, None)

    def _count(self, fits: int, sign: int) -> None:
        if fits:
            left = self.fits_count.get(fits, 0) + sign
            if left:
                self.fits_count[fits] = left
            else:
                del self.fits_count[fits]

    @property
    def most_fits(self) -> int:
        """The most workers any single node holds."""
        return max(self.fits_count, default=0)

    def _add(self, name: str) -> None:
        self._touch(name)
        fits, free = self._measure(name)
        self._count(fits, 1)
        self.fits[name] = fits
        self.free[name] = free
        if fits or free:
            self._apply(name, fits, free)

    def update(self, name: str) -> None:
        """Re-measure one node (added, changed, or its pods changed)."""
        self._touch(name)
        old_fits = self.fits.get(name, 0)
        old_free = self.free.get(name, 0)
        fits, free = self._measure(name)
        self._count(old_fits, -1)
        self._count(fits, 1)
        self.fits[name] = fits
        self.free[name] = free
        if fits != old_fits or free != old_free:
            self._apply(name, fits - old_fits, free - old_free)

    def forget(self, name: str) -> None:
        """Take a node out (before it leaves the tree)."""
        self._touch(name)
        fits = self.fits.pop(name, 0)
        free = self.free.pop(name, 0)
        self._count(fits, -1)
        if fits or free:
            self._apply(name, -fits, -free)
