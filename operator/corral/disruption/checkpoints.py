"""Checkpoint requests and acknowledgements: pure decisions over what the worker pods carry.

The whole protocol state lives on the worker pods (annotations, see `corral.sdk.protocol`) and in
`status.lastCheckpoint`, so a restarted operator reads it back and decides the same thing:

- a request id says when and why it was made (`1796040000-notice`); the newest id found on any
  worker is the request in flight, and workers that lack it are (re)annotated;
- a checkpoint is complete when every worker's latest acknowledgement names the same id;
  it then becomes `lastCheckpoint` only if it moves forward (a higher step): late, partial or
  malformed acknowledgements never regress it, and each is reported;
- periodic requests every `intervalSeconds` of running; on a notice an immediate request whose
  wait is bounded by min(`timeoutSeconds`, notice deadline - margin);
- the httpGet hook is a decision here (`HookCall`: call this pod with this id) and an async
  caller elsewhere, off the reconcile path, that writes a 200's `{"step", "uri"}` back onto the pod
  as the same acknowledgement annotations, so both hooks are judged by one function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from corral.api.trainingjob import Checkpoint, CheckpointRecord
from corral.sdk import protocol

RequestReason = Literal["periodic", "notice", "manual", "policy"]
NOTICE_MARGIN_SECONDS = 10.0
"""Kept between the end of a checkpoint wait and a notice's deadline, to delete and move the
workers before the node goes."""
_REASONS: tuple[RequestReason, ...] = ("periodic", "notice", "manual", "policy")


@dataclass(frozen=True, order=True)
class RequestId:
    """`<unix seconds>-<reason>`: ordered by time, readable by a person and by a restarted
    operator (which re-derives the wait bound from it)."""

    time: datetime
    reason: RequestReason

    def __str__(self) -> str:
        return f"{int(self.time.timestamp())}-{self.reason}"

    @classmethod
    def new(cls, now: datetime, reason: RequestReason) -> RequestId:
        return cls(datetime.fromtimestamp(int(now.timestamp()), UTC), reason)

    @classmethod
    def parse(cls, text: str) -> RequestId | None:
        seconds, _, reason = text.partition("-")
        if not seconds.isdigit() or reason not in _REASONS:
            return None
        try:
            time = datetime.fromtimestamp(int(seconds), UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(time, reason)


@dataclass(frozen=True)
class WorkerView:
    """What the checkpoint logic reads of one worker pod of the current attempt."""

    name: str
    index: int
    annotations: Mapping[str, str]
    pod_ip: str | None = None

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any], index: int) -> WorkerView:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        return cls(
            name=str(metadata.get("name", "")),
            index=index,
            annotations={str(k): str(v) for k, v in annotations.items()},
            pod_ip=(pod.get("status") or {}).get("podIP"),
        )


@dataclass(frozen=True)
class Ack:
    worker: str
    id: str
    step: int
    uri: str | None


def read_ack(worker: WorkerView) -> tuple[Ack | None, str | None]:
    """The worker's latest acknowledgement, or a problem when it is malformed."""
    ack_id = worker.annotations.get(protocol.COMPLETED)
    if not ack_id:
        return None, None
    raw_step = worker.annotations.get(protocol.STEP, "")
    try:
        step = int(raw_step)
    except ValueError:
        step = -1
    if step < 0:
        return None, (
            f"{worker.name}: {protocol.COMPLETED}={ack_id} with {protocol.STEP}={raw_step!r}, "
            "not a step number >= 0; the acknowledgement is ignored"
        )
    return Ack(worker.name, ack_id, step, worker.annotations.get(protocol.URI) or None), None


@dataclass
class Round:
    """What the workers say about checkpoints right now."""

    in_flight: RequestId | None
    """The newest request id found on any worker."""
    unannotated: list[str] = field(default_factory=list)
    """Workers that do not carry the request in flight yet."""
    acked: list[str] = field(default_factory=list)
    """Workers that acknowledged the request in flight."""
    complete: CheckpointRecord | None = None
    """Every worker acknowledged the same id: the checkpoint they made."""
    problems: list[str] = field(default_factory=list)


