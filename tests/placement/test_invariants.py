"""Properties that hold for every fleet and gang, whatever the objective decides.

- never more workers on a node than its free devices, cpu, memory and pod slots hold;
- every hard constraint respected: usable nodes only (Ready, not cordoned, taints tolerated,
  capacity type allowed), and `topology.required`;
- all or nothing: a placement names a node for every worker;
- determinism: the same fleet, built in any order or incrementally, gives the same answer, and
  a snapshot kept current through pod changes (with its memos) answers like a fresh one.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, HOST, RACK, ZONE, job, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place

SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))
"""Multiplies the number of generated examples (e.g. 30 for a long run)."""
SETTINGS = settings(
    max_examples=120 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    hosts = []
    for index in range(draw(st.integers(1, 16))):
        hosts.append(
            {
                "name": f"n{index:02d}",
                "zone": draw(st.sampled_from(["z1", "z2"])),
                "block": draw(st.sampled_from(["b1", "b2", "b3", None])),
                "rack": draw(st.sampled_from(["r1", "r2", "r3", "r4"])),
                "gpus": draw(st.sampled_from([4, 8])),
                "cpu": draw(st.sampled_from([16, 32, 64])),
                "ready": draw(st.sampled_from([True] * 8 + [False])),
                "cordoned": draw(st.sampled_from([False] * 8 + [True])),
                "taint": draw(st.sampled_from([None] * 6 + ["gpu", "maintenance"])),
                "spot": draw(st.booleans()),
            }
        )
    pods = []
    for index in range(draw(st.integers(0, 20))):
        host = draw(st.sampled_from(hosts))
        pods.append(
            {
                "name": f"p{index:02d}",
                "node": host["name"],
                "gpus": draw(st.sampled_from([1, 2, 4])),
                "cpu": draw(st.sampled_from([0, 4, 8])),
                "phase": draw(st.sampled_from(["Running"] * 4 + ["Succeeded", "Pending"])),
            }
        )
    return {
        "hosts": hosts,
        "pods": pods,
        "workers": draw(st.integers(1, 10)),
        "devices": draw(st.sampled_from([1, 2, 4, 8])),
        "cpu": draw(st.sampled_from([0, 2, 8])),
        "required": draw(st.sampled_from([None, None, ZONE, BLOCK, RACK, HOST])),
        "capacity": draw(st.sampled_from([None, ("spot",), ("on-demand",)])),
        "prefer": draw(st.sampled_from([None, "spot"])),
        "tolerate": draw(st.booleans()),
    }


def objects(case: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = []
    for host in case["hosts"]:
        builder = node(host["name"]).zone(host["zone"]).rack(host["rack"]).gpus(host["gpus"])
        builder.label(BLOCK, host["block"]).cpu(str(host["cpu"]))
        if not host["ready"]:
            builder.not_ready()
        if host["cordoned"]:
            builder.cordoned()
        if host["taint"]:
            builder.taint(host["taint"])
        if host["spot"]:
            builder.spot()
        nodes.append(builder.obj())
    pods = []
    for spec in case["pods"]:
        builder = pod(spec["name"]).on(spec["node"]).gpus(spec["gpus"]).phase(spec["phase"])
        if spec["cpu"]:
            builder.cpu(str(spec["cpu"]))
        pods.append(builder.obj())
    return nodes, pods


def request_of(case: dict[str, Any]) -> PlacementRequest:
    builder = job("j").workers(case["workers"]).gpus(case["devices"])
    if case["cpu"]:
        builder.requests(cpu=str(case["cpu"]))
    if case["required"]:
        builder.required(case["required"])
    if case["capacity"] or case["prefer"]:
        types = case["capacity"] or ("spot", "on-demand")
        prefer = case["prefer"] if case["prefer"] in types else None
        builder.capacity(*types, prefer=prefer)
    if case["tolerate"]:
        builder.tolerate("gpu")
    return PlacementRequest.from_training_job(builder.obj())


POOLS = [pool("p").levels(ZONE, BLOCK, RACK, HOST).obj()]


def solve(case: dict[str, Any]) -> Placement | NoFit:
    nodes, pods = objects(case)
    return place(FleetSnapshot.build(nodes, pods, POOLS), request_of(case))


@SETTINGS
@given(scenarios())
def test_placements_respect_every_constraint(case: dict[str, Any]) -> None:
    result = solve(case)
    if isinstance(result, NoFit):
        assert result.reason
        return
    request = request_of(case)
    # all or nothing
    assert len(result.assignments) == case["workers"]
    hosts = {h["name"]: h for h in case["hosts"]}
    used_gpus = dict.fromkeys(hosts, 0)
    used_cpu = dict.fromkeys(hosts, 0)
    for spec in case["pods"]:
        if spec["phase"] != "Succeeded":
            used_gpus[spec["node"]] += spec["gpus"]
            used_cpu[spec["node"]] += spec["cpu"]
    for name in set(result.assignments):
        host = hosts[name]
        workers = result.assignments.count(name)
        # never more than the node has free
        assert workers * case["devices"] <= host["gpus"] - used_gpus[name]
        # (a worker asking no CPU fits a node its pods already overcommit: kube-scheduler checks
        # only what a pod requests)
        assert workers * case["cpu"] <= max(0, host["cpu"] - used_cpu[name])
        # usable nodes only
        assert host["ready"] and not host["cordoned"]
        assert host["taint"] in (None, "gpu" if case["tolerate"] else None)
        capacity = "spot" if host["spot"] else "on-demand"
        assert capacity in request.capacity_types
    required = case["required"]
    if required == HOST:
        assert len(set(result.assignments)) == 1
    elif required is not None:
        names = {ZONE: ("zone",), BLOCK: ("zone", "block"), RACK: ("zone", "block", "rack")}
        paths = {tuple(hosts[n][k] for k in names[required]) for n in result.assignments}
        assert len(paths) == 1 and None not in next(iter(paths))[-1:]


@SETTINGS
@given(scenarios(), st.integers(0, 2**16))
def test_same_fleet_in_any_order_gives_the_same_answer(case: dict[str, Any], seed: int) -> None:
    nodes, pods = objects(case)
    request = request_of(case)
    first = place(FleetSnapshot.build(nodes, pods, POOLS), request)
    again = place(FleetSnapshot.build(nodes, pods, POOLS), request)
    assert first == again
    rng = random.Random(seed)
    shuffled_nodes, shuffled_pods = nodes[:], pods[:]
    rng.shuffle(shuffled_nodes)
    rng.shuffle(shuffled_pods)
    # Built the other way round: nodes first, then pods one by one.
    incremental = FleetSnapshot.build(shuffled_nodes, [], POOLS)
    for item in shuffled_pods:
        incremental.upsert_pod(item)
    assert place(incremental, request) == first


@SETTINGS
@given(scenarios(), st.lists(st.integers(0, 2**16), min_size=1, max_size=8))
def test_a_snapshot_kept_current_answers_like_a_fresh_one(
    case: dict[str, Any], changes: list[int]
) -> None:
    nodes, pods = objects(case)
    request = request_of(case)
    live = FleetSnapshot.build(nodes, pods, POOLS)
    place(live, request)  # fills the memos
    current = {p["metadata"]["name"]: p for p in pods}
    for change in changes:
        rng = random.Random(change)
        kind = rng.randrange(4)
        if kind == 0 and current:
            name = rng.choice(sorted(current))
            del current[name]
            live.remove_pod("default", name)
        elif kind == 1:
            host = rng.choice(nodes)["metadata"]["name"]
            name = f"new{change}"
            current[name] = pod(name).on(host).gpus(rng.choice([1, 2, 4, 8])).obj()
            live.upsert_pod(current[name])
        elif kind == 2 and current:
            name = rng.choice(sorted(current))
            current[name] = {**current[name], "status": {"phase": "Succeeded"}}
            live.upsert_pod(current[name])
        else:
            index = rng.randrange(len(nodes))
            nodes[index] = (
                node(nodes[index]["metadata"]["name"])
                .gpus(8)
                .zone("z1")
                .rack(rng.choice(["r1", "r9"]))
                .obj()
            )
            live.upsert_node(nodes[index])
        fresh = FleetSnapshot.build(nodes, list(current.values()), POOLS)
        assert place(live, request) == place(fresh, request)
