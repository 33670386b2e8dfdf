"""Noticed nodes take no new workers, whatever kube-scheduler would allow; nodes with an advisory
notice are avoided while others have room. One place decides it (the snapshot's node records),
so the scheduling pass, `corral plan`, in-place replacement and the pool status agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from corral.api.gpupool import GPUPool
from corral.api.selection import ALL_CAPACITY_TYPES
from corral.disruption import notices
from corral.disruption.notices import node_usability
from corral.fleet import FleetSnapshot
from corral.fleet.testing import NodeBuilder, job, node, pool
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.sim.memory import InMemoryCluster

Obj = dict[str, Any]


def host(name: str) -> NodeBuilder:
    return node(name).rack("r0").label("pool", "p").gpus(8).spot()


def with_condition(obj: Obj, type_: str, message: str = "") -> Obj:
    condition = {"type": type_, "status": "True"}
    if message:
        condition["message"] = message
    obj["status"]["conditions"].append(condition)
    return obj


def shutting_down(obj: Obj) -> Obj:
    obj["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "message": "node is shutting down"}
    ]
    return obj


def request(workers: int) -> PlacementRequest:
    return PlacementRequest("default/j", workers, 8, capacity_types=ALL_CAPACITY_TYPES)


def snapshot(nodes: list[Obj], tolerate_all: bool = False) -> FleetSnapshot:
    builder = pool("p").select(pool="p")
    body = builder.dict()
    if tolerate_all:
        body["spec"]["tolerations"] = [{"operator": "Exists"}]
    return FleetSnapshot.build(nodes, [], [GPUPool.model_validate(body)], notices=node_usability)


BINDING = [
    pytest.param(lambda o: with_condition(o, "DrainInProgress"), id="DrainInProgress condition"),
    pytest.param(
        lambda o: with_condition(o, "GracefulNodeShutdownInProgress"),
        id="GracefulNodeShutdownInProgress condition",
    ),
    pytest.param(shutting_down, id="kubelet shutdown (Ready=False)"),
]


@pytest.mark.parametrize("signal", BINDING)
def test_a_condition_only_notice_keeps_new_workers_off_the_node(signal: Any) -> None:
    nodes = [signal(host("h0").obj()), host("h1").obj()]
    fleet = snapshot(nodes)
    result = place(fleet, request(1))
    assert isinstance(result, Placement) and result.assignments == ["h1"]
    assert fleet.node_problem("h0") is not None
    refused = place(fleet, request(2))  # one usable host of 8 devices: two workers wait
    assert isinstance(refused, NoFit) and not refused.permanent


def test_a_noticed_node_is_avoided_even_when_the_pool_tolerates_its_taint() -> None:
    """A pool that tolerates every taint would let kube-scheduler bind onto a node under notice:
    the notice, not the taint, keeps Corral's placements off it."""
    nodes = [host("h0").taint(notices.NTH_SPOT_ITN).obj(), host("h1").obj()]
    fleet = snapshot(nodes, tolerate_all=True)
    for _ in range(3):
        result = place(fleet, request(1))
        assert isinstance(result, Placement) and result.assignments == ["h1"]


def test_without_notices_wired_the_snapshot_sees_no_notice() -> None:
    fleet = FleetSnapshot.build(
        [with_condition(host("h0").obj(), "DrainInProgress")],
        [],
        [pool("p").select(pool="p").obj()],
    )
    assert fleet.node_problem("h0") is None


@pytest.mark.parametrize(
    "advise",
    [
        pytest.param(
            lambda b: b.taint(notices.NTH_REBALANCE).obj(), id="NTH rebalance recommendation"
        ),
        pytest.param(
            lambda b: with_condition(b.obj(), "MaintenancePlanned"), id="MaintenancePlanned"
        ),
    ],
)
def test_an_advisory_notice_steers_placement_away_when_there_is_a_choice(advise: Any) -> None:
    # h0 is the tightest fit (best fit would pick it), but it is advised against.
    nodes = [advise(host("h0").gpus(8)), host("h1").gpus(16).obj()]
    fleet = snapshot(nodes, tolerate_all=True)
    result = place(fleet, request(1))
    assert isinstance(result, Placement) and result.assignments == ["h1"]
    assert "advisory notice avoided" in result.explanation
    # No choice: the advised node is used rather than leaving the gang waiting.
    both = place(fleet, request(3))
    assert isinstance(both, Placement) and sorted(set(both.assignments)) == ["h0", "h1"]


def test_notice_status_follows_the_node() -> None:
    fleet = snapshot([host("h0").obj(), host("h1").obj()])
    fleet.upsert_node(with_condition(host("h0").obj(), "DrainInProgress"))
    assert isinstance(r := place(fleet, request(1)), Placement) and r.assignments == ["h1"]
    fleet.upsert_node(host("h0").obj())  # the drain was called off
    assert fleet.node_problem("h0") is None
    assert fleet.pools["p"].advised == set()


def test_a_noticed_node_is_passing_not_the_job_s_own_constraint() -> None:
    """A notice (and its platform taint) goes with the node, as a cordon does: a gang that needs
    every node waits for capacity (NoFit, holding its pool), not as if it asked for nodes that
    do not exist (NoMatchingNodes)."""
    c = InMemoryCluster(
        [host("h0").taint(notices.NTH_SPOT_ITN).obj(), host("h1").obj()],
        [pool("p").select(pool="p").obj()],
    )
    key = c.submit(job("gang").workers(2).gpus(8).dict(), datetime(2026, 11, 30, tzinfo=UTC))
    c.run_pass(datetime(2026, 11, 30, tzinfo=UTC))
    placed = next(x for x in c.jobs[key]["status"]["conditions"] if x["type"] == "Placed")
    assert (placed["status"], placed["reason"]) == ("False", "NoFit"), placed
