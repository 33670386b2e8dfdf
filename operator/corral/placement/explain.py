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
    return (
        f"the gang needs {request.devices} devices "
        f"({plural(request.workers, 'worker')} {TIMES} {request.devices_per_worker})"
    )


def _cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def _memory(size: int) -> str:
    for suffix, power in (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if size % (1 << power) == 0:
            return f"{size >> power}{suffix}"
    return str(size)


def loose_note(view: PoolView, up_to: int | None = None) -> str | None:
    """Says which nodes sit in no domain of some level (only levels <= up_to, if given)."""
    parts = []
    for level, count in enumerate(view.topology.loose):
        if not count or (up_to is not None and level > up_to):
            continue
        key = view.topology.levels[level]
        parts.append(f"{plural(count, 'node')} without a {key} label")
    if not parts:
        return None
    return (
        f"{', '.join(parts)} in pool {view.name}: such a node is in no domain of that level or "
        "below, so only gangs without a topology constraint at those levels use it"
    )


def unusable_summary(view: PoolView, demand: WorkerDemand) -> str:
    reasons: Counter[str] = Counter()
    for name in view.nodes:
        why = view.why_unusable(name, demand)
        if why is not None:
            reasons[why] += 1
    if not reasons:
        return ""
    shown = [f"{count} {why}" for why, count in sorted(reasons.items(), key=lambda i: -i[1])[:4]]
    return (
        f" ({len(view.nodes) - sum(reasons.values())} of {plural(len(view.nodes), 'node')} "
        f"usable: {', '.join(shown)})"
    )


def largest(index: CapacityIndex, domains: list[Domain]) -> Domain | None:
    """The domain holding the most workers (then most free devices, then first by name)."""
    if not domains:
        return None
    return min(domains, key=lambda d: (-index.cap.get(d, 0), -index.room.get(d, 0), d.path))


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


def resource_binding(view: PoolView, index: CapacityIndex, request: PlacementRequest) -> str:
    """When devices alone would hold more workers than cpu, memory or pod slots allow."""
    d = request.devices_per_worker
    by_devices = sum(free // d for free in index.free.values())
    if by_devices <= index.cap.get(view.topology.root, 0):
        return ""
    shortest: Counter[str] = Counter()
    for name, free in index.free.items():
        if free < d:
            continue
        node = view.nodes[name]
        used = view.usage(name)
        if request.cpu_millis_per_worker and (
            node.allocatable.get(CPU, 0) - used.get(CPU, 0) < request.cpu_millis_per_worker
        ):
            shortest["cpu"] += 1
        elif request.memory_bytes_per_worker and (
            node.allocatable.get(MEMORY, 0) - used.get(MEMORY, 0) < request.memory_bytes_per_worker
        ):
            shortest["memory"] += 1
        elif PODS in node.allocatable and node.allocatable[PODS] - used.get(PODS, 0) < 1:
            shortest["pods"] += 1
    parts = []
    if shortest["cpu"]:
        parts.append(
            f"{plural(shortest['cpu'], 'host')} with free devices lack "
            f"{_cpu(request.cpu_millis_per_worker)} cpu"
        )
    if shortest["memory"]:
        parts.append(
            f"{plural(shortest['memory'], 'host')} with free devices lack "
            f"{_memory(request.memory_bytes_per_worker)} memory"
        )
    if shortest["pods"]:
        parts.append(f"{plural(shortest['pods'], 'host')} with free devices have no pod slot left")
    return "; " + ", ".join(parts) if parts else ""


def describe_resources(request: PlacementRequest) -> tuple[str, str]:
    return _cpu(request.cpu_millis_per_worker), _memory(request.memory_bytes_per_worker)
