"""Events: deduplicated into counts, similar messages combined, a per-object budget, and a
sender that never blocks the caller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral import metrics
from corral.controllers.events import (
    COMBINED_PREFIX,
    CreateEvent,
    EventCorrelator,
    EventRecorder,
    PatchEvent,
)
from corral.kube.errors import ApiError

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def job(name: str = "j", uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": "5"},
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# -- the correlator (pure) ----------------------------------------------------------------------


def test_a_repeated_event_is_created_once_then_counted() -> None:
    correlator = EventCorrelator()
    writes = [
        correlator.correlate(
            job(), "Warning", "BindTimeout", "gang not bound in 60s", T0 + timedelta(seconds=i)
        )
        for i in range(4)
    ]
    first, *rest = writes
    assert isinstance(first, CreateEvent)
    assert first.body["count"] == 1 and first.body["reason"] == "BindTimeout"
    assert all(isinstance(w, PatchEvent) for w in rest)
    patches = [w for w in rest if isinstance(w, PatchEvent)]
    assert [p.patch["count"] for p in patches] == [2, 3, 4]
    assert {p.name for p in patches} == {first.body["metadata"]["name"]}
    assert patches[-1].patch["lastTimestamp"] == "2026-11-30T12:00:03Z"


def test_same_reason_on_another_object_or_another_message_is_another_event() -> None:
    correlator = EventCorrelator()
    a = correlator.correlate(job("a", "ua"), "Normal", "Placed", "on rack r1", T0)
    b = correlator.correlate(job("b", "ub"), "Normal", "Placed", "on rack r1", T0)
    c = correlator.correlate(job("a", "ua"), "Normal", "Placed", "on rack r2", T0)
    recreated = correlator.correlate(job("a", "ua-2"), "Normal", "Placed", "on rack r1", T0)
    assert all(isinstance(w, CreateEvent) for w in (a, b, c, recreated))


def test_more_than_ten_similar_messages_combine_into_one_event() -> None:
    correlator = EventCorrelator()
    writes = [
        correlator.correlate(job(), "Warning", "NodeLost", f"node h{i} NotReady", T0)
        for i in range(13)
    ]
    assert all(isinstance(w, CreateEvent) for w in writes[:11])
    combined = writes[10]
    assert (
        combined is not None and combined.body["message"] == COMBINED_PREFIX + "node h10 NotReady"
    )
    assert isinstance(writes[11], PatchEvent) and isinstance(writes[12], PatchEvent)
    assert writes[12].patch == {
        "count": 3,
        "lastTimestamp": "2026-11-30T12:00:00Z",
        "message": COMBINED_PREFIX + "node h12 NotReady",
    }
    assert writes[12].name == combined.body["metadata"]["name"]


def test_similar_messages_are_forgotten_after_the_window() -> None:
    correlator = EventCorrelator()
    for i in range(10):
        correlator.correlate(job(), "Warning", "NodeLost", f"node h{i}", T0)
    later = T0 + timedelta(seconds=601)
    write = correlator.correlate(job(), "Warning", "NodeLost", "node h99", later)
    assert write is not None and not write.body["message"].startswith(COMBINED_PREFIX)


def test_a_flapping_object_gets_25_writes_then_one_per_five_minutes() -> None:
    correlator = EventCorrelator()
    clock = Clock()
    allowed = 0
    for i in range(200):  # flapping for ~3 minutes
        clock.advance(1)
        if correlator.correlate(job(), "Warning", "Restarted", f"attempt {i}", clock()) is not None:
            allowed += 1
    assert allowed == 25
    assert correlator.correlate(job("other", "u2"), "Normal", "Placed", "x", clock()) is not None
    clock.advance(300)  # about one token back
    got = [correlator.correlate(job(), "Warning", "Restarted", "again", clock()) for _ in range(3)]
    assert [w is not None for w in got] == [True, False, False]


def test_a_filtered_repeat_is_still_counted_in_the_next_write() -> None:
    correlator = EventCorrelator(burst=2, refill_seconds=60)
    writes = [correlator.correlate(job(), "Warning", "X", "same", T0) for _ in range(5)]
    assert [w is not None for w in writes] == [True, True, False, False, False]
    write = correlator.correlate(job(), "Warning", "X", "same", T0 + timedelta(seconds=60))
    assert isinstance(write, PatchEvent) and write.patch["count"] == 6


# -- the recorder: never blocks, bounded, coalesced ------------------------------------------------


class EventsAPI:
    """Just the Event endpoints: records writes; can be made slow, or to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.stored: dict[str, dict[str, Any]] = {}
        self.fail: ApiError | None = None

    async def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        await self.gate.wait()
        self.calls.append(("create", path, body))
        if self.fail:
            raise self.fail
        self.stored[body["metadata"]["name"]] = body
        return body

    async def patch(self, path: str, body: Any, *_: Any, **__: Any) -> dict[str, Any]:
        await self.gate.wait()
        self.calls.append(("patch", path, body))
        name = path.rsplit("/", 1)[1]
        if name not in self.stored:
            raise ApiError(404, "NotFound", f"events {name} not found")
        self.stored[name].update(body)
        return self.stored[name]


