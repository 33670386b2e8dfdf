"""Periodic checkpoint requests of a running gang (`checkpoint.intervalSeconds`): the same protocol
as on a notice, woken by timers, with bounded writes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.controllers.harness import Harness
from tests.disruption.test_operator_notices import host, workers_of
from tests.disruption.test_recovery import (
    KEY,
    T0,
    ack,
    cluster,
    notice_and_ack,
    started,
    status,
    workers,
)

from corral.api.conditions import get_condition
from corral.api.names import CHECKPOINT_NOW_ANNOTATION
from corral.api.trainingjob import TrainingJobStatus
from corral.fleet.testing import job, pool
from corral.sdk import protocol


def requested(c: Any) -> set[str | None]:
    return {p["metadata"]["annotations"].get(protocol.REQUESTED) for p in workers(c).values()}


def condition(c: Any, type_: str = "Checkpointed") -> Any:
    return get_condition(TrainingJobStatus.model_validate(status(c)).conditions, type_)


def test_a_request_is_made_every_interval_and_the_acknowledgement_moves_last_checkpoint() -> None:
    c = started(cluster(), checkpoint={"intervalSeconds": 600, "timeoutSeconds": 60})
    assert c.due[KEY] == T0 + timedelta(seconds=600), "a timer for the first request"
    assert requested(c) == {None}
    writes = c.recorded.writes
    due = T0 + timedelta(seconds=600)
    c.reconcile(KEY, due)
    (request,) = requested(c)
    assert request == f"{int(due.timestamp())}-periodic"
    assert c.recorded.writes == writes, "a request is annotations on the pods, not a status write"
    assert c.due[KEY] == due + timedelta(seconds=60), "woken when the wait ends"
    c.reconcile(KEY, due + timedelta(seconds=5))
    assert c.recorded.writes == writes, "nothing changed: nothing written"

    ack(c, request, 1200)
    c.reconcile(KEY, due + timedelta(seconds=10))
    s = status(c)
    assert s["lastCheckpoint"]["id"] == request and s["lastCheckpoint"]["step"] == 1200
    assert c.recorded.writes == writes + 1
    assert condition(c).status == "True" and condition(c).reason == "CheckpointCompleted"
    assert c.due[KEY] == due + timedelta(seconds=610), "the next one an interval after it"


def test_an_unanswered_request_is_reported_once_and_the_next_one_comes_on_time() -> None:
    c = started(cluster(), checkpoint={"intervalSeconds": 600, "timeoutSeconds": 60})
    due = T0 + timedelta(seconds=600)
    c.reconcile(KEY, due)
    (request,) = requested(c)
    writes = c.recorded.writes
    c.reconcile(KEY, due + timedelta(seconds=60))
    found = condition(c)
    assert found.status == "False" and found.reason == "CheckpointTimeout"
    assert request in found.message and "did not acknowledge" in found.message
    assert c.recorded.writes == writes + 1
    warnings = [e for _, e in c.recorded.events if e.reason == "CheckpointTimeout"]
    assert len(warnings) == 1
    c.reconcile(KEY, due + timedelta(seconds=90))
    assert c.recorded.writes == writes + 1, "told once"
    assert c.due[KEY] == due + timedelta(seconds=600)
    c.reconcile(KEY, due + timedelta(seconds=600))
    assert requested(c) == {f"{int((due + timedelta(seconds=600)).timestamp())}-periodic"}
    assert "lastCheckpoint" not in status(c)


def test_periodic_off_asks_nothing() -> None:
    c = started(cluster(), checkpoint={"intervalSeconds": 0})
    c.reconcile(KEY, T0 + timedelta(hours=5))
    assert requested(c) == {None}


def test_a_worker_replaced_in_place_is_not_asked_for_a_request_from_before_it_joined() -> None:
    c = started(cluster(), checkpoint={"intervalSeconds": 600, "timeoutSeconds": 300})
    noticed = status(c)["placement"]["nodes"][0]
    notice_and_ack(c, [noticed], T0 + timedelta(seconds=60))
    from tests.disruption.test_recovery import run

    run(c, T0 + timedelta(seconds=70))
    assert status(c)["phase"] == "Running" and status(c)["attempt"] == 0
    ids = {k: p["metadata"]["annotations"].get(protocol.REQUESTED) for k, p in workers(c).items()}
    assert ids["default/trainer-w0-r0-x1"] is None
    c.reconcile(KEY, T0 + timedelta(seconds=80))
    ids = {k: p["metadata"]["annotations"].get(protocol.REQUESTED) for k, p in workers(c).items()}
    assert ids["default/trainer-w0-r0-x1"] is None, "the notice's request is moot"
    # The next periodic request counts from when the gang re-formed.
    assert c.due[KEY] == T0 + timedelta(seconds=670)


def test_periodic_checkpoints_cost_one_status_write_each_over_the_real_runtime() -> None:
    """Twenty simulated minutes, a request 5 minutes after the last checkpoint, the workload
    answering within a minute (requests at about 5, 11 and 17 minutes): the only writes are the
    requests (one annotation per worker) and one status write per checkpoint."""
    h = Harness(
        nodes=[host(f"h{i}") for i in range(3)],
        pools=[pool("p").select(pool="p")],
        usage_refresh_seconds=7200,
    )

    async def scenario(h: Harness) -> None:
        body = job("j").workers(2).gpus(8).dict()
        body["spec"]["checkpoint"] = {"intervalSeconds": 300, "timeoutSeconds": 120}
        h.api.put(body)
        await h.converge()
        assert h.phase("j") == "Running"
        await h.run_for(5)
        before = dict(h.api.requests)
        for minute in range(20):
            await h.run_for(60)
            for pod in workers_of(h, "j").values():
                annotations = pod["metadata"]["annotations"]
                request = annotations.get(protocol.REQUESTED)
                if request and annotations.get(protocol.COMPLETED) != request:
                    annotations.update({protocol.COMPLETED: request, protocol.STEP: str(minute)})
                    h.api.put(pod)
        grown = {k: v - before.get(k, 0) for k, v in h.api.requests.items()}
        writes = {k: v for k, v in grown.items() if k[0] in ("POST", "PATCH", "DELETE") and v}
        assert writes == {("PATCH", "pods"): 6, ("PATCH", "trainingjobs/status"): 3}, writes
        assert h.job("j")["status"]["lastCheckpoint"]["id"].endswith("-periodic")

    async def main() -> None:
        async with h.running():
            await scenario(h)

    asyncio.run(main())


def annotate_job(c: Any, value: str) -> None:
    meta = c.jobs[KEY]["metadata"]
    meta.setdefault("annotations", {})[CHECKPOINT_NOW_ANNOTATION] = value
    meta["resourceVersion"] = c._bump()


def test_checkpoint_now_asks_the_running_gang_once_and_a_bad_value_is_a_condition() -> None:
    c = started(cluster(), checkpoint={"intervalSeconds": 3600, "timeoutSeconds": 60})
    now = T0 + timedelta(seconds=120)
    annotate_job(c, "not a time")
    c.reconcile(KEY, now)
    bad = condition(c)
    assert bad is not None and bad.reason == "InvalidCheckpointRequest"
    assert CHECKPOINT_NOW_ANNOTATION in bad.message and "RFC 3339" in bad.message
    assert requested(c) == {None}

    annotate_job(c, now.strftime("%Y-%m-%dT%H:%M:%SZ"))  # as Argo CD's checkpoint-now action
    c.reconcile(KEY, now + timedelta(seconds=1))
    (request,) = requested(c)
    assert request == f"{int((now + timedelta(seconds=1)).timestamp())}-manual"
    assert condition(c) is None, "the complaint went with the bad value"
    writes = c.recorded.writes
    c.reconcile(KEY, now + timedelta(seconds=5))
    assert requested(c) == {request} and c.recorded.writes == writes, "asked once"

    ack(c, request, 1500)
    c.reconcile(KEY, now + timedelta(seconds=10))
    assert status(c)["lastCheckpoint"]["id"] == request
    c.reconcile(KEY, now + timedelta(seconds=20))
    assert requested(c) == {request}, "answered: not asked again"
