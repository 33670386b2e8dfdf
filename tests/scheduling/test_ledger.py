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


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], {}),
        ([("assume", "a", "ns1", ["a-0", "a-1"])], {"ns1": {GPU: 16, "pods": 2}}),
        (
            [("assume", "a", "ns1", ["a-0", "a-1"]), ("observed", "ns1", "a-0")],
            {"ns1": {GPU: 8, "pods": 1}},
        ),
        (
            [("assume", "a", "ns1", ["a-0"]), ("assume", "b", "ns2", ["b-0", "b-1"])],
            {"ns1": {GPU: 8, "pods": 1}, "ns2": {GPU: 16, "pods": 2}},
        ),
        ([("assume", "a", "ns1", ["a-0", "a-1"]), ("forget", "a")], {}),
        (
            [("assume", "a", "ns1", ["a-0"]), ("observed", "ns1", "a-0"), ("forget", "a")],
            {},
        ),
    ],
)
def test_assumed_requests_count_only_workers_not_created_yet(
    steps: list[tuple[Any, ...]], expected: dict[str, dict[str, int]]
) -> None:
    book = ledger()
    for step in steps:
        if step[0] == "assume":
            _, owner, namespace, names = step
            workers = {name: f"n{i}" for i, name in enumerate(names)}
            book.assume(owner, namespace, workers, PER_WORKER)
        elif step[0] == "observed":
            book.observed((step[1], step[2]))
        else:
            book.forget(step[1])
    assert book.assumed_requests() == expected
