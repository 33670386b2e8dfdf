"""The assumed-pod ledger: what planned workers whose pods do not exist yet add up to (quota
admission reads it in every pass)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.testing import node, pool
from corral.scheduling.ledger import Ledger

GPU = "nvidia.com/gpu"
PER_WORKER = {GPU: 8, "pods": 1}


def ledger() -> Ledger:
    nodes = [node(f"n{i}").gpus(8).obj() for i in range(4)]
    snapshot = FleetSnapshot.build(nodes, [], [pool("p").obj()])
    return Ledger(snapshot)


ONE = {GPU: 8, "pods": 1}
TWO = {GPU: 16, "pods": 2}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], {}),
        # Planned, not created: counted.
        ([("assume", "a", "ns1", ["a-0", "a-1"])], {"ns1": TWO}),
        (
            [("assume", "a", "ns1", ["a-0"]), ("assume", "b", "ns2", ["b-0", "b-1"])],
            {"ns1": ONE, "ns2": TWO},
        ),
        ([("assume", "a", "ns1", ["a-0", "a-1"]), ("forget", "a")], {}),
        # Created: still counted until a quota of its namespace moves (its watch event may come
        # after the pod's), and that move counts it.
        ([("assume", "a", "ns1", ["a-0", "a-1"]), ("created", "ns1", "a-0")], {"ns1": TWO}),
        (
            [("assume", "a", "ns1", ["a-0", "a-1"]), ("created", "ns1", "a-0"), ("moved", "ns1")],
            {"ns1": ONE},
        ),
        # A quota of another namespace moving says nothing of these pods.
        (
            [("assume", "a", "ns1", ["a-0"]), ("created", "ns1", "a-0"), ("moved", "ns2")],
            {"ns1": ONE},
        ),
        # A quota that moved after the plan and before the pod was seen may count it already.
        ([("assume", "a", "ns1", ["a-0"]), ("moved", "ns1"), ("created", "ns1", "a-0")], {}),
        # The pod is gone: nothing to count, whatever the quota says.
        ([("assume", "a", "ns1", ["a-0"]), ("created", "ns1", "a-0"), ("gone", "ns1", "a-0")], {}),
        # The plan is dropped but the pod exists: counted until the quota moves.
        (
            [("assume", "a", "ns1", ["a-0"]), ("created", "ns1", "a-0"), ("forget", "a")],
            {"ns1": ONE},
        ),
        (
            [
                ("assume", "a", "ns1", ["a-0"]),
                ("created", "ns1", "a-0"),
                ("forget", "a"),
                ("moved", "ns1"),
            ],
            {},
        ),
    ],
)
def test_assumed_requests_count_what_the_quotas_have_not(
    steps: list[tuple[Any, ...]], expected: dict[str, dict[str, int]]
) -> None:
    book = ledger()
    for step in steps:
        if step[0] == "assume":
            _, owner, namespace, names = step
            workers = {name: f"n{i}" for i, name in enumerate(names)}
            book.assume(owner, namespace, workers, PER_WORKER)
        elif step[0] == "created":
            book.observed((step[1], step[2]))
        elif step[0] == "gone":
            book.observed((step[1], step[2]), gone=True)
        elif step[0] == "moved":
            book.quotas_moved(step[1])
        else:
            book.forget(step[1])
    assert book.assumed_requests() == expected
