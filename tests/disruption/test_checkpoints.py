"""The checkpoint protocol as pure decisions: requests, acknowledgements, forward-only records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.disruption.builders import T0, at

from corral.api.trainingjob import (
    AnnotationHook,
    Checkpoint,
    CheckpointHook,
    CheckpointRecord,
    HTTPGetHook,
)
from corral.disruption import checkpoints as c
from corral.sdk import protocol as p

POLICY = Checkpoint(interval_seconds=600, timeout_seconds=90)


def worker(
    index: int,
    requested: c.RequestId | str | None = None,
    acked: c.RequestId | str | None = None,
    step: int | str | None = None,
    uri: str | None = None,
    ip: str | None = None,
) -> c.WorkerView:
    annotations: dict[str, str] = {}
    if requested is not None:
        annotations[p.REQUESTED] = str(requested)
    if acked is not None:
        annotations[p.COMPLETED] = str(acked)
        if step is not None:
            annotations[p.STEP] = str(step)
        if uri:
            annotations[p.URI] = uri
    return c.WorkerView(f"w{index}", index, annotations, ip)


def gang(n: int, **kwargs: object) -> list[c.WorkerView]:
    return [worker(i, **kwargs) for i in range(n)]  # type: ignore[arg-type]


def test_request_ids_round_trip_and_order() -> None:
    first = c.RequestId.new(at(0.7), "periodic")
    later = c.RequestId.new(at(5), "notice")
    assert str(first) == f"{int(T0.timestamp())}-periodic"
    assert c.RequestId.parse(str(first)) == first
    assert first < later
    for bad in ("", "x-periodic", "123", "123-sometimes", "-notice", "9" * 30 + "-notice"):
        assert c.RequestId.parse(bad) is None


def test_no_request_before_the_interval() -> None:
    plan = c.plan(POLICY, gang(2), None, now=at(599), running_since=T0)
    assert plan.request is None and plan.annotate == [] and plan.next_check == at(600)


def test_periodic_request_annotates_every_worker() -> None:
    plan = c.plan(POLICY, gang(3), None, now=at(600), running_since=T0)
    assert plan.request == c.RequestId.new(at(600), "periodic")
    assert plan.annotate == ["w0", "w1", "w2"]
    assert plan.waiting and plan.wait_until == at(690) and plan.next_check == at(690)
    assert plan.missing == ["w0", "w1", "w2"]


def test_interval_zero_is_never() -> None:
    never = Checkpoint(interval_seconds=0)
    plan = c.plan(never, gang(2), None, now=at(10**6), running_since=T0)
    assert plan.request is None and plan.next_check is None


def test_waiting_reannotates_only_workers_that_lack_the_request() -> None:
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(0, request), worker(1), worker(2, request, request, 10)]
    plan = c.plan(POLICY, workers, None, now=at(620), running_since=T0)
    assert plan.request == request and plan.waiting
    assert plan.annotate == ["w1"]
    assert plan.missing == ["w0", "w1"]


def test_complete_when_every_worker_acked_the_same_id() -> None:
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(i, request, request, 1200, uri=f"s3://b/{i}") for i in range(3)]
    plan = c.plan(POLICY, workers, None, now=at(640), running_since=T0)
    assert plan.completed and not plan.waiting
    assert plan.last_checkpoint == CheckpointRecord(
        id=str(request), step=1200, time=at(640), uri="s3://b/0"
    )
    assert plan.next_check == at(1240)  # the next interval counts from the checkpoint


def test_timeout_reports_the_missing_workers() -> None:
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(0, request, request, 5), worker(1, request)]
    plan = c.plan(POLICY, workers, None, now=at(690), running_since=T0)
    assert plan.timed_out and not plan.waiting and plan.missing == ["w1"]
    assert plan.last_checkpoint is None
    # the next periodic request comes an interval after the one that timed out
    assert plan.next_check == at(1200)
    assert c.plan(POLICY, workers, None, now=at(1200), running_since=T0).request == (
        c.RequestId.new(at(1200), "periodic")
    )


def test_notice_requests_at_once_bounded_by_the_deadline() -> None:
    plan = c.plan(
        POLICY,
        gang(2),
        None,
        now=at(30),
        running_since=T0,
        notice_seen=at(30),
        notice_deadline=at(60),
    )
    assert plan.request == c.RequestId.new(at(30), "notice")
    assert plan.wait_until == at(50)  # min(30 + 90, 60 - 10)
    assert plan.annotate == ["w0", "w1"]


def test_notice_supersedes_a_periodic_request_in_flight() -> None:
    periodic = c.RequestId.new(at(600), "periodic")
    workers = gang(2, requested=periodic)
    plan = c.plan(
        POLICY,
        workers,
        None,
        now=at(610),
        running_since=T0,
        notice_seen=at(605),
        notice_deadline=at(725),
    )
    assert plan.request == c.RequestId.new(at(610), "notice")
    assert plan.wait_until == at(700)  # the timeout binds before 725 - 10


def test_notice_request_is_made_once() -> None:
    notice = c.RequestId.new(at(30), "notice")
    plan = c.plan(
        POLICY,
        gang(2, requested=notice),
        None,
        now=at(40),
        running_since=T0,
        notice_seen=at(30),
        notice_deadline=at(150),
    )
    assert plan.request == notice and plan.annotate == []
    timed_out = c.plan(
        POLICY,
        gang(2, requested=notice),
        None,
        now=at(140),
        running_since=T0,
        notice_seen=at(30),
        notice_deadline=at(150),
    )
    assert timed_out.request == notice and timed_out.timed_out and timed_out.annotate == []


def test_notice_past_its_deadline_times_out_at_once() -> None:
    plan = c.plan(
        POLICY,
        gang(1),
        None,
        now=at(100),
        running_since=T0,
        notice_seen=at(100),
        notice_deadline=at(95),
    )
    assert plan.timed_out and plan.annotate == ["w0"]  # asked anyway: it costs nothing


def test_on_interruption_false_does_not_request_on_notice() -> None:
    policy = Checkpoint(interval_seconds=600, on_interruption=False)
    plan = c.plan(
        policy,
        gang(1),
        None,
        now=at(30),
        running_since=T0,
        notice_seen=at(30),
        notice_deadline=at(60),
    )
    assert plan.request is None


def test_late_ack_of_a_superseded_request_still_completes_it() -> None:
    periodic = c.RequestId.new(at(600), "periodic")
    notice = c.RequestId.new(at(610), "notice")
    workers = [worker(i, notice, periodic, 900) for i in range(2)]
    plan = c.plan(
        POLICY,
        workers,
        None,
        now=at(612),
        running_since=T0,
        notice_seen=at(605),
        notice_deadline=at(725),
    )
    assert plan.last_checkpoint is not None and plan.last_checkpoint.id == str(periodic)
    assert plan.request == notice and plan.waiting  # the notice request still waits


def test_last_checkpoint_never_regresses() -> None:
    last = CheckpointRecord(id="1-notice", step=2000, time=T0)
    old = c.RequestId.new(at(600), "periodic")
    workers = gang(2, requested=old, acked=old, step=1500)
    plan = c.plan(POLICY, workers, last, now=at(601), running_since=T0)
    assert plan.last_checkpoint is last and not plan.completed
    assert any("not newer" in problem for problem in plan.problems)


@pytest.mark.parametrize("step", ["", "ten", "-3", "1.5"])
def test_malformed_step_is_reported_and_not_counted(step: str) -> None:
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(0, request, request, 10), worker(1, request, request, step)]
    plan = c.plan(POLICY, workers, None, now=at(610), running_since=T0)
    assert plan.last_checkpoint is None and plan.waiting and plan.missing == ["w1"]
    assert any("w1" in problem and "ignored" in problem for problem in plan.problems)


def test_partial_ack_is_reported() -> None:
    old = c.RequestId.new(at(0), "periodic")
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(0, request, request, 10), worker(1, request, old, 5)]
    plan = c.plan(POLICY, workers, None, now=at(610), running_since=T0)
    assert plan.last_checkpoint is None
    assert any("partial checkpoint" in problem for problem in plan.problems)


def test_different_steps_resume_from_the_lowest() -> None:
    request = c.RequestId.new(at(600), "periodic")
    workers = [worker(0, request, request, 10), worker(1, request, request, 9)]
    plan = c.plan(POLICY, workers, None, now=at(610), running_since=T0)
    assert plan.last_checkpoint is not None and plan.last_checkpoint.step == 9
    assert any("different steps" in problem for problem in plan.problems)


def test_garbage_request_annotation_is_reported() -> None:
    workers = [worker(0, "please"), worker(1)]
    plan = c.plan(POLICY, workers, None, now=at(10), running_since=T0)
    assert any("not a Corral request id" in problem for problem in plan.problems)


def test_http_hook_calls_pods_with_an_ip() -> None:
    policy = Checkpoint(
        interval_seconds=600,
        hook=CheckpointHook(http_get=HTTPGetHook(port=8080, path="/ckpt")),
    )
    workers = [worker(0, ip="10.0.0.1"), worker(1)]
    plan = c.plan(policy, workers, None, now=at(600), running_since=T0)
    request = str(c.RequestId.new(at(600), "periodic"))
    assert plan.annotate == ["w0", "w1"], "the request is recorded on the pods either way"
    assert plan.calls == [c.HookCall("w0", "http://10.0.0.1:8080/ckpt", request)]


@pytest.mark.parametrize(
    ("status", "body", "annotations"),
    [
        (
            200,
            b'{"step": 7, "uri": "gs://b/7"}',
            {p.COMPLETED: "r", p.STEP: "7", p.URI: "gs://b/7"},
        ),
        (200, b'{"step": 0}', {p.COMPLETED: "r", p.STEP: "0"}),
        (500, b"", None),
        (200, b"not json", None),
        (200, b'{"step": "7"}', None),
        (200, b'{"step": true}', None),
        (200, b'{"step": -1}', None),
        (200, b"[1]", None),
    ],
)
def test_http_answers(status: int, body: bytes, annotations: dict[str, str] | None) -> None:
    found, problem = c.http_ack("r", status, body)
    assert found == annotations
    assert (problem is None) == (annotations is not None)


def test_resume_env() -> None:
    assert c.resume_env(None) == {}
    record = CheckpointRecord(id="5-notice", step=40, time=T0, uri="s3://x")
    assert c.resume_env(record) == {
        p.RESUME_ID_ENV: "5-notice",
        p.RESUME_STEP_ENV: "40",
        p.RESUME_FROM_ENV: "s3://x",
    }


def test_annotation_hook_is_the_default() -> None:
    assert Checkpoint().hook == CheckpointHook(annotation=AnnotationHook())


ack_steps = st.lists(st.one_of(st.integers(0, 10**6), st.text(max_size=4)), min_size=1, max_size=5)


@given(rounds=st.lists(ack_steps, min_size=1, max_size=8))
def test_last_checkpoint_step_only_grows(rounds: list[list[object]]) -> None:
    """Whatever the workers write, round after round, lastCheckpoint's step never goes down."""
    last: CheckpointRecord | None = None
    now = T0
    for index, steps in enumerate(rounds):
        now += timedelta(seconds=700)
        request = c.RequestId.new(now, "periodic")
        workers = [worker(i, request, request, s) for i, s in enumerate(steps)]  # type: ignore[arg-type]
        plan = c.plan(POLICY, workers, last, now=now, running_since=T0)
        if last is not None and last.step is not None:
            assert plan.last_checkpoint is not None and plan.last_checkpoint.step is not None
            assert plan.last_checkpoint.step >= last.step, index
        last = plan.last_checkpoint


