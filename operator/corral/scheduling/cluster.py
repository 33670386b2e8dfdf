"""The `Cluster` protocol: what the domain reads of the cluster, whoever keeps it.

Two implementations: the operator's live one over its informer cache
(`corral.controllers.live.LiveCluster`) and the in-memory one of the simulator and the unit tests
(`corral.sim.memory.InMemoryCluster`). Decisions come back as typed actions
(`corral.scheduling.actions`); each implementation has its executor: the live one writes to the
API server (async), the in-memory one applies them to its own state. Workload domains extend the
protocol with their own reads (`corral.training.cluster.TrainingCluster`).
"""

from __future__ import annotations

from typing import Protocol

from corral.api.gpupool import GPUPool
from corral.fleet.snapshot import FleetSnapshot
from corral.scheduling.ledger import Ledger
from corral.scheduling.tenancy import Tenancy


class Cluster(Protocol):
    @property
    def snapshot(self) -> FleetSnapshot:
        """Nodes, pods and pools as placement sees them (assumed workers included)."""
        ...

    @property
    def ledger(self) -> Ledger:
        """The one writer of assumed workers into `snapshot`."""
        ...

    def pool(self, name: str) -> GPUPool | None:
        """A valid GPUPool by name (None when absent or invalid)."""
        ...

    @property
    def tenancy(self) -> Tenancy:
        """Namespace labels, ResourceQuotas and PriorityClasses, for admission."""
        ...
