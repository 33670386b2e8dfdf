"""The baseline policies: each scenario read as the rule it checks, plus a property that every
policy respects the hard constraints the solver respects (whole workers, usable nodes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, RACK, ZONE, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest
from corral.placement.baselines import POLICIES, first_fit, kueue_best_fit, spread


def fleet(free: dict[str, int], racks: dict[str, str] | None = None) -> FleetSnapshot:
    """Hosts of 8 devices named as given, `8 - free` devices taken on each; rack r1 unless told."""
    racks = racks or {}
    nodes = [
        node(name).zone("z1").block("b1").rack(racks.get(name, "r1")).gpus(8).obj() for name in free
    ]
    pods = [pod(f"busy-{n}").on(n).gpus(8 - f).obj() for n, f in free.items() if f < 8]
    return FleetSnapshot.build(nodes, pods, [pool("p").levels(ZONE, BLOCK, RACK).obj()])


def gang(workers: int, devices: int = 1, **extra: Any) -> PlacementRequest:
    return PlacementRequest(key="ns/g", workers=workers, devices_per_worker=devices, **extra)


def hosts(result: Placement | NoFit) -> dict[str, int]:
    assert isinstance(result, Placement), result
    return dict(Counter(result.assignments))


def test_first_fit_takes_hosts_in_name_order() -> None:
    snapshot = fleet({"c": 8, "a": 2, "b": 8})
    assert hosts(first_fit(snapshot, gang(4))) == {"a": 2, "b": 2}


def test_spread_puts_each_worker_on_the_host_with_most_free_devices() -> None:
    snapshot = fleet({"a": 2, "b": 8, "c": 8})
    # b (8 free, first by name), c (8), b (7, first by name), c (7)
    assert hosts(spread(snapshot, gang(4))) == {"b": 2, "c": 2}


def test_kueue_best_fit_takes_the_tightest_single_host() -> None:
    snapshot = fleet({"a": 8, "b": 3, "c": 4})
    assert hosts(kueue_best_fit(snapshot, gang(3))) == {"b": 3}


def test_kueue_best_fit_picks_the_rack_with_least_room_that_holds_the_gang() -> None:
    racks = {"a1": "r1", "a2": "r1", "b1": "r2", "b2": "r2"}
    snapshot = fleet({"a1": 8, "a2": 8, "b1": 8, "b2": 2}, racks)
    result = kueue_best_fit(snapshot, gang(2, 5))
    assert isinstance(result, Placement)
    assert result.span_level == RACK and result.span_domain == "r1"


@pytest.mark.parametrize("policy", ["first-fit", "spread", "kueue-bestfit"])
def test_required_level_keeps_the_gang_in_one_domain(policy: str) -> None:
    racks = {"a1": "r1", "b1": "r2", "b2": "r2"}
    snapshot = fleet({"a1": 8, "b1": 8, "b2": 8}, racks)
    result = POLICIES[policy](snapshot, gang(2, 8, required_level=RACK))
    assert isinstance(result, Placement)
    assert set(result.assignments) == {"b1", "b2"}
    assert result.span_level == RACK


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_gang_that_can_never_fit_is_permanent(policy: str) -> None:
    snapshot = fleet({"a": 8})
    result = POLICIES[policy](snapshot, gang(1, 8, accelerator_types=("A100",)))
    assert isinstance(result, NoFit) and result.permanent
    assert "accelerator.types" in result.reason


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_gang_that_does_not_fit_now_waits(policy: str) -> None:
    snapshot = fleet({"a": 3, "b": 3})
    result = POLICIES[policy](snapshot, gang(2, 4))
    assert isinstance(result, NoFit) and not result.permanent


@given(
    free=st.lists(st.integers(0, 8), min_size=1, max_size=12),
    workers=st.integers(1, 12),
    devices=st.sampled_from([1, 2, 4, 8]),
)
def test_every_policy_places_whole_workers_on_free_devices(
    free: list[int], workers: int, devices: int
) -> None:
    named = {f"h{i:02d}": f for i, f in enumerate(free)}
    racks = {name: f"r{i // 4}" for i, name in enumerate(named)}
    snapshot = fleet(named, racks)
    holds = sum(f // devices for f in free)
    for name, policy in POLICIES.items():
        result = policy(snapshot, gang(workers, devices))
        if holds < workers:
            assert isinstance(result, NoFit), name
            continue
        assert isinstance(result, Placement), (name, result)
        assert len(result.assignments) == workers
        for host, count in Counter(result.assignments).items():
            assert count * devices <= named[host], (name, host)
