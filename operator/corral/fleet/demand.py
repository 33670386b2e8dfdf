"""What one worker of a gang asks of a node: the key under which capacity is indexed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.api.meta import Toleration
from corral.api.selection import ALL_CAPACITY_TYPES, CapacityType
from corral.fleet.resources import CPU, MEMORY, PODS


@dataclass(frozen=True, slots=True)
class WorkerDemand:
    """The per-worker resources and node filters of a request.

    Two requests with equal demands see the same capacity, so the fleet keeps one set of
    per-domain aggregates per demand and updates it incrementally.
    """

    devices: int
    cpu_millis: int = 0
    memory_bytes: int = 0
    tolerations: tuple[Toleration, ...] = field(default=(), compare=False, hash=False)
    capacity_types: frozenset[CapacityType] = frozenset(ALL_CAPACITY_TYPES)
    node_selector: tuple[tuple[str, str], ...] = ()
    """The worker template's `spec.nodeSelector` (sorted pairs)."""
    toleration_key: tuple[tuple[Any, ...], ...] = ()
    """A hashable form of `tolerations` (filled in by `WorkerDemand.of`)."""
    steer_clear: bool = False
    """Leave out nodes with an advisory notice (the solver's first try when a pool has some)."""

    @classmethod
    def of(
        cls,
        devices: int,
        cpu_millis: int = 0,
        memory_bytes: int = 0,
        tolerations: Iterable[Toleration] = (),
        capacity_types: Iterable[CapacityType] = ALL_CAPACITY_TYPES,
        node_selector: Mapping[str, str] | None = None,
    ) -> WorkerDemand:
        tolerations = tuple(tolerations)
        return cls(
            devices=devices,
            cpu_millis=cpu_millis,
            memory_bytes=memory_bytes,
            tolerations=tolerations,
            capacity_types=frozenset(capacity_types),
            node_selector=tuple(sorted((node_selector or {}).items())),
            toleration_key=tuple((t.key, t.operator, t.value, t.effect) for t in tolerations),
        )

    def workers_held(
        self, allocatable: Mapping[str, int], used: Mapping[str, int], free_devices: int
    ) -> int:
        """Whole workers a node holds given its free devices and what is left of its cpu,
        memory and pod slots (a resource it does not list is zero, but for `pods`)."""
        fits = free_devices // self.devices
        if fits and self.cpu_millis:
            fits = min(fits, (allocatable.get(CPU, 0) - used.get(CPU, 0)) // self.cpu_millis)
        if fits and self.memory_bytes:
            fits = min(
                fits, (allocatable.get(MEMORY, 0) - used.get(MEMORY, 0)) // self.memory_bytes
            )
        if fits and PODS in allocatable:
            fits = min(fits, allocatable[PODS] - used.get(PODS, 0))
        return max(fits, 0)

    def untolerated(
        self, taints: Iterable[Mapping[str, Any]], extra: Iterable[Toleration] = ()
    ) -> list[Mapping[str, Any]]:
        """The taints none of the tolerations (this demand's and `extra`) tolerates."""
        tolerations = (*self.tolerations, *extra)
        return [t for t in taints if not any(tol.tolerates(dict(t)) for tol in tolerations)]
