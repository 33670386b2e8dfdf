"""The pool's Dedicated condition: are its nodes kept for the pool's gangs by a taint they
tolerate, or shared with whatever else kube-scheduler (or another scheduler) puts there?"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.status import pool_conditions
from corral.fleet.testing import NodeBuilder, node, pool

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def dedicated(nodes: list[NodeBuilder], *tolerated: str) -> tuple[str, str, str]:
    spec = pool("p").select(pool="p")
    for key in tolerated:
        spec = spec.tolerate(key)
    snapshot = FleetSnapshot.build([n.label("pool", "p").obj() for n in nodes], [], [spec.obj()])
    conditions, _ = pool_conditions(snapshot, "p", [], NOW, 1)
    found = next(c for c in conditions if c.type == "Dedicated")
    return found.status, found.reason, found.message


@pytest.mark.parametrize(
    ("nodes", "tolerated", "status", "reason", "says"),
    [
        (
            [node("h1").taint("corral.dev/dedicated"), node("h2").taint("corral.dev/dedicated")],
            ["corral.dev/dedicated"],
            "True",
            "TaintedForPool",
            "(corral.dev/dedicated)",
        ),
        (
            [node("h1").taint("nvidia.com/gpu")],
            ["nvidia.com/gpu"],
            "True",
            "TaintedForPool",
            "taint with a key of your own",  # ExtendedResourceToleration tolerates it for GPU pods
        ),
        (
            [node("h1").taint("corral.dev/dedicated"), node("h2")],
            ["corral.dev/dedicated"],
            "False",
            "SharedNodes",
            "1 of 2 node(s) carry no taint the pool tolerates (h2)",
        ),
        (
            [node("h1").taint("corral.dev/dedicated")],
            [],
            "False",
            "SharedNodes",
            "1 of 1 node(s)",  # a taint nobody tolerates is not the pool's
        ),
        (
            [node("h1").taint("node.kubernetes.io/unreachable")],
            ["node.kubernetes.io/unreachable"],
            "False",
            "SharedNodes",
            "(h1)",  # Kubernetes' own taints come and go: they dedicate nothing
        ),
        (
            [node("h1").taint("gpu", effect="PreferNoSchedule")],
            ["gpu"],
            "False",
            "SharedNodes",
            "(h1)",  # a soft taint keeps nobody out
        ),
    ],
)
def test_dedicated_when_every_node_carries_a_taint_the_pool_tolerates(
    nodes: list[NodeBuilder], tolerated: list[str], status: str, reason: str, says: str
) -> None:
    got = dedicated(nodes, *tolerated)
    assert got[:2] == (status, reason)
    assert says in got[2]