def counted(outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value("corral_events_total", {"outcome": outcome}) or 0.0


def recorder(api: EventsAPI, clock: Clock, **options: Any) -> EventRecorder:
    return EventRecorder(api, clock=clock, **options)  # type: ignore[arg-type]


def test_post_returns_at_once_and_the_sender_creates_then_patches() -> None:
    async def scenario() -> list[tuple[str, str, Any]]:
        api, clock = EventsAPI(), Clock()
        events = recorder(api, clock)
        events.start()
        events.post(job(), "Normal", "Placed", "on rack r1")
        await asyncio.wait_for(events.drained(), 5)
        clock.advance(5)
        events.post(job(), "Normal", "Placed", "on rack r1")
        await asyncio.wait_for(events.drained(), 5)
        await events.stop()
        return api.calls

    calls = run(scenario())
    assert [(verb, path) for verb, path, _ in calls] == [
        ("create", "/api/v1/namespaces/ml/events"),
        ("patch", f"/api/v1/namespaces/ml/events/{calls[0][2]['metadata']['name']}"),
    ]
    assert calls[1][2] == {
        "count": 2,
        "lastTimestamp": "2026-11-30T12:00:05Z",
        "message": "on rack r1",
    }


def test_updates_waiting_to_be_sent_are_coalesced() -> None:
    async def scenario() -> list[tuple[str, str, Any]]:
        api, clock = EventsAPI(), Clock()
        events = recorder(api, clock)
        for _ in range(5):  # before the sender runs: one create, with the count it reached
            events.post(job(), "Warning", "BindTimeout", "not bound")
        assert events.pending == 1
        events.start()
        await asyncio.wait_for(events.drained(), 5)
        await events.stop()
        return api.calls

    calls = run(scenario())
    assert len(calls) == 1 and calls[0][0] == "create" and calls[0][2]["count"] == 5


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    dropped = counted("dropped")

    async def scenario() -> int:
        api, clock = EventsAPI(), Clock()
        events = recorder(api, clock, queue_size=3)
        for i in range(10):
            events.post(job(f"j{i}", f"u{i}"), "Normal", "Queued", "waiting")
        assert events.pending == 3
        events.start()
        await asyncio.wait_for(events.drained(), 5)
        await events.stop()
        return len(api.calls)

    assert run(scenario()) == 3
    assert counted("dropped") - dropped == 7


def test_a_patch_of_an_expired_event_creates_it_again() -> None:
    async def scenario() -> list[str]:
        api, clock = EventsAPI(), Clock()
        events = recorder(api, clock)
        events.start()
        events.post(job(), "Normal", "Placed", "x")
        await asyncio.wait_for(events.drained(), 5)
        api.stored.clear()  # etcd's event TTL passed
        events.post(job(), "Normal", "Placed", "x")
        await asyncio.wait_for(events.drained(), 5)
        await events.stop()
        assert next(iter(api.stored.values()))["count"] == 2
        return [verb for verb, _, _ in api.calls]

    assert run(scenario()) == ["create", "patch", "create"]


def test_a_failed_write_is_counted_and_the_sender_goes_on() -> None:
    failed = counted("failed")

    async def scenario() -> int:
        api, clock = EventsAPI(), Clock()
        api.fail = ApiError(403, "Forbidden", "events is forbidden")
        events = recorder(api, clock)
        events.start()
        events.post(job("a", "ua"), "Normal", "Placed", "x")
        events.post(job("b", "ub"), "Normal", "Placed", "x")
        await asyncio.wait_for(events.drained(), 5)
        await events.stop()
        return len(api.calls)

    assert run(scenario()) == 2
    assert counted("failed") - failed == 2


def test_a_slow_api_server_never_blocks_post() -> None:
    async def scenario() -> float:
        api, clock = EventsAPI(), Clock()
        api.gate.clear()  # every write hangs
        events = recorder(api, clock)
        events.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(500):
            events.post(job(f"j{i}", f"u{i}"), "Normal", "Queued", "waiting")
        elapsed = loop.time() - started
        await events.stop(drain_seconds=0.05)
        return elapsed

    assert run(scenario()) < 1.0


def test_every_post_is_logged_even_when_filtered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="corral.events")
    events = EventRecorder(EventsAPI(), clock=Clock(), correlator=EventCorrelator(burst=1))  # type: ignore[arg-type]
    for _ in range(3):
        events.post(job(), "Warning", "Restarted", "worker 2 failed")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["TrainingJob ml/j: Restarted: worker 2 failed"] * 3
    assert caplog.records[0].levelname == "WARNING"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_an_idle_recorder_is_still_a_recorder() -> None:
    """`post_event or default` must not drop an empty recorder (no __len__ making it falsy)."""
    recorder_ = EventRecorder(EventsAPI(), clock=Clock())  # type: ignore[arg-type]
    assert recorder_ and recorder_.pending == 0
