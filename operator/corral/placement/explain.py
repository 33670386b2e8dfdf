"""Sentences for users: why a gang went where it went, or why it fits nowhere."""

from __future__ import annotations

from collections import Counter

from corral.api.gpupool import HOSTNAME_LEVEL
from corral.fleet.demand import WorkerDemand
from corral.fleet.pool import CapacityIndex, PoolView
from corral.fleet.resources import CPU, MEMORY, PODS
from corral.fleet.topology import Domain
from corral.placement.request import PlacementRequest

TIMES = "\N{MULTIPLICATION SIGN}"


def short(level: str | None) -> str:
    """`network.corral.dev/block` -> `block`; the host level is `host`."""
    if level is None:
        return "pool"
    if level == HOSTNAME_LEVEL:
        return "host"
    return level.rsplit("/", 1)[-1]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def needs(request: PlacementRequest) -> str:
    """`the gang needs 32 (4 workers x 8)` (with a multiplication sign): its devices."""
    return (
        f"the gang needs {request.devices} "
        f"({plural(request.workers, 'worker')} {TIMES} {request.devices_per_worker})"
    )


def cpu_text(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def memory_text(size: int) -> str:
    for suffix, power in (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if size % (1 << power) == 0:
            return f"{size >> power}{suffix}"
    return str(size)


def unlabelled_note(view: PoolView, up_to: int | None = None) -> str | None:
    """Says which nodes are in no domain of some level (only levels <= up_to, if given)."""
    parts = []
    for level, count in enumerate(view.topology.unlabelled):
        if not count or (up_to is not None and level > up_to):
            continue
        key = view.topology.levels[level]
        parts.append(f"{plural(count, 'node')} without a {key} label")
    if not parts:
        return None
    return (
        f"{', '.join(parts)} in pool {view.name}: such a node is in no domain of that level, "
        "so only gangs without a topology constraint at that level use it"
    )


def unusable_summary(view: PoolView, demand: WorkerDemand) -> str:
    """` (n of m nodes usable: ...)`, or "". It reads only the nodes (never their usage), so it is
    kept with the pool's static answers: a refusal of a queue's head is explained on every pass,
    and walking every node each time made that pass cost the size of the pool."""
    answer = view.static(("unusable-summary", demand), lambda: _unusable_summary(view, demand))
    assert isinstance(answer, str)
    return answer


def _unusable_summary(view: PoolView, demand: WorkerDemand) -> str:
    reasons: Counter[str] = Counter()
    for name in view.nodes:
        why = view.why_unusable(name, demand)
        if why is not None:
            reasons[why] += 1
    if not reasons:
        return ""
    shown = [
        f"{count} {why}" for why, count in sorted(reasons.items(), key=lambda i: (-i[1], i[0]))[:4]
    ]
    return (
        f" ({len(view.nodes) - sum(reasons.values())} of {plural(len(view.nodes), 'node')} "
        f"usable: {', '.join(shown)})"
    )


def largest(index: CapacityIndex, domains: list[Domain]) -> Domain | None:
    """The domain holding the most workers (then most free devices, then first by name)."""
    if not domains:
        return None
    return min(domains, key=lambda d: (-index.cap.get(d, 0), -index.room.get(d, 0), d.sort_key()))


def hosts_with_room(view: PoolView, index: CapacityIndex, domain: Domain) -> int:
    topology = view.topology
    count = 0
    for name, free in index.free.items():
        if free > 0 and domain in topology.parent_of[name].ancestors():
            count += 1
    return count


def room_phrase(free: int, hosts: int, fits: int, request: PlacementRequest) -> str:
    phrase = f"{free} free devices in {plural(hosts, 'host')}"
    if fits * request.devices_per_worker < free:
        phrase += f" (room for {plural(fits, 'worker')} of {request.devices_per_worker})"
    return phrase


def workers_by_resource(
    request: PlacementRequest, free: dict[str, int], free_devices: int
) -> dict[str, int]:
    """How many workers one node's free amounts hold, per resource the worker asks for."""
    out = {"devices": free_devices // request.devices_per_worker}
    if request.cpu_millis_per_worker:
        out["cpu"] = max(0, free.get(CPU, 0)) // request.cpu_millis_per_worker
    if request.memory_bytes_per_worker:
        out["memory"] = max(0, free.get(MEMORY, 0)) // request.memory_bytes_per_worker
    if PODS in free:
        out["pods"] = max(0, free[PODS])
    return out


def binding_resources(request: PlacementRequest, totals: Counter[str]) -> str:
    """`, but cpu (10 per worker) allows only 2`: the resources that hold fewer workers than the
    devices do (empty when the devices bind)."""
    shown = {
        "cpu": f"cpu ({cpu_text(request.cpu_millis_per_worker)} per worker)",
        "memory": f"memory ({memory_text(request.memory_bytes_per_worker)} per worker)",
        "pods": "pod slots",
    }
    tighter = [
        f"{shown[name]} only {count}"
        for name, count in totals.items()
        if name != "devices" and count < totals["devices"]
    ]
    if not tighter:
        return ""
    return f"; devices alone would hold {plural(totals['devices'], 'worker')}, {', '.join(tighter)}"


def resource_binding(view: PoolView, index: CapacityIndex, request: PlacementRequest) -> str:
    """When cpu, memory or pod slots hold fewer workers than the free devices would."""
    totals: Counter[str] = Counter()
    for name, free in index.free.items():
        if not free:
            continue
        node = view.nodes[name]
        used = view.usage(name)
        amounts = {key: node.allocatable[key] - used.get(key, 0) for key in node.allocatable}
        totals.update(workers_by_resource(request, amounts, free))
    return binding_resources(request, totals)