# --- checkpoint-now: a checkpoint asked for by a person (corral.dev/checkpoint-now) -------------

MANUAL = c.RequestId.new(at(100), "manual")
OLD_PERIODIC = c.RequestId.new(at(50), "periodic")


@pytest.mark.parametrize(
    ("case", "workers", "demanded", "now", "expected"),
    [
        ("asked: requested at once", gang(2), at(100), at(100), MANUAL),
        ("asked before this gang ran: moot", gang(2), T0 - timedelta(hours=1), at(100), None),
        (
            "answered by the manual request",
            gang(2, requested=MANUAL, acked=MANUAL, step=7),
            at(100),
            at(200),
            MANUAL,
        ),
        (
            "an older request settled: asked anew",
            gang(2, requested=OLD_PERIODIC, acked=OLD_PERIODIC, step=3),
            at(100),
            at(100),
            MANUAL,
        ),
        (
            "an older request in flight: asked once it settles",
            gang(2, requested=OLD_PERIODIC),
            at(100),
            at(100),
            OLD_PERIODIC,
        ),
    ],
)
def test_checkpoint_now(
    case: str,
    workers: list[c.WorkerView],
    demanded: object,
    now: object,
    expected: c.RequestId | None,
) -> None:
    plan = c.plan(POLICY, workers, None, now=now, running_since=T0, demanded=demanded)  # type: ignore[arg-type]
    assert plan.request == expected, case
    if expected == MANUAL and not any(w.annotations for w in workers):
        assert plan.annotate == ["w0", "w1"] and plan.waiting


def test_a_notice_comes_before_checkpoint_now() -> None:
    plan = c.plan(
        POLICY, gang(2), None, now=at(100), running_since=T0, demanded=at(100),
        notice_seen=at(100), notice_deadline=at(220),
    )  # fmt: skip
    assert plan.request == c.RequestId.new(at(100), "notice")
