"""Queue order, admission before holding, and the per-pool StrictFIFO / BestEffortFIFO policy."""

from __future__ import annotations

from dataclasses import dataclass

from tests.training.builders import at

from corral.scheduling.queue import Held, Inadmissible, QueueEntry, queue_order, schedule


@dataclass(frozen=True)
class Result:
    fits: bool
    permanent: bool = False


def entry(
    key: str, priority: int = 0, since: float = 0, pools: tuple[str, ...] = ("a",)
) -> QueueEntry:
    return QueueEntry(key=key, priority=priority, since=at(since), pools=frozenset(pools))


def run(
    entries: list[QueueEntry],
    fitting: set[str],
    permanent: frozenset[str] = frozenset(),
    refused: dict[str, Inadmissible] | None = None,
    best_effort: frozenset[str] = frozenset(),
    tried_in: dict[str, frozenset[str]] | None = None,
) -> dict[str, object]:
    def try_place(e: QueueEntry, pools: frozenset[str]) -> Result:
        if tried_in is not None:
            tried_in[e.key] = pools
        return Result(e.key in fitting, e.key in permanent)

    outcomes = schedule(
        entries,
        try_place,
        lambda r: r.fits,
        lambda r: r.permanent,
        admit=lambda e: (refused or {}).get(e.key) or e.pools,
        strict=lambda pool: pool not in best_effort,
    )
    return {o.entry.key: o.result for o in outcomes}


def test_order_is_priority_then_age_then_name() -> None:
    entries = [entry("c", 0, 5), entry("b", 0, 1), entry("a", 0, 1), entry("z", 9, 100)]
    assert [e.key for e in queue_order(entries)] == ["z", "a", "b", "c"]


def test_blocked_head_holds_its_pools() -> None:
    out = run([entry("big", 10), entry("small", 0, 1)], fitting={"small"})
    assert out["big"] == Result(False)
    held = out["small"]
    assert isinstance(held, Held)
    assert held.behind == "big"
    assert "waiting behind big (priority 10)" in held.reason


def test_jobs_on_other_pools_backfill() -> None:
    out = run([entry("big", 10, pools=("a",)), entry("other", 0, pools=("b",))], fitting={"other"})
    assert out["other"] == Result(True)


def test_permanent_no_fit_holds_nothing() -> None:
    out = run(
        [entry("never", 10), entry("small", 0)], fitting={"small"}, permanent=frozenset({"never"})
    )
    assert out["small"] == Result(True)


def test_fitting_jobs_in_order_all_go() -> None:
    out = run([entry("a", 0, 1), entry("b", 0, 2)], fitting={"a", "b"})
    assert out == {"a": Result(True), "b": Result(True)}


def test_a_job_spanning_pools_uses_the_ones_not_held() -> None:
    tried: dict[str, frozenset[str]] = {}
    out = run(
        [entry("big", 10, pools=("a",)), entry("wide", 0, pools=("a", "b"))],
        fitting={"wide"},
        tried_in=tried,
    )
    assert out["wide"] == Result(True)
    assert tried["wide"] == {"b"}


def test_a_job_whose_pools_are_all_held_waits_behind_the_head() -> None:
    out = run(
        [entry("big", 10, pools=("a", "b")), entry("wide", 0, pools=("a", "b"))], fitting={"wide"}
    )
    held = out["wide"]
    assert isinstance(held, Held) and held.pools == ("a", "b")


def test_a_job_that_can_never_fit_the_pools_not_held_waits_for_the_held_one() -> None:
    """Tried only in `b` (the head holds `a`), where it can never fit (its hosts are too small):
    that is no verdict on `a`, so it waits behind the head instead of failing."""
    out = run(
        [entry("big", 10, pools=("a",)), entry("wide", 0, pools=("a", "b"))],
        fitting=set(),
        permanent=frozenset({"wide"}),
    )
    held = out["wide"]
    assert isinstance(held, Held) and held.behind == "big" and held.pools == ("a",), held


def test_a_job_that_can_never_fit_any_of_its_pools_is_refused_for_good() -> None:
    out = run([entry("wide", 0, pools=("a", "b"))], fitting=set(), permanent=frozenset({"wide"}))
    assert out["wide"] == Result(False, permanent=True)


def test_best_effort_pools_are_never_held() -> None:
    out = run(
        [entry("big", 10), entry("small", 0, 1)], fitting={"small"}, best_effort=frozenset({"a"})
    )
    assert out["small"] == Result(True)


def test_an_inadmissible_job_holds_nothing_and_is_not_tried() -> None:
    """The poison job of issue 9: its nodeSelector matched no node, it held every pool it could
    use, and the whole fleet idled behind it."""
    refusal = Inadmissible("NoMatchingNodes", "no node matches", admitted=True)
    tried: dict[str, frozenset[str]] = {}
    out = run(
        [entry("poison", 1000), entry("normal", 0, 1)],
        fitting={"normal"},
        refused={"poison": refusal},
        tried_in=tried,
    )
    assert out == {"poison": refusal, "normal": Result(True)}
    assert "poison" not in tried
