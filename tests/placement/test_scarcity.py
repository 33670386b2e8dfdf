"""The pool choice between pools weighs contention: a job that several pools accept takes the one
the jobs present depend on least, topology first, and says why that pool won."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.cost.objective import solve
from corral.fleet import FleetSnapshot
from corral.fleet.testing import HOST, RACK, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.placement.scarcity import Contention, contention
from corral.scheduling import cycle
from corral.scheduling.ledger import Ledger

SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))
PRODUCT = "nvidia.com/gpu.product"


def fleet(
    shapes: dict[str, list[int]],
    used: dict[str, int] | None = None,
    racks: tuple[str, ...] | None = None,
) -> FleetSnapshot:
    """One pool per accelerator type (its name lowercased), hosts `<pool>-<i>` with the given
    device counts; `used`: devices taken on a host. With `racks`, the pools have a rack level:
    the hosts of the pools named there each in a rack of their own, the others in one rack."""
    nodes = []
    for name, sizes in shapes.items():
        for i, size in enumerate(sizes):
            builder = node(f"{name}-{i}").label(PRODUCT, name.upper()).gpus(size)
            if racks is not None:
                builder = builder.rack(f"{name}-r{i if name in racks else 0}")
            nodes.append(builder.obj())
    pools = []
    for name in shapes:
        builder = pool(name).match_labels({PRODUCT: name.upper()}).accelerator(name.upper())
        pools.append((builder if racks is None else builder.levels(RACK, HOST)).obj())
    pods = [pod(f"u-{host}").on(host).gpus(n).obj() for host, n in (used or {}).items()]
    return FleetSnapshot.build(nodes, pods, pools)


def ask(key: str, devices: int, *types: str, workers: int = 1, **more: Any) -> PlacementRequest:
    return PlacementRequest(
        key=f"ns/{key}",
        workers=workers,
        devices_per_worker=devices,
        accelerator_types=tuple(t.upper() for t in types),
        **more,
    )


# -- the figure -------------------------------------------------------------------------------


@dataclass
class Figure:
    shapes: dict[str, list[int]]
    present: list[PlacementRequest]
    expected: dict[str, Fraction]
    jobs: int


FIGURES = {
    "a job one pool accepts puts all its devices on it": Figure(
        {"big": [8, 8], "small": [2]}, [ask("a", 2, "small")], {"big": Fraction(0), "small": 1}, 1
    ),
    "a job several pools accept splits its devices evenly over them": Figure(
        {"big": [8, 8], "small": [2]},
        [ask("a", 4)],
        {"big": Fraction(2, 16), "small": Fraction(2, 2)},
        1,
    ),
    "demand adds up and is divided by the pool's devices": Figure(
        {"big": [8, 8], "small": [2], "mid": [4]},
        [ask("a", 3), ask("b", 2, "small", "mid"), ask("c", 8, "big")],
        {"big": Fraction(1 + 8, 16), "small": Fraction(1 + 1, 2), "mid": Fraction(1 + 1, 4)},
        3,
    ),
    "a job no pool accepts counts nowhere": Figure(
        {"big": [8]}, [ask("a", 1, "b200")], {"big": Fraction(0)}, 0
    ),
}


@pytest.mark.parametrize("name", FIGURES)
def test_contention_figure(name: str) -> None:
    case = FIGURES[name]
    figure = contention(fleet(case.shapes), case.present)
    assert {pool: figure.of(pool) for pool in case.shapes} == case.expected
    assert figure.jobs == case.jobs


# -- the choice between pools -----------------------------------------------------------------


@dataclass
class Choice:
    shapes: dict[str, list[int]]
    request: PlacementRequest
    pool: str
    says: list[str] = field(default_factory=list)
    used: dict[str, int] = field(default_factory=dict)
    racks: tuple[str, ...] | None = None


def pressed(**by_pool: float) -> Contention:
    return Contention(tuple((p, Fraction(v).limit_denominator()) for p, v in by_pool.items()), 5)


CHOICES = {
    "without a figure the tightest fit of any pool wins, as before": Choice(
        {"big": [8], "small": [2]},
        ask("j", 2),
        "small",
        ["pool small chosen over big, which also fit now: it fits tightest: 2 free devices"],
    ),
    "the least contended pool wins over a tighter fit": Choice(
        {"big": [8], "small": [2]},
        ask("j", 2, contention=pressed(big=0.25, small=1.5)),
        "big",
        [
            "pool big chosen over small, which also fit now: it is the least contended: demand "
            "per device from the 5 jobs present, each job's devices split evenly over the pools "
            "it accepts: big 0.25, small 1.5"
        ],
    ),
    "equal contention falls back to the tightest fit": Choice(
        {"big": [8], "small": [2]},
        ask("j", 2, contention=pressed(big=0.5, small=0.5)),
        "small",
        ["it fits tightest"],
    ),
    "a narrower span wins over less contention": Choice(
        {"big": [8, 8], "small": [8, 8]},
        ask("j", 8, workers=2, contention=pressed(big=0.1, small=3)),
        "small",
        ["pool small chosen over big, which also fit now: its span is narrower"],
        racks=("big",),
    ),
    "fewer hosts win over less contention": Choice(
        {"big": [4, 4, 4, 4], "small": [8, 8]},
        ask("j", 4, workers=4, contention=pressed(big=0.1, small=3)),
        "small",
        ["it uses fewer hosts"],
    ),
    "a pool the job may not use is never chosen, however idle": Choice(
        {"big": [8], "small": [2]},
        ask("j", 2, "small", contention=pressed(big=0, small=9)),
        "small",
    ),
}


@pytest.mark.parametrize("name", CHOICES)
def test_pool_choice(name: str) -> None:
    case = CHOICES[name]
    snapshot = fleet(case.shapes, case.used, racks=case.racks)
    result = place(snapshot, case.request)
    assert isinstance(result, Placement), result
    assert result.pool == case.pool
    for words in case.says:
        assert words in result.explanation


def test_cost_per_work_still_takes_the_cheapest_per_work_pool() -> None:
    nodes = [node(f"h{i}").label(PRODUCT, "H100").gpus(8).obj() for i in range(4)]
    nodes += [node("a0").label(PRODUCT, "A100").gpus(8).obj()]
    pools = [
        pool("h100").match_labels({PRODUCT: "H100"}).accelerator("H100").pricing(4.0).obj(),
        pool("a100").match_labels({PRODUCT: "A100"}).accelerator("A100").pricing(1.0).obj(),
    ]
    snapshot = FleetSnapshot.build(nodes, [], pools)
    request = PlacementRequest(
        key="ns/j",
        workers=1,
        devices_per_worker=8,
        objective="CostPerWork",
        throughput=(("A100", 1.0), ("H100", 2.0)),
        contention=pressed(h100=0.1, a100=5),
    )
    result = solve(snapshot, request)
    assert isinstance(result, Placement) and result.pool == "a100"
    assert "placementObjective CostPerWork: a100 has the lowest price per unit of work" in (
        result.explanation
    )


# -- the pass ---------------------------------------------------------------------------------


def test_the_pass_keeps_the_small_pool_for_the_job_that_needs_it() -> None:
    # A 2-device t4 host and an 8-device g2 host. A job that accepts any model comes first and
    # would fit the t4 host most tightly; a t4-only job waits behind it. The pass reads the
    # demand of both: the flexible job goes to g2, and the t4-only job still fits in the same pass.
    snapshot = fleet({"g2": [8], "t4": [2]})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = [ask("any", 2), ask("t4-only", 2, "t4")]
    candidates = [
        cycle.Candidate(
            key=request.key,
            namespace="ns",
            priority=0,
            since=start.replace(second=i),
            request=request,
            worker_name=lambda w, k=request.key: f"{k}-{w}",  # type: ignore[misc]
        )
        for i, request in enumerate(jobs)
    ]
    outcomes = cycle.run(candidates, snapshot, Ledger(snapshot))
    placed = {o.entry.key: o.result for o in outcomes}
    assert {key: getattr(r, "pool", r) for key, r in placed.items()} == {
        "ns/any": "g2",
        "ns/t4-only": "t4",
    }
    # Without the demand of the jobs present (first-come tightest fit) the t4-only job waits.
    alone = place(fleet({"g2": [8], "t4": [2]}), jobs[0])
    assert isinstance(alone, Placement) and alone.pool == "t4"


def test_holding_jobs_count_in_the_demand() -> None:
    snapshot = fleet({"g2": [8], "t4": [4]})
    running = [ask(f"r{i}", 2, "t4") for i in range(1)]
    candidates = [
        cycle.Candidate(
            key="ns/any",
            namespace="ns",
            priority=0,
            since=datetime(2026, 1, 1, tzinfo=UTC),
            request=ask("any", 2),
            worker_name=lambda w: f"any-{w}",
        )
    ]
    # The flexible job puts 1 device on each pool, the running t4-only job 2 on t4: g2 1/8, t4 3/4.
    outcome = cycle.run(candidates, snapshot, Ledger(snapshot), holding=lambda: running)[0]
    assert isinstance(outcome.result, Placement) and outcome.result.pool == "g2"
    assert "from the 2 jobs present" in outcome.result.explanation


# -- invariants -------------------------------------------------------------------------------


@st.composite
def scenes(draw: st.DrawFn) -> tuple[FleetSnapshot, PlacementRequest, Contention]:
    shapes = {
        name: draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=4))
        for name in draw(st.sets(st.sampled_from(["a", "b", "c"]), min_size=1))
    }
    used = {
        f"{name}-{i}": draw(st.integers(0, size))
        for name, sizes in shapes.items()
        for i, size in enumerate(sizes)
    }
    figure = Contention(
        tuple((name, Fraction(draw(st.integers(0, 20)), 4)) for name in sorted(shapes)), 3
    )
    request = ask(
        "j",
        draw(st.sampled_from([1, 2, 4, 8])),
        *draw(st.sets(st.sampled_from(["a", "b", "c"]))),
        workers=draw(st.integers(1, 3)),
    )
    return fleet(shapes, {h: n for h, n in used.items() if n}), request, figure


@given(scenes())
@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_contention_only_chooses_between_pools_that_fit(
    scene: tuple[FleetSnapshot, PlacementRequest, Contention],
) -> None:
    """Contention never makes a gang fit or not fit, never changes the nodes chosen inside the
    pool it picks, and never picks a pool placing the gang on more hosts or a broader span."""
    snapshot, request, figure = scene
    plain = place(snapshot, request)
    weighed = place(snapshot, replace(request, contention=figure))
    assert isinstance(plain, NoFit) == isinstance(weighed, NoFit)
    if isinstance(plain, NoFit) or isinstance(weighed, NoFit):
        return
    inside = place(snapshot, replace(request, pools=(weighed.pool,)))
    assert isinstance(inside, Placement)
    assert inside.assignments == weighed.assignments
    assert len(set(weighed.assignments)) <= len(set(plain.assignments))
    # Among the pools that place it as well by topology, it is the least contended one.
    for other in sorted(snapshot.pools):
        alone = place(snapshot, replace(request, pools=(other,)))
        if isinstance(alone, Placement) and len(set(alone.assignments)) == len(
            set(weighed.assignments)
        ):
            assert figure.of(weighed.pool) <= figure.of(other)
