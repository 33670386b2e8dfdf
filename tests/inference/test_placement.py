"""Replica placement: the gang solver's constraints, then spread across zones and hosts."""

from __future__ import annotations

from corral.api.inferenceservice import InferenceServiceSpec
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.testing import node, pod, pool
from corral.inference.placement import place_replica, replica_request
from corral.placement import NoFit


def spec(**fields: object) -> InferenceServiceSpec:
    base = {
        "acceleratorsPerReplica": 1,
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
    }
    return InferenceServiceSpec.model_validate({**base, **fields})


def fleet(*nodes: object, pods: tuple[object, ...] = ()) -> FleetSnapshot:
    zoned = (
        pool("p").select(pool="p").levels("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    )
    return FleetSnapshot.build(
        [n.obj() for n in nodes],  # type: ignore[attr-defined]
        [p.obj() for p in pods],  # type: ignore[attr-defined]
        [zoned.obj()],
    )


def hosts(count: int, zones: int = 1, gpus: int = 8) -> list[object]:
    return [node(f"h{i}").label("pool", "p").zone(f"z{i % zones}").gpus(gpus) for i in range(count)]


def place_many(snapshot: FleetSnapshot, count: int, wanted: int | None = None) -> list[str]:
    request = replica_request("ns/chat", spec())
    placed: list[str] = []
    for i in range(count):
        found = place_replica(snapshot, request, placed, wanted or count)
        assert not isinstance(found, NoFit), found
        placed.append(found[1])
        snapshot.upsert_pod(pod(f"r{i}").on(found[1]).gpus(1).obj())
    return placed


def test_replicas_spread_over_zones_then_hosts() -> None:
    placed = place_many(fleet(*hosts(6, zones=3)), 6)
    assert len(set(placed)) == 6
    zones = [int(name[1:]) % 3 for name in placed[:3]]
    assert sorted(zones) == [0, 1, 2]  # one per zone before any zone gets a second


def test_best_fit_among_equally_spread_hosts_keeps_big_holes_whole() -> None:
    nodes = hosts(3)
    snapshot = fleet(*nodes, pods=(pod("busy").on("h1").gpus(6),))
    request = replica_request("ns/chat", spec())
    assert place_replica(snapshot, request, [], 1) == ("p", "h1")  # 2 free beats 8 free


def test_two_replicas_never_share_the_only_host_with_room() -> None:
    snapshot = fleet(*hosts(2), pods=(pod("gang").on("h1").gpus(8),))
    request = replica_request("ns/chat", spec())
    assert place_replica(snapshot, request, [], 2) == ("p", "h0")
    found = place_replica(snapshot, request, ["h0"], 2)
    assert isinstance(found, NoFit)
    assert "already holds every other replica" in found.reason
    # A single replica wanted: nothing to spread.
    assert place_replica(snapshot, request, ["h0"], 1) == ("p", "h0")


def test_devices_planned_for_a_gang_are_not_taken() -> None:
    snapshot = fleet(*hosts(1, gpus=8), pods=(pod("w0").assumed("h0").gpus(8),))
    found = place_replica(snapshot, replica_request("ns/chat", spec()), [], 1)
    assert isinstance(found, NoFit)
    assert "no node of pool(s) p has room" in found.reason


def test_pool_constraints_refuse_permanently_naming_the_field() -> None:
    found = place_replica(
        fleet(*hosts(1)),
        replica_request("ns/chat", spec(accelerator={"types": ["H200"]})),
        [],
        1,
    )
    assert isinstance(found, NoFit) and found.permanent
    assert "accelerator.types=[H200]" in found.reason
