"""The assumed-pod ledger: what planned workers whose pods do not exist yet add up to (quota
admission reads it in every pass)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["assume", "created", "gone", "moved", "forget"]),
        st.sampled_from(["ns1", "ns2"]),
        st.integers(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_the_kept_totals_equal_a_recount(steps: list[tuple[str, str, int]]) -> None:
    """The ledger keeps its per-namespace totals as workers come and go (every pass reads them):
    whatever the order of events, they equal a recount from the model's own bookkeeping."""
    book = ledger()
    planned: dict[tuple[str, str], int] = {}  # key -> quota epoch of its namespace at the plan
    seen: set[tuple[str, str]] = set()
    uncounted: set[tuple[str, str]] = set()
    epoch = {"ns1": 0, "ns2": 0}
    for verb, namespace, index in steps:
        key = (namespace, f"w{index}")
        if verb == "assume" and key not in seen:
            book.assume(namespace, namespace, {key[1]: "n0"}, PER_WORKER)
            planned[key] = epoch[namespace]
        elif verb == "created" and key not in seen:
            book.observed(key)
            seen.add(key)
            if key in planned and planned.pop(key) == epoch[namespace]:
                uncounted.add(key)
        elif verb == "gone" and key in seen:
            book.observed(key, gone=True)
            book.snapshot.remove_pod(*key)  # as the cache does next (a re-plan is assumed again)
            seen.discard(key)
            uncounted.discard(key)
            planned.pop(key, None)
        elif verb == "moved":
            book.quotas_moved(namespace)
            epoch[namespace] += 1
            uncounted = {k for k in uncounted if k[0] != namespace}
        elif verb == "forget":
            book.forget(namespace)
            planned = {k: e for k, e in planned.items() if k[0] != namespace}
    expected: dict[str, dict[str, int]] = {}
    for key in [*planned, *uncounted]:
        total = expected.setdefault(key[0], {})
        for name, amount in PER_WORKER.items():
            total[name] = total.get(name, 0) + amount
    got = {ns: {k: v for k, v in t.items() if v} for ns, t in book.assumed_requests().items()}
    assert {ns: t for ns, t in got.items() if t} == expected
