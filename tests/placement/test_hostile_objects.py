"""One bad object fails only itself (issue 9, §1): whatever a tenant writes into a TrainingJob,
and whatever a Node, Pod or GPUPool dict holds, the parse and plan functions either return or
raise their typed error (InvalidObject) — and a valid job beside them is still placed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.mutations import mutated

from corral.api import GPUPool, InvalidObject, TrainingJob, parse_object
from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, RACK, job, node, pod, pool
from corral.placement import Placement, PlacementRequest, candidate_pools, place

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_job() -> dict[str, Any]:
    """A job using every field the solver reads, so that mutations reach each of them."""
    document = (
        job("poison", "team-b")
        .workers(2)
        .gpus(8)
        .required(BLOCK)
        .preferred(RACK)
        .accelerator("H100-80GB", min_memory_gib=40)
        .capacity("on-demand", "spot", prefer="spot")
        .residency(jurisdictions=["EU"], regions=["eu-west-1"])
        .requests(cpu="8", memory="64Gi")
        .tolerate("nvidia.com/gpu", effect="NoSchedule")
        .node_selector(**{"network.corral.dev/block": "b1"})
        .dict()
    )
    container = document["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "A", "value": "1"}]
    container["resources"]["limits"] = {"nvidia.com/gpu": "8"}
    document["spec"]["budget"] = {"deviceHours": 100}
    document["spec"]["checkpoint"] = {"intervalSeconds": 600, "hook": {"annotation": {}}}
    return document


def fleet_nodes() -> list[dict[str, Any]]:
    return [
        node(f"h{i}").block("b1").rack(f"r{i // 2}").gpus(8).cpu("64").memory("512Gi").obj()
        for i in range(4)
    ]


def good_pool() -> GPUPool:
    return (
        pool("h100").levels(BLOCK, RACK).accelerator("H100-80GB").location("eu-west-1", "EU").obj()
    )


def plan_one(document: Any, snapshot: FleetSnapshot) -> object:
    """What the operator does with one job: parse, then ask the solver. Only InvalidObject
    may come out."""
    try:
        parsed = parse_object(document)
    except InvalidObject as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return exc
    if not isinstance(parsed, TrainingJob):
        return parsed
    request = PlacementRequest.from_training_job(parsed)
    candidate_pools(snapshot, request)
    result = place(snapshot, request)
    result.to_dict()  # the explanation is rendered too (it once overflowed on huge numbers)
    return result


@SETTINGS
@given(st.lists(mutated(full_job()), min_size=1, max_size=4))
def test_poison_jobs_never_raise_and_a_valid_job_still_places(poison: list[dict[str, Any]]) -> None:
    snapshot = FleetSnapshot.build(fleet_nodes(), [], [good_pool()])
    for document in poison:
        plan_one(document, snapshot)
    good = job("normal", "team-a").workers(2).gpus(8).obj()
    assert isinstance(place(snapshot, PlacementRequest.from_training_job(good)), Placement)


@SETTINGS
@given(
    st.lists(mutated(node("bad").block("b1").rack("r9").gpus(8).taint("x").obj()), max_size=3),
    st.lists(mutated(pod("p", "team-b").on("h0").gpus(1).cpu("1").obj()), max_size=3),
    st.lists(mutated(pool("other").levels(BLOCK, RACK).dict()), max_size=2),
)
def test_bad_nodes_pods_and_pools_are_left_out_alone(
    nodes: list[Any], pods: list[Any], pools: list[Any]
) -> None:
    valid_pools = [good_pool()]
    for document in pools:
        try:
            parsed = parse_object(document, expect="GPUPool")
        except InvalidObject:
            continue
        assert isinstance(parsed, GPUPool)
        if parsed.metadata.name and parsed.metadata.name != "h100":
            valid_pools.append(parsed)
    snapshot = FleetSnapshot.build([*fleet_nodes(), *nodes], pods, valid_pools)
    for key, problem in snapshot.invalid.items():
        assert key.startswith(("Node ", "Pod ")) and ": " in problem
    job_document = job("normal", "team-a").workers(2).gpus(8).dict()
    result = plan_one(job_document, snapshot)
    assert not isinstance(result, InvalidObject)
