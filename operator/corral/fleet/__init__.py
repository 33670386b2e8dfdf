"""The fleet snapshot: nodes, devices, topology trees and allocations, built from Node and Pod
objects and GPUPool specs, updated incrementally; pure (no API client, no clock)."""

from corral.fleet.capacity import capacity_type_from_labels
from corral.fleet.default_pool import DEFAULT_POOL, default_pool
from corral.fleet.demand import WorkerDemand
from corral.fleet.objects import NodeRecord, PodRecord
from corral.fleet.pool import CapacityIndex, PoolView
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.status import pool_status, view_status
from corral.fleet.topology import Domain, Topology

__all__ = [
    "DEFAULT_POOL",
    "CapacityIndex",
    "Domain",
    "FleetSnapshot",
    "NodeRecord",
    "PodRecord",
    "PoolView",
    "Topology",
    "WorkerDemand",
    "capacity_type_from_labels",
    "default_pool",
    "pool_status",
    "view_status",
]
