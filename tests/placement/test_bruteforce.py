"""The solver against exhaustive search on small fleets (at most 12 hosts).

For every generated fleet and gang, an independent brute force enumerates every set of usable
nodes, keeps those that hold the gang (and satisfy `topology.required`), and finds the
lexicographically least vector of domains used per level, broadest first, hosts last. The solver
must agree on feasibility, on that vector, and so on the span.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, HOST, RACK, ZONE, job, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place

SCALE = int(os.environ.get("CORRAL_PROPERTY_SCALE", "1"))
"""Multiplies the number of generated examples (e.g. 30 for a long run)."""

LEVEL_SETS = [
    [ZONE, BLOCK, RACK, HOST],
    [BLOCK, RACK, HOST],
    [ZONE, RACK],
    [HOST],
]


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, Any]:
    levels = draw(st.sampled_from(LEVEL_SETS))
    count = draw(st.integers(1, 12) | st.integers(6, 12))
    hosts = []
    for index in range(count):
        hosts.append(
            {
                "name": f"n{index:02d}",
                "zone": draw(st.sampled_from(["z1", "z1", "z2", "z2", None])),
                "block": draw(st.sampled_from(["b1", "b1", "b2", "b2", "b3", None])),
                "rack": draw(st.sampled_from(["r1", "r1", "r2", "r2", "r3", None])),
                "gpus": draw(st.sampled_from([4, 8, 8, 8])),
                "used": draw(st.sampled_from([0, 0, 0, 0, 1, 2, 4, 6, 8, 8])),
                "ready": draw(st.sampled_from([True] * 9 + [False])),
                "tainted": draw(st.sampled_from([False] * 9 + [True])),
                "spot": draw(st.booleans()),
            }
        )
    tree = [level for level in levels if level != HOST]
    required = draw(st.sampled_from([None, None, None, None, *levels]))
    devices = draw(st.sampled_from([2, 4, 4, 8, 8, 8]))
    room = sum(
        (h["gpus"] - min(h["used"], h["gpus"])) // devices
        for h in hosts
        if h["ready"] and not h["tainted"]
    )
    return {
        "levels": levels,
        "hosts": hosts,
        # Mostly gangs the fleet could hold as a whole, so that topology decides.
        "workers": draw(st.integers(max(1, min(2, room)), max(1, min(12, room + 1)))),
        "devices": devices,
        "required": required,
        "prefer": draw(st.sampled_from([None, "spot", "on-demand"])),
        "tree": tree,
    }


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    """Fully built trees (zones > blocks > racks > hosts), a label now and then missing."""
    hosts: list[dict[str, Any]] = []
    for z in range(draw(st.integers(1, 2))):
        for b in range(draw(st.integers(1, 2))):
            for r in range(draw(st.integers(1, 3))):
                for _ in range(draw(st.integers(1, 3))):
                    if len(hosts) == 12:
                        break
                    missing = draw(st.sampled_from([None] * 12 + ["zone", "block", "rack"]))
                    host = {
                        "name": f"n{len(hosts):02d}",
                        "zone": f"z{z}",
                        "block": f"b{b}",
                        "rack": f"r{r}",
                        "gpus": 8,
                        "used": draw(st.sampled_from([0, 0, 0, 2, 4, 8])),
                        "ready": True,
                        "tainted": False,
                        "spot": draw(st.booleans()),
                    }
                    if missing:
                        host[missing] = None
                    hosts.append(host)
    devices = draw(st.sampled_from([2, 4, 8, 8]))
    room = sum((h["gpus"] - h["used"]) // devices for h in hosts)
    levels = [ZONE, BLOCK, RACK, HOST]
    return {
        "levels": levels,
        "hosts": hosts,
        "workers": draw(st.integers(max(1, min(2, room)), max(1, min(12, room + 1)))),
        "devices": devices,
        "required": draw(st.sampled_from([None, None, ZONE, BLOCK, RACK])),
        "prefer": draw(st.sampled_from([None, "spot"])),
        "tree": [ZONE, BLOCK, RACK],
    }


def build(
    case: dict[str, Any], shuffle: int | None = None
) -> tuple[FleetSnapshot, PlacementRequest]:
    nodes, pods = [], []
    for host in case["hosts"]:
        builder = node(host["name"]).gpus(host["gpus"])
        for key, label in ((ZONE, "zone"), (BLOCK, "block"), (RACK, "rack")):
            builder.label(key, host[label])
        if not host["ready"]:
            builder.not_ready()
        if host["tainted"]:
            builder.taint("maintenance")
        if host["spot"]:
            builder.spot()
        nodes.append(builder.obj())
        used = min(host["used"], host["gpus"])
        if used:
            pods.append(pod(f"p-{host['name']}").on(host["name"]).gpus(used).obj())
    if shuffle is not None:
        random.Random(shuffle).shuffle(nodes)
        random.Random(shuffle).shuffle(pods)
    builder = job("j").workers(case["workers"]).gpus(case["devices"])
    if case["required"]:
        builder.required(case["required"])
    if case["prefer"]:
        builder.capacity("spot", "on-demand", prefer=case["prefer"])
    snapshot = FleetSnapshot.build(nodes, pods, [pool("p").levels(*case["levels"]).obj()])
    return snapshot, PlacementRequest.from_training_job(builder.obj())


NAMES = {ZONE: "zone", BLOCK: "block", RACK: "rack"}


def domain_id(host: dict[str, Any], tree: list[str], level: int) -> tuple[str | None, ...]:
    """What a host counts as at a level: its domain there (the path of labels down to it); if it
    lacks that label, its first labelled domain below; if none, the host itself."""
    path = tuple(host[NAMES[key]] for key in tree)
    for narrower in range(level, len(tree)):
        if path[narrower] is not None:
            return ("domain", *path[: narrower + 1])
    return ("host", host["name"])


def counts_of(hosts: list[dict[str, Any]], tree: list[str]) -> tuple[int, ...]:
    per_level = [len({domain_id(h, tree, level) for h in hosts}) for level in range(len(tree))]
    return (*per_level, len(hosts))


def brute_force(case: dict[str, Any]) -> tuple[int, ...] | None:
    tree = case["tree"]
    workers, devices = case["workers"], case["devices"]
    usable = []
    for host in case["hosts"]:
        free = host["gpus"] - min(host["used"], host["gpus"])
        if host["ready"] and not host["tainted"] and free >= devices:
            usable.append((host, min(free // devices, workers)))
    required = case["required"]
    best: tuple[int, ...] | None = None
    for size in range(1, min(workers, len(usable)) + 1):
        for subset in itertools.combinations(usable, size):
            if sum(fits for _, fits in subset) < workers:
                continue
            hosts = [h for h, _ in subset]
            if required is not None and required != HOST:
                level = tree.index(required)
                if any(h[NAMES[required]] is None for h in hosts):
                    continue
                if len({domain_id(h, tree, level) for h in hosts}) != 1:
                    continue
            if required == HOST and len(hosts) != 1:
                continue
            counts = counts_of(hosts, tree)
            if best is None or counts < best:
                best = counts
    return best


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_solver_agrees_with_exhaustive_search(case: dict[str, Any]) -> None:
    check_against_brute_force(case)


@settings(max_examples=200 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_solver_agrees_with_exhaustive_search_on_deep_trees(case: dict[str, Any]) -> None:
    check_against_brute_force(case)


def check_against_brute_force(case: dict[str, Any]) -> None:
    snapshot, request = build(case)
    result = place(snapshot, request)
    expected = brute_force(case)
    if expected is None:
        event(f"no fit; required={case['required'] is not None}")
        assert isinstance(result, NoFit), result
        return
    assert isinstance(result, Placement), (result, expected)
    event(f"hosts used: {min(expected[-1], 4)}; span {result.span_level}")
    # Recounted from the assignments, not taken from the solver's own summary: every worker on a
    # usable host with room for it, the gang's domains per level the least possible.
    by_name = {host["name"]: host for host in case["hosts"]}
    assert len(result.assignments) == case["workers"]
    for name, workers in Counter(result.assignments).items():
        host = by_name[name]
        free = host["gpus"] - min(host["used"], host["gpus"])
        assert host["ready"] and not host["tainted"], (name, host)
        assert workers * case["devices"] <= free, (name, workers, free)
    used = [by_name[name] for name in sorted(set(result.assignments))]
    assert counts_of(used, case["tree"]) == expected
    reported = tuple(result.domains_per_level[key] for key in [*case["tree"], HOST])
    assert reported == expected, "the placement's own summary disagrees with its assignments"
    # The span is the narrowest level with a single domain.
    levels = [*case["tree"], HOST]
    single = [key for key, count in zip(levels, expected, strict=True) if count == 1]
    narrowest = single[-1] if single and expected[0] == 1 else None
    if expected[-1] == 1:
        narrowest = HOST
    assert result.span_level == narrowest
