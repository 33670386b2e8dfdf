"""A pool's status figures, as the GPUPool controller writes them."""

from __future__ import annotations

from corral.fleet import FleetSnapshot, pool_status
from corral.fleet.testing import BLOCK, HOST, RACK, node, pod, pool


def test_pool_status_figures() -> None:
    nodes = [
        node("a").block("b1").rack("r1").gpus(8).spot().obj(),
        node("b").block("b1").rack("r1").gpus(8).obj(),
        node("c").block("b1").rack("r2").gpus(8).obj(),
        node("d").block("b2").rack("r3").gpus(8).not_ready().obj(),
    ]
    pods = [pod("p1").on("a").gpus(6).obj(), pod("p2").on("c").gpus(8).obj()]
    fleet = FleetSnapshot.build(
        nodes, pods, [pool("h100").levels(BLOCK, RACK, HOST).pricing(4.0, spot=1.5).obj()]
    )
    status = pool_status(fleet, "h100", observed_generation=3)
    assert status.observed_generation == 3
    assert (status.nodes, status.ready_nodes, status.spot_nodes) == (4, 3, 1)
    devices = status.devices
    assert (devices.capacity, devices.allocatable, devices.allocated) == (32, 32, 14)
    assert devices.free == 2 + 8 + 0  # d is not Ready: its devices are not free to use
    levels = {level.level: level for level in status.levels}
    assert levels[BLOCK].domains == 2
    assert (levels[BLOCK].largest_free_domain, levels[BLOCK].largest_free_devices) == ("b1", 10)
    assert (levels[RACK].largest_free_domain, levels[RACK].largest_free_devices) == ("r1", 10)
    assert (levels[HOST].domains, levels[HOST].largest_free_domain) == (4, "b")
    # 10 free devices, 8 of them on a wholly free node
    assert status.fragmentation == 0.2
    assert status.price_per_hour.allocated_per_hour == 6 * 1.5 + 8 * 4.0
    assert status.price_per_hour.total_per_hour == 8 * 1.5 + 24 * 4.0
    assert status.conditions == []


def test_an_unknown_or_empty_pool_has_zero_figures() -> None:
    fleet = FleetSnapshot.build([], [], [pool("empty").obj()])
    assert pool_status(fleet, "empty").devices.free == 0
    assert pool_status(fleet, "empty").fragmentation == 0.0
    assert pool_status(fleet, "missing").nodes == 0
