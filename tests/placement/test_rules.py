"""Table-driven placement cases: one per rule of the issue, each read as its scenario.

Each case builds a small fleet with the builders of `corral.fleet.testing`, places a job, and
checks what a user would check: placed or not, where, and the words of the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from corral.api.gpupool import GPUPool
from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, HOST, RACK, ZONE, job, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place


@dataclass
class Case:
    nodes: list[dict[str, Any]]
    job: Any
    pools: list[GPUPool] = field(default_factory=lambda: [pool("h100").obj()])
    pods: list[dict[str, Any]] = field(default_factory=list)
    # expectations
    hosts: set[str] | None = None
    """Exactly these nodes are used."""
    host_count: int | None = None
    span: tuple[str | None, str | None] | None = None
    pool: str | None = None
    reason: list[str] | None = None
    """NoFit with all these fragments in the reason."""
    permanent: bool | None = None
    check: Callable[[Placement], None] | None = None


def rack(block: str, name: str, count: int, zone: str = "z1", free: int = 8) -> list[Any]:
    """`count` hosts named <rack>-h<i> in a rack."""
    return [node(f"{name}-h{i}").zone(zone).block(block).rack(name).gpus(8) for i in range(count)]


def busy(builders: list[Any], gpus: int = 8) -> list[dict[str, Any]]:
    """Pods taking `gpus` devices on each node."""
    out = []
    for builder in builders:
        name = builder.obj()["metadata"]["name"]
        out.append(pod(f"busy-{name}").on(name).gpus(gpus).obj())
    return out


def objs(builders: list[Any]) -> list[dict[str, Any]]:
    return [b.obj() for b in builders]


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}

    # -- free devices, usable nodes ---------------------------------------------------------
    cases["a single worker goes to the node whose free devices fit it most closely"] = Case(
        nodes=[node("roomy").gpus(8).obj(), node("snug").gpus(8).obj()],
        pods=[pod("p").on("snug").gpus(4).obj()],
        job=job("j").workers(1).gpus(4),
        hosts={"snug"},
        span=(HOST, "snug"),
    )
    cases["7 free devices hold one 4-device worker, not 1.75"] = Case(
        nodes=[node("a").rack("r").gpus(8).obj(), node("b").rack("r").gpus(8).obj()],
        pods=[pod("p").on("a").gpus(1).obj(), pod("q").on("b").gpus(1).obj()],
        pools=[pool("h100").levels(RACK, HOST).obj()],
        job=job("j").workers(2).gpus(4),
        hosts={"a", "b"},
        span=(RACK, "r"),
    )
    cases["a NotReady node is not used"] = Case(
        nodes=[node("down").gpus(8).not_ready().obj(), node("up").gpus(8).obj()],
        pods=[pod("p").on("up").gpus(4).obj()],
        job=job("j").workers(1).gpus(4),
        hosts={"up"},
    )
    cases["a cordoned node is not used"] = Case(
        nodes=[node("cordoned").gpus(8).cordoned().obj(), node("open").gpus(8).obj()],
        pods=[pod("p").on("open").gpus(4).obj()],
        job=job("j").workers(1).gpus(4),
        hosts={"open"},
    )
    cases["an untolerated NoSchedule taint keeps the gang off"] = Case(
        nodes=[node("tainted").gpus(8).taint("maintenance").obj(), node("clean").gpus(8).obj()],
        pods=[pod("p").on("clean").gpus(4).obj()],
        job=job("j").workers(1).gpus(4),
        hosts={"clean"},
    )
    cases["a taint the worker template tolerates is fine"] = Case(
        nodes=[node("tainted").gpus(8).taint("nvidia.com/gpu", "present").obj()],
        pods=[pod("p").on("tainted").gpus(4).obj()],
        job=job("j").workers(1).gpus(4).tolerate("nvidia.com/gpu"),
        hosts={"tainted"},
    )
    cases["a taint the pool tolerates for its pods is fine"] = Case(
        nodes=[node("tainted").gpus(8).taint("nvidia.com/gpu", "present").obj()],
        pools=[pool("h100").tolerate("nvidia.com/gpu").obj()],
        job=job("j").workers(1).gpus(8),
        hosts={"tainted"},
    )
    cases["NoExecute keeps the gang off; PreferNoSchedule does not"] = Case(
        nodes=[
            node("evicting").gpus(8).taint("corral.dev/terminating", effect="NoExecute").obj(),
            node("preferring").gpus(8).taint("soft", effect="PreferNoSchedule").obj(),
        ],
        job=job("j").workers(1).gpus(8),
        hosts={"preferring"},
    )
    cases["only tainted nodes: the reason counts them"] = Case(
        nodes=[node("a").gpus(8).taint("maintenance").obj(), node("b").gpus(8).not_ready().obj()],
        job=job("j").workers(1).gpus(8),
        reason=["0 free devices", "taint maintenance:NoSchedule not tolerated", "not Ready"],
        permanent=False,
    )
    cases["Succeeded and Failed pods free their devices"] = Case(
        nodes=[node("a").gpus(8).obj()],
        pods=[
            pod("done").on("a").gpus(4).phase("Succeeded").obj(),
            pod("crashed").on("a").gpus(4).phase("Failed").obj(),
        ],
        job=job("j").workers(1).gpus(8),
        hosts={"a"},
    )
    cases["Corral's assumed workers (annotation, not yet bound) hold their devices"] = Case(
        nodes=[node("a").gpus(8).obj(), node("b").gpus(8).obj()],
        pods=[pod("w0").assumed("a").gpus(8).obj()],
        job=job("j").workers(1).gpus(8),
        hosts={"b"},
    )
    cases["a gang that fits on devices but not on cpu is refused, naming cpu"] = Case(
        nodes=[node("a").gpus(8).cpu("24").obj(), node("b").gpus(8).cpu("24").obj()],
        pods=[pod("p").on("a").cpu("8").obj(), pod("q").on("b").cpu("8").obj()],
        job=job("j").workers(4).gpus(4).requests(cpu="10"),
        reason=["devices alone would hold 4 workers, cpu (10 per worker) only 2"],
        permanent=False,
    )
    cases["cpu that never suffices is permanent, naming cpu"] = Case(
        nodes=[node("a").gpus(8).cpu("16").obj(), node("b").gpus(8).cpu("16").obj()],
        job=job("j").workers(4).gpus(4).requests(cpu="10"),
        reason=["16 devices in all", "cpu (10 per worker) only 2", "even with every pod gone"],
        permanent=True,
    )
    cases["memory per worker above any node's is permanent"] = Case(
        nodes=[node("a").gpus(8).memory("512Gi").obj()],
        job=job("j").workers(1).gpus(8).requests(memory="1Ti"),
        reason=["requests 1Ti memory per worker", "the most is 512Gi"],
        permanent=True,
    )

    # -- pools and selection ----------------------------------------------------------------
    # A GitOps tool applies a pool and its jobs together; the job may be seen first: it waits.
    cases["an unknown pool is waited for"] = Case(
        nodes=[node("a").gpus(8).obj()],
        job=job("j").workers(1).gpus(8).pools("h200-west"),
        reason=["pools=[h200-west]", "no GPUPool of that name", "pools: [h100]"],
        permanent=False,
    )
    cases["no pool of the accelerator"] = Case(
        nodes=[node("a").gpus(8).obj()],
        job=job("j").workers(1).gpus(8).accelerator("B200"),
        reason=["no pool matches accelerator.types=[B200]", "h100: H100-80GB"],
        permanent=True,
    )
    cases["no pool with enough device memory"] = Case(
        nodes=[node("a").gpus(8).obj()],
        job=job("j").workers(1).gpus(8).accelerator("H100-80GB", min_memory_gib=141),
        reason=["accelerator.minMemoryGiB=141", "80 GiB"],
        permanent=True,
    )
    cases["residency: a pool outside the jurisdiction is never used"] = Case(
        nodes=[
            node("a").gpus(8).label("pool", "us").obj(),
            node("b").gpus(8).label("pool", "eu").obj(),
        ],
        pools=[
            pool("us").match_labels({"pool": "us"}).location("us-east-1", "US").obj(),
            pool("eu").match_labels({"pool": "eu"}).location("eu-west-1", "EU").obj(),
        ],
        job=job("j").workers(1).gpus(8).residency(jurisdictions=["EU"]),
        hosts={"b"},
        pool="eu",
    )
    cases["residency by region, none matching"] = Case(
        nodes=[node("a").gpus(8).obj()],
        pools=[pool("h100").location("us-east-1", "US").obj()],
        job=job("j").workers(1).gpus(8).residency(regions=["eu-west-1"]),
        reason=["residency.regions=[eu-west-1]", "h100: us-east-1"],
        permanent=True,
    )
    cases["a pool of the wrong fixed capacity type is never used"] = Case(
        nodes=[node("a").gpus(8).obj()],
        pools=[pool("h100").capacity_type("on-demand").obj()],
        job=job("j").workers(1).gpus(8).capacity("spot"),
        reason=["capacity.types=[spot]", "capacityType on-demand"],
        permanent=True,
    )
    cases["capacityType auto: a spot-only gang uses only spot nodes"] = Case(
        nodes=[node("od").gpus(8).on_demand().obj(), node("sp").gpus(8).spot().obj()],
        pods=[pod("p").on("sp").gpus(4).obj()],
        job=job("j").workers(1).gpus(4).capacity("spot"),
        hosts={"sp"},
    )
    cases["capacity.prefer breaks a tie between equal placements"] = Case(
        nodes=[node("a-od").gpus(8).on_demand().obj(), node("b-sp").gpus(8).spot().obj()],
        job=job("j").workers(1).gpus(8).capacity("spot", "on-demand", prefer="spot"),
        hosts={"b-sp"},
    )
    cases["without a preference the cheaper capacity wins a tie"] = Case(
        nodes=[node("a-od").gpus(8).on_demand().obj(), node("b-sp").gpus(8).spot().obj()],
        job=job("j").workers(1).gpus(8),
        hosts={"b-sp"},
    )
    cases["a node two pools select counts in neither"] = Case(
        nodes=[node("both").gpus(8).label("a", "1").label("b", "1").obj()],
        pools=[
            pool("pa").match_labels({"a": "1"}).obj(),
            pool("pb").match_labels({"b": "1"}).obj(),
        ],
        job=job("j").workers(1).gpus(8),
        reason=["no node matches the nodeSelector of pool pa", "pool pb"],
        permanent=False,
    )
    cases["matchExpressions select the pool's nodes"] = Case(
        nodes=[
            node("h100").gpus(8).label("gpu", "h100").obj(),
            node("a100").gpus(8).label("gpu", "a100").obj(),
        ],
        pools=[pool("not-a100").expression("gpu", "NotIn", "a100").obj()],
        job=job("j").workers(2).gpus(8),
        reason=["pool not-a100 has 8 devices in all"],
        permanent=True,
    )
    cases["no GPUPool at all"] = Case(
        nodes=[node("a").gpus(8).obj()],
        pools=[],
        job=job("j").workers(1).gpus(8),
        reason=["no GPUPool exists"],
        permanent=False,  # waits for one
    )
    cases["across pools the narrower span wins"] = Case(
        nodes=[
            *objs([b.label("pool", "flat") for b in rack("b1", "ra", 1) + rack("b2", "rb", 1)]),
            *objs([b.label("pool", "tight") for b in rack("b3", "rc", 2)]),
        ],
        pools=[
            pool("flat").match_labels({"pool": "flat"}).obj(),
            pool("tight").match_labels({"pool": "tight"}).obj(),
        ],
        job=job("j").workers(2).gpus(8),
        pool="tight",
        span=(RACK, "rc"),
    )

    # -- capacity in all --------------------------------------------------------------------
    cases["more devices than the pool has in all is permanent"] = Case(
        nodes=objs(rack("b1", "r1", 2)),
        job=job("j").workers(3).gpus(8),
        reason=["the gang needs 24 (3 workers \u00d7 8)", "16 devices in all"],
        permanent=True,
    )
    cases["a worker bigger than any node is permanent"] = Case(
        nodes=objs(rack("b1", "r1", 2)),
        job=job("j").workers(1).gpus(16),
        reason=["acceleratorsPerWorker=16", "the most is 8"],
        permanent=True,
    )
    cases["all or nothing: 3 hosts needed, 2 free now"] = Case(
        nodes=objs(rack("b1", "r1", 4)),
        pods=busy(rack("b1", "r1", 4)[:2]),
        job=job("j").workers(3).gpus(8),
        reason=["16 free devices in 2 hosts", "the gang needs 24 (3 workers \u00d7 8)"],
        permanent=False,
    )

    # -- topology: span, fewest domains, best fit ------------------------------------------
    two_blocks = rack("b1", "r11", 2) + rack("b1", "r12", 2) + rack("b2", "r21", 3)
    cases["the narrowest span: a rack that holds the gang beats a block"] = Case(
        nodes=objs(two_blocks),
        job=job("j").workers(3).gpus(8),
        span=(RACK, "r21"),
        host_count=3,
    )
    cases["fewest racks below the span"] = Case(
        nodes=objs(rack("b1", "r1", 3) + rack("b1", "r2", 1) + rack("b1", "r3", 1)),
        job=job("j").workers(4).gpus(8),
        span=(BLOCK, "b1"),
        check=lambda p: _assert_racks(p, 2),
    )
    cases["best fit: the tightest domain that holds the gang"] = Case(
        nodes=objs(rack("b1", "big", 6) + rack("b1", "small", 3)),
        job=job("j").workers(2).gpus(8),
        span=(RACK, "small"),
    )
    cases["best fit at the span: the emptier block is left whole"] = Case(
        nodes=objs(
            rack("b1", "r11", 2)
            + rack("b1", "r12", 2)
            + rack("b2", "r21", 2)
            + rack("b2", "r22", 4)
        ),
        pods=busy(rack("b2", "r22", 4)[:2]),
        job=job("j").workers(4).gpus(8),
        span=(BLOCK, "b1"),
    )
    cases["topology.required: the issue's example reason"] = Case(
        nodes=objs(rack("b1", "r1", 4) + rack("b2", "r2", 4)),
        pods=busy(rack("b1", "r1", 4)[:1] + rack("b2", "r2", 4)[:1]),
        job=job("j").workers(4).gpus(8).required(BLOCK),
        reason=[
            "topology.required=network.corral.dev/block: the largest block has 24 free devices "
            "in 3 hosts, the gang needs 32 (4 workers \u00d7 8)"
        ],
        permanent=False,
    )
    cases["topology.required never met even empty is permanent"] = Case(
        nodes=objs(rack("b1", "r1", 2) + rack("b2", "r2", 2)),
        job=job("j").workers(3).gpus(8).required(BLOCK),
        reason=["the largest block of pool h100 has 16 devices in 2 hosts even when empty"],
        permanent=True,
    )
    cases["topology.required beyond the pool's levels is permanent"] = Case(
        nodes=objs(rack("b1", "r1", 2)),
        pools=[pool("h100").levels(ZONE, HOST).obj()],
        job=job("j").workers(1).gpus(8).required(RACK),
        reason=["no pool matches topology.required=network.corral.dev/rack"],
        permanent=True,
    )
    cases["without required, a gang too big for any block spans the zone"] = Case(
        nodes=objs(rack("b1", "r1", 2) + rack("b2", "r2", 2)),
        job=job("j").workers(3).gpus(8),
        span=(ZONE, "z1"),
        host_count=3,
    )
    cases["preferred not met is explained"] = Case(
        nodes=objs(rack("b1", "r1", 2) + rack("b1", "r2", 2)),
        job=job("j").workers(3).gpus(8).preferred(RACK),
        span=(BLOCK, "b1"),
        check=lambda p: _assert_in("preferred rack not met: the largest rack holds 2 of 3", p),
    )
    cases["a node without the rack label is no rack's: unusable with required=rack"] = Case(
        nodes=[
            node("labelled").zone("z1").block("b1").rack("r1").gpus(8).obj(),
            node("unlabelled").zone("z1").block("b1").gpus(8).obj(),
        ],
        job=job("j").workers(2).gpus(8).required(RACK),
        reason=["1 node without a network.corral.dev/rack label", "topology.required"],
        permanent=True,
    )
    cases["...but usable without a constraint at that level"] = Case(
        nodes=[
            node("labelled").zone("z1").block("b1").rack("r1").gpus(8).obj(),
            node("unlabelled").zone("z1").block("b1").gpus(8).obj(),
        ],
        job=job("j").workers(2).gpus(8).required(BLOCK),
        span=(BLOCK, "b1"),
        check=lambda p: _assert_in("without a network.corral.dev/rack label", p),
    )
    cases["a node without the zone label is still in its block"] = Case(
        nodes=[
            node("x1").block("b1").rack("r1").gpus(8).obj(),
            node("x2").block("b1").rack("r1").gpus(8).obj(),
        ],
        job=job("j").workers(2).gpus(8).required(BLOCK),
        span=(RACK, "r1"),
    )
    cases["workers next in rank sit next to each other"] = Case(
        nodes=objs(rack("b1", "r2", 2) + rack("b1", "r1", 2)),
        job=job("j").workers(4).gpus(8),
        check=lambda p: _assert_equal(p.assignments, ["r1-h0", "r1-h1", "r2-h0", "r2-h1"]),
    )
    cases["several workers share a node, ranks together"] = Case(
        nodes=[node("a").rack("r").gpus(8).obj(), node("b").rack("r").gpus(8).obj()],
        pools=[pool("h100").levels(RACK, HOST).obj()],
        pods=[pod("p").on("b").gpus(4).obj()],
        job=job("j").workers(3).gpus(4),
        check=lambda p: _assert_equal(sorted(p.assignments), ["a", "a", "b"]),
    )
    cases["equal candidates: the first by name"] = Case(
        nodes=objs(rack("b1", "rb", 2) + rack("b1", "ra", 2)),
        job=job("j").workers(2).gpus(8),
        span=(RACK, "ra"),
    )
    return cases


def _assert_racks(placement: Placement, racks: int) -> None:
    assert placement.domains_per_level[RACK] == racks


def _assert_in(fragment: str, placement: Placement) -> None:
    assert fragment in placement.explanation, placement.explanation


def _assert_equal(got: object, expected: object) -> None:
    assert got == expected


CASES = _cases()


def solve(case: Case) -> Placement | NoFit:
    snapshot = FleetSnapshot.build(case.nodes, case.pods, case.pools)
    return place(snapshot, PlacementRequest.from_training_job(case.job.obj()))


@pytest.mark.parametrize("name", list(CASES))
def test_rule(name: str) -> None:
    case = CASES[name]
    result = solve(case)
    if case.reason is not None:
        assert isinstance(result, NoFit), result
        for fragment in case.reason:
            assert fragment in result.reason, f"{fragment!r} not in {result.reason!r}"
        if case.permanent is not None:
            assert result.permanent is case.permanent, result
        return
    assert isinstance(result, Placement), result
    assert len(result.assignments) == case.job.obj().spec.workers
    if case.hosts is not None:
        assert set(result.assignments) == case.hosts
    if case.host_count is not None:
        assert result.hosts == case.host_count
    if case.span is not None:
        assert (result.span_level, result.span_domain) == case.span, result.explanation
    if case.pool is not None:
        assert result.pool == case.pool
    if case.check is not None:
        case.check(result)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25
