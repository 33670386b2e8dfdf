"""The fleet snapshot: nodes, pods and pools, with per-pool views kept current incrementally."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from corral.api.gpupool import GPUPool
from corral.api.selection import CapacityType
from corral.fleet.fields import InvalidFleetObject
from corral.fleet.objects import NodeRecord, Overcommit, PodKey, PodRecord
from corral.fleet.pool import PoolView
from corral.fleet.resources import Amounts, add_into

NodeNotices = Callable[[Mapping[str, Any]], tuple[str | None, str | None]]
"""Node -> (its binding termination notice, its advisory notice), each the signal read, or None.
The fleet layer cannot know every platform's signals; `corral.disruption.notices.node_usability`
does, and the operator, the simulator and `corral plan` hand it to their snapshot."""


class FleetSnapshot:
    """Everything placement reads about the fleet.

    Nodes and pods are the plain dicts the Kubernetes API returns (camelCase); pools are GPUPool
    models. A pod counts against its node while it is not Succeeded/Failed and either is bound
    (`spec.nodeName`) or carries Corral's `corral.dev/node` annotation (a gated worker, or a
    planned one the controller inserts before creating it). A node selected by two pools is in
    neither (each pool reports it as overlapping).

    Updates are incremental: one pod or node change touches that node and its ancestors in each
    capacity index, not the fleet. The placement solver only reads.

    A Node or Pod that cannot be read (a field of the wrong type) harms only itself: it is left
    out (a node is unusable, its earlier record dropped) and `invalid` says why, keyed by
    `Node <name>` / `Pod <namespace>/<name>`; the rest of the fleet is unaffected.
    """

    def __init__(self, notices: NodeNotices | None = None) -> None:
        self.notices = notices
        """Reads termination notices off a Node (None: no node is ever noticed)."""
        self.nodes: dict[str, NodeRecord] = {}
        self.pods: dict[PodKey, PodRecord] = {}
        self.usage: dict[str, Amounts] = {}
        """Node name -> the summed requests of the pods counted against it (incl. `pods`)."""
        self.pods_on: dict[str, set[PodKey]] = {}
        self.pools: dict[str, PoolView] = {}
        self._selected_by: dict[str, tuple[str, ...]] = {}
        """Node name -> the pools whose nodeSelector matches it, sorted."""
        self.invalid: dict[str, str] = {}
        """Objects left out because a field could not be read -> the problem."""
        self.static_epoch = next(_EPOCHS)
        """Changes whenever a node or a pool is added, removed or changed (never for a pod),
        unique across snapshots: an answer that reads only pools and nodes (which pools a
        request may use, whether it fits them empty) holds while the epoch it was computed
        at is current."""
        self.pod_changes = 0
        """Counts the changes of what pods hold on nodes (a pod counted, moved or dropped): with
        `static_epoch`, whether anything placement reads has changed since it was last read."""

    @classmethod
    def build(
        cls,
        nodes: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
        pools: Iterable[GPUPool],
        implicit: Collection[str] = (),
        notices: NodeNotices | None = None,
    ) -> FleetSnapshot:
        """`implicit` names pools the caller made up (see `PoolView.implicit`)."""
        snapshot = cls(notices)
        for pool in pools:
            snapshot.upsert_pool(pool, implicit=pool.metadata.name in implicit)
        for pod in pods:
            snapshot.upsert_pod(pod)
        for node in nodes:
            snapshot.upsert_node(node)
        return snapshot

    # -- queries ----------------------------------------------------------------------------

    def pool(self, name: str) -> PoolView | None:
        return self.pools.get(name)

    def pool_of(self, node: str) -> str | None:
        """The pool a node belongs to (None if no pool or more than one selects it)."""
        selected = self._selected_by.get(node, ())
        return selected[0] if len(selected) == 1 else None

    def selected_by(self, node: str) -> tuple[str, ...]:
        return self._selected_by.get(node, ())

    def overlapping_nodes(self, pool: str) -> set[str]:
        """Nodes the pool selects that another pool selects too (they count in neither)."""
        view = self.pools.get(pool)
        return set(view.overlapping) if view is not None else set()

    def capacity_type_of(self, node: str) -> CapacityType | None:
        """The capacity type of a node in its pool (None if it is in no pool)."""
        pool = self.pool_of(node)
        return self.pools[pool].capacity_types.get(node) if pool is not None else None

    def drop_caches(self) -> None:
        """Forget every capacity index and memo (they are rebuilt on the next placement): for
        measuring a cold solve, or to free memory after a burst of unusual worker shapes."""
        for view in self.pools.values():
            view.drop_indexes()

    # -- nodes ------------------------------------------------------------------------------

    def upsert_node(self, node: Mapping[str, Any]) -> None:
        self.static_epoch = next(_EPOCHS)
        try:
            record = NodeRecord.from_dict(node)
        except InvalidFleetObject as exc:
            name = _name(node)
            if name is not None:
                self.remove_node(name)
            self.invalid[f"Node {name}"] = str(exc)
            return
        if self.notices is not None:
            # One place decides that a noticed node takes no new worker: its record (read by
            # node_problem, pool views, capacity indexes and the pool status alike).
            notice, advisory = self.notices(node)
            if notice is not None or advisory is not None:
                record = dataclasses.replace(record, notice=notice, advisory=advisory)
        self.invalid.pop(f"Node {record.name}", None)
        old = self.nodes.get(record.name)
        self.nodes[record.name] = record
        if old is not None and old.labels == record.labels:
            pool = self.pool_of(record.name)
            if pool is not None:
                self.pools[pool].replace_node(record)
            return
        self._place(record.name)

    def remove_node(self, name: str) -> None:
        self.static_epoch = next(_EPOCHS)
        self.invalid.pop(f"Node {name}", None)
        if self.nodes.pop(name, None) is None:
            return
        self._unplace(name)
        self._selected_by.pop(name, None)

    def _place(self, name: str) -> None:
        """(Re)decide which pool holds a node, and make every view agree."""
        record = self.nodes[name]
        selected = tuple(
            pool_name
            for pool_name, view in sorted(self.pools.items())
            if view.spec.node_selector.matches(record.labels)
        )
        member = selected[0] if len(selected) == 1 else None
        for pool_name in set(self._selected_by.get(name, ())) | set(selected):
            view = self.pools.get(pool_name)
            if view is None:
                continue
            if pool_name == member:
                view.replace_node(record)
            else:
                view.remove_node(name)
            if pool_name in selected and member is None:
                view.overlapping.add(name)
            else:
                view.overlapping.discard(name)
        self._selected_by[name] = selected

    def _unplace(self, name: str) -> None:
        for pool_name in self._selected_by.get(name, ()):
            view = self.pools.get(pool_name)
            if view is not None:
                view.remove_node(name)
                view.overlapping.discard(name)

    # -- pods -------------------------------------------------------------------------------

    def upsert_pod(self, pod: Mapping[str, Any]) -> None:
        try:
            record = PodRecord.from_dict(pod)
        except InvalidFleetObject as exc:
            name = _name(pod)
            namespace = _name(pod, "namespace") or "default"
            if name is not None:
                self.remove_pod(namespace, name)
            self.invalid[f"Pod {namespace}/{name}"] = str(exc)
            return
        self.invalid.pop(f"Pod {record.key[0]}/{record.key[1]}", None)
        self._set_pod(record.key, record)

    def upsert_record(self, record: PodRecord) -> None:
        """Count a pod known only as a record (the assumed workers of a placement)."""
        self._set_pod(record.key, record)

    def overcommitted(self, name: str) -> Overcommit | None:
        """The pods counted on a node ask for more of a resource than it offers: room planned for
        a pod not bound yet (a gated worker, a nominated pod) was taken meanwhile. None when
        everything counted on the node fits (or the node is unknown: `node_problem` says so)."""
        record = self.nodes.get(name)
        if record is None:
            return None
        used = self.usage.get(name, {})
        for resource, amount in sorted(used.items()):
            offered = record.allocatable.get(resource, 0)
            if amount > offered:
                pods = tuple(sorted(self.pods_on.get(name, ())))
                return Overcommit(name, resource, amount, offered, pods)
        return None

    def node_problem(self, name: str) -> str | None:
        """Why a planned node can no longer take a new worker (gone, cordoned, NotReady)."""
        record = self.nodes.get(name)
        return f"node {name} no longer exists" if record is None else record.problem

    def remove_pod(self, namespace: str, name: str) -> None:
        self.invalid.pop(f"Pod {namespace}/{name}", None)
        self._set_pod((namespace, name), None)

    def _set_pod(self, key: PodKey, record: PodRecord | None) -> None:
        old = self.pods.pop(key, None)
        if record is not None:
            self.pods[key] = record
        if old is None and record is None:
            return
        self.pod_changes += 1
        touched: set[str] = set()
        if old is not None and old.counted and old.node is not None:
            self._count(old, -1)
            touched.add(old.node)
        if record is not None and record.counted and record.node is not None:
            self._count(record, 1)
            touched.add(record.node)
        for node in touched:
            pool = self.pool_of(node)
            if pool is not None:
                self.pools[pool].refresh(node)

    def _count(self, pod: PodRecord, sign: int) -> None:
        assert pod.node is not None
        usage = self.usage.setdefault(pod.node, {})
        add_into(usage, pod.requests, sign)
        on_node = self.pods_on.setdefault(pod.node, set())
        if sign > 0:
            on_node.add(pod.key)
        else:
            on_node.discard(pod.key)
            if not on_node:
                del self.pods_on[pod.node]
                del self.usage[pod.node]

    # -- pools ------------------------------------------------------------------------------

    def upsert_pool(self, pool: GPUPool, implicit: bool = False) -> None:
        self.static_epoch = next(_EPOCHS)
        name = pool.metadata.name
        if not name:
            raise ValueError("a GPUPool needs metadata.name")
        self.pools[name] = PoolView(pool, self.usage, implicit)
        for node in self.nodes:
            self._place(node)

    def remove_pool(self, name: str) -> None:
        self.static_epoch = next(_EPOCHS)
        if self.pools.pop(name, None) is None:
            return
        for node in self.nodes:
            self._place(node)


_EPOCHS = itertools.count(1)


def _name(obj: object, field: str = "name") -> str | None:
    """metadata.<field> of an object that may be malformed, or None."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    value = metadata.get(field) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None