def read_round(workers: Sequence[WorkerView], now: datetime) -> Round:
    requested = [RequestId.parse(w.annotations.get(protocol.REQUESTED, "")) for w in workers]
    known = [r for r in requested if r is not None]
    in_flight = max(known) if known else None
    round_ = Round(in_flight)
    for worker, request in zip(workers, requested, strict=True):
        raw = worker.annotations.get(protocol.REQUESTED)
        if raw and request is None:
            round_.problems.append(
                f"{worker.name}: {protocol.REQUESTED}={raw!r} is not a Corral request id"
            )
        if in_flight is not None and request != in_flight:
            round_.unannotated.append(worker.name)
    acks: list[Ack] = []
    for worker in workers:
        ack, problem = read_ack(worker)
        if problem:
            round_.problems.append(problem)
        if ack is not None:
            acks.append(ack)
            if in_flight is not None and ack.id == str(in_flight):
                round_.acked.append(worker.name)
    if workers and len(acks) == len(workers) and len({a.id for a in acks}) == 1:
        steps = {a.step for a in acks}
        if len(steps) > 1:
            round_.problems.append(
                f"checkpoint {acks[0].id}: workers acknowledged different steps "
                f"({', '.join(f'{a.worker}={a.step}' for a in acks)}); resuming from the lowest"
            )
        by_index = sorted(zip(workers, acks, strict=True), key=lambda pair: pair[0].index)
        uri = next((a.uri for _, a in by_index if a.uri), None)
        round_.complete = CheckpointRecord(id=acks[0].id, step=min(steps), time=now, uri=uri)
    elif acks and in_flight is not None:
        stale = sorted({a.id for a in acks if a.id != str(in_flight)})
        if stale and round_.acked:
            round_.problems.append(
                f"partial checkpoint: only {len(round_.acked)} of {len(workers)} worker(s) "
                f"acknowledged {in_flight}; others still report {', '.join(stale)}"
            )
    return round_


def advance(
    last: CheckpointRecord | None, candidate: CheckpointRecord | None
) -> tuple[CheckpointRecord | None, str | None]:
    """`lastCheckpoint` after a complete checkpoint: it only moves forward (a higher step, or the
    first one); an older or equal-step different checkpoint is reported and ignored."""
    if candidate is None or (last is not None and candidate.id == last.id):
        return last, None
    if last is None or last.step is None or (candidate.step or 0) > last.step:
        return candidate, None
    return last, (
        f"checkpoint {candidate.id} at step {candidate.step} is not newer than lastCheckpoint "
        f"{last.id} at step {last.step}; lastCheckpoint is kept"
    )


def wait_until(
    request: RequestId,
    policy: Checkpoint,
    notice_deadline: datetime | None,
    margin_seconds: float = NOTICE_MARGIN_SECONDS,
) -> datetime:
    """When Corral stops waiting for acknowledgements of `request`: `timeoutSeconds` after it,
    and for a notice no later than the deadline minus the margin (never before the request)."""
    bound = request.time + timedelta(seconds=policy.timeout_seconds)
    if notice_deadline is not None:
        bound = min(bound, notice_deadline - timedelta(seconds=margin_seconds))
    return max(bound, request.time)


def next_periodic(
    policy: Checkpoint,
    running_since: datetime | None,
    last: CheckpointRecord | None,
    in_flight: RequestId | None,
) -> datetime | None:
    """When the next periodic request is due: `intervalSeconds` after the latest of the gang
    starting to run, the last checkpoint and the last request; None when periodic is off or the
    gang is not running."""
    if policy.interval_seconds <= 0 or running_since is None:
        return None
    base = running_since
    for moment in (last.time if last else None, in_flight.time if in_flight else None):
        if moment is not None and moment > base:
            base = moment
    return base + timedelta(seconds=policy.interval_seconds)


@dataclass(frozen=True)
class HookCall:
    """Call the httpGet hook of one pod with a request id (done off the reconcile path)."""

    pod: str
    url: str
    request_id: str


@dataclass
class CheckpointPlan:
    """What to do about checkpoints now."""

    request: RequestId | None = None
    """The request in flight after this step (new or existing)."""
    annotate: list[str] = field(default_factory=list)
    """Worker pods to set `corral.dev/checkpoint-requested=<request>` on (either hook: the
    request is recorded on the pods; with the annotation hook that is the request itself)."""
    calls: list[HookCall] = field(default_factory=list)
    """Worker pods to call (httpGet hook)."""
    last_checkpoint: CheckpointRecord | None = None
    """`status.lastCheckpoint` after this step."""
    completed: bool = False
    """A checkpoint completed in this step (and moved lastCheckpoint)."""
    waiting: bool = False
    """A request is in flight and not all workers acknowledged it yet."""
    timed_out: bool = False
    """The request in flight was not acknowledged in time."""
    missing: list[str] = field(default_factory=list)
    """Workers that did not acknowledge the request in flight."""
    wait_until: datetime | None = None
    next_check: datetime | None = None
    """When to look again (the end of a wait, or the next periodic request)."""
    problems: list[str] = field(default_factory=list)


