"""Queue order and the per-pool strict-FIFO policy."""

from __future__ import annotations

from dataclasses import dataclass

from tests.training.builders import at

from corral.scheduling.queue import Held, QueueEntry, queue_order, schedule


@dataclass(frozen=True)
class Result:
    fits: bool
    permanent: bool = False


def entry(
    key: str, priority: int = 0, since: float = 0, pools: tuple[str, ...] = ("a",)
) -> QueueEntry:
    return QueueEntry(key=key, priority=priority, since=at(since), pools=frozenset(pools))


def run(
    entries: list[QueueEntry], fitting: set[str], permanent: frozenset[str] = frozenset()
) -> dict[str, object]:
    tried: list[str] = []

    def try_place(e: QueueEntry) -> Result:
        tried.append(e.key)
        return Result(e.key in fitting, e.key in permanent)

    outcomes = schedule(entries, try_place, lambda r: r.fits, lambda r: r.permanent)
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


def test_job_spanning_pools_is_held_if_any_pool_is_held() -> None:
    out = run(
        [entry("big", 10, pools=("a",)), entry("wide", 0, pools=("a", "b"))], fitting={"wide"}
    )
    assert isinstance(out["wide"], Held)
