"""Where one more replica goes: the gang solver's hard constraints, then spread, then best fit.

A replica is a gang of one, so it passes the same pool filters (accelerator, memory, residency,
capacity type), node usability (Ready, not cordoned, taints, nodeSelector) and capacity index as
gang workers, against the same fleet snapshot, which counts every gang worker planned in the
ledger: a replica never takes devices promised to a gang, nor a gang a replica's. The objective
differs: a gang wants to be close, replicas want to be apart. So among the nodes that fit:
a node without an advisory termination notice (a rebalance recommendation, planned maintenance:
the same reading as for gangs, `PoolView.advised`) before one with it, then fewest replicas of the service in the node's zone (when the pool's topology has a zone level),
then on the node itself, then the least free devices that still fit (best fit keeps large holes
whole for gangs), then the preferred capacity type, then the lower price, then the name.

With two or more replicas wanted, a replica never joins a host that already holds every other
replica: it waits for another host instead (`minReplicas >= 2` is never all on one host).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from corral.api.inferenceservice import InferenceServiceSpec
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import NoFit, PlacementRequest
from corral.placement.filters import select_pools

ZONE_LEVEL = "topology.kubernetes.io/zone"


def replica_request(key: str, spec: InferenceServiceSpec) -> PlacementRequest:
    """One replica as a gang of one (the model has validated the template)."""
    return PlacementRequest.of_workload(
        key, spec, spec.template, workers=1, devices_per_worker=spec.accelerators_per_replica
    )


def place_replica(
    snapshot: FleetSnapshot,
    request: PlacementRequest,
    peers: Sequence[str],
    wanted: int,
) -> tuple[str, str] | NoFit:
    """(pool, node) for one more replica, given the nodes of the service's other replicas."""
    choice = select_pools(snapshot, request)
    if choice.refusal is not None:
        return NoFit(choice.refusal, permanent=True)
    demand = request.demand()
    on_node = Counter(peers)
    lonely_host = next(iter(on_node)) if len(on_node) == 1 and wanted >= 2 else None
    best: tuple[tuple[object, ...], str, str] | None = None
    fits_somewhere = False
    for view in choice.views:
        index = view.index(demand)
        zone_level = (
            view.topology.levels.index(ZONE_LEVEL) if ZONE_LEVEL in view.topology.levels else None
        )
        in_zone: Counter[object] = Counter()
        if zone_level is not None:
            for node in peers:
                if node in view.nodes:
                    in_zone[view.topology.domain_of(node, zone_level)] += 1
        for node in view.nodes:
            if index.fits.get(node, 0) < 1:
                continue
            fits_somewhere = True
            if node == lonely_host:
                continue
            zone = view.topology.domain_of(node, zone_level) if zone_level is not None else None
            capacity = view.capacity_types.get(node)
            key = (
                1 if node in view.advised else 0,
                in_zone[zone] if zone is not None else 0,
                on_node[node],
                index.free.get(node, 0),
                0 if request.capacity_prefer in (None, capacity) else 1,
                view.price_milli.get(node, 0),
                node,
            )
            if best is None or key < best[0]:
                best = (key, view.name, node)
    if best is not None:
        return best[1], best[2]
    if fits_somewhere:
        return NoFit(
            f"only host {lonely_host} has room, and it already holds every other replica: "
            "waiting for a second host (replicas of a service with 2 or more never share one)"
        )
    pools = ", ".join(view.name for view in choice.views)
    return NoFit(
        f"no node of pool(s) {pools} has room for a replica ({request.devices_per_worker} "
        f"device(s){_extra(request)})"
    )


def _extra(request: PlacementRequest) -> str:
    parts = []
    if request.cpu_millis_per_worker:
        parts.append(f"{request.cpu_millis_per_worker}m cpu")
    if request.memory_bytes_per_worker:
        parts.append(f"{request.memory_bytes_per_worker // 2**20} MiB memory")
    return "" if not parts else ", " + ", ".join(parts)