def plan(
    policy: Checkpoint,
    workers: Sequence[WorkerView],
    last: CheckpointRecord | None,
    *,
    now: datetime,
    running_since: datetime | None,
    notice_seen: datetime | None = None,
    notice_deadline: datetime | None = None,
    margin_seconds: float = NOTICE_MARGIN_SECONDS,
    demanded: datetime | None = None,
    demand_reason: RequestReason = "manual",
) -> CheckpointPlan:
    """The checkpoint step of a running gang. `notice_seen`/`notice_deadline`: a binding notice
    on one of its nodes (when it was first seen, when the node goes). `demanded`: a checkpoint
    asked for at that time (the job's `corral.dev/checkpoint-now`, at most `now`, or the
    deadline spot policy before it moves the gang: `demand_reason` names which); answered by
    any request made at or after it, and moot when it predates this gang's run."""
    round_ = read_round(workers, now)
    result = CheckpointPlan(problems=list(round_.problems))
    result.last_checkpoint, regress = advance(last, round_.complete)
    if regress:
        result.problems.append(regress)
    result.completed = result.last_checkpoint is not last and result.last_checkpoint is not None

    current = round_.in_flight
    if current is not None and running_since is not None and current.time < _second(running_since):
        # Made before the gang as it is now started (a worker was replaced in place since): moot.
        # A worker that joined must not be asked for it, nor the others made to wait on it.
        current = None
    # Answered: the workers' complete checkpoint names it (or a later request), or it was
    # recorded already (a worker that joined since has nothing to answer for it).
    answered = current is not None and (
        _answers(round_.complete, current) or _answers(result.last_checkpoint, current)
    )
    expired = (
        current is not None
        and not answered
        and now
        >= wait_until(current, policy, _deadline_for(current, notice_deadline), margin_seconds)
    )
    settled = current is None or answered or expired
    notice_unasked = (
        policy.on_interruption
        and notice_seen is not None
        and (current is None or current.time < _second(notice_seen))
    )
    demand_unasked = (
        demanded is not None
        and running_since is not None
        and _second(demanded) >= _second(running_since)
        and (current is None or current.time < _second(demanded))
    )
    due = next_periodic(policy, running_since, result.last_checkpoint, current)
    fresh: RequestId | None = None
    if notice_unasked:
        fresh = RequestId.new(now, "notice")
    elif settled and demand_unasked:
        fresh = RequestId.new(now, demand_reason)
    elif settled and due is not None and now >= due:
        fresh = RequestId.new(now, "periodic")

    request = fresh or current
    result.request = request
    if request is not None and (fresh is not None or not settled or expired):
        acked = set() if fresh else set(round_.acked)
        result.missing = [w.name for w in workers if w.name not in acked]
        result.wait_until = wait_until(
            request, policy, _deadline_for(request, notice_deadline), margin_seconds
        )
        result.timed_out = now >= result.wait_until
        result.waiting = not result.timed_out
        targets = list(workers) if fresh else [w for w in workers if w.name in round_.unannotated]
        if result.waiting or fresh:
            # The request is recorded on the pods whatever the hook (the protocol's state lives
            # there, and a restarted operator reads it back); the annotation hook is just that.
            result.annotate = [w.name for w in targets]
            if policy.hook.http_get is not None:
                # httpGet: every worker that has not answered is called again (the caller
                # dedupes calls already in flight by pod and request id).
                missing = [w for w in workers if w.name in result.missing]
                result.calls = http_calls(policy, missing, str(request))
        if result.waiting:
            result.next_check = result.wait_until
    if not result.waiting:
        later = next_periodic(policy, running_since, result.last_checkpoint, request)
        result.next_check = later if later is not None and later > now else None
    return result


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _answers(complete: CheckpointRecord | None, request: RequestId) -> bool:
    """A complete checkpoint answers the request in flight when it names it, or a later one."""
    if complete is None:
        return False
    if complete.id == str(request):
        return True
    named = RequestId.parse(complete.id)
    return named is not None and named >= request


def _deadline_for(request: RequestId, notice_deadline: datetime | None) -> datetime | None:
    return notice_deadline if request.reason == "notice" else None


def http_calls(
    policy: Checkpoint, workers: Sequence[WorkerView], request_id: str
) -> list[HookCall]:
    """The httpGet hook calls for these workers (those without a pod IP cannot be called yet)."""
    hook = policy.hook.http_get
    if hook is None:
        return []
    return [
        HookCall(w.name, f"{hook.scheme.lower()}://{w.pod_ip}:{hook.port}{hook.path}", request_id)
        for w in workers
        if w.pod_ip
    ]


def http_ack(request_id: str, status: int, body: bytes) -> tuple[dict[str, str] | None, str | None]:
    """The acknowledgement annotations an httpGet hook's answer amounts to: a 200 with JSON
    `{"step": N, "uri": "..."}`; anything else is a problem (the worker counts as not acked)."""
    if status != 200:
        return None, f"checkpoint hook answered HTTP {status} to {request_id}"
    try:
        answer = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None, f"checkpoint hook answered {request_id} with a body that is not JSON"
    step = answer.get("step") if isinstance(answer, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return None, (
            f'checkpoint hook answered {request_id} without "step" as a whole number >= 0'
        )
    annotations = {protocol.COMPLETED: request_id, protocol.STEP: str(step)}
    uri = answer.get("uri")
    if isinstance(uri, str) and uri:
        annotations[protocol.URI] = uri
    return annotations, None


def resume_env(last: CheckpointRecord | None) -> dict[str, str]:
    """The environment a restarted worker starts with: where and from which step to resume."""
    if last is None:
        return {}
    env = {protocol.RESUME_ID_ENV: last.id}
    if last.step is not None:
        env[protocol.RESUME_STEP_ENV] = str(last.step)
    if last.uri:
        env[protocol.RESUME_FROM_ENV] = last.uri
    return env
