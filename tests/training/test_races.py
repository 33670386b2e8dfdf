"""Reservations and lost races in the lifecycle: workers are nominated to their planned nodes
before they are ungated, and a gang whose planned room was taken is re-placed at once, whole."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.training.builders import Seen, at, bound, job, no_problem, running, worker

from corral.api.trainingjob import RequeueState
from corral.fleet.objects import Overcommit, PodKey
from corral.scheduling.actions import CreateWorker, Nominate, Ungate
from corral.training.lifecycle import Overcommitted, reconcile
from corral.training.pods import WorkerPod

GPU = "nvidia.com/gpu"


def nominated(pod: WorkerPod, node: str) -> WorkerPod:
    return replace(pod, nominated_node=node)


def unschedulable(
    pod: WorkerPod, why: str = "0/4 nodes are available: 1 Insufficient nvidia.com/gpu"
) -> WorkerPod:
    return replace(pod, gated=False, unschedulable=why)


def taken(*by: PodKey, node: str = "h2") -> Overcommitted:
    """`node` overcommitted by the given pods plus the job's own worker 1."""

    def check(name: str) -> Overcommit | None:
        if name != node:
            return None
        return Overcommit(node, GPU, 16, 8, tuple(sorted({*by, ("ns", "j-w1-r0")})))

    return check


def decide(
    pods: list[WorkerPod],
    *,
    overcommitted: Overcommitted | None = None,
    count: int | None = None,
    now: float = 2.0,
) -> Seen:
    builder = job("j").workers(2).placed("h1", "h2")
    if count is not None:
        builder = builder.status(requeue_state=RequeueState(count=count, requeue_at=at(0)))
    kwargs = {"overcommitted": overcommitted} if overcommitted else {}
    return Seen(reconcile(builder.obj(), pods, at(now), no_problem, None, **kwargs))


def test_new_workers_are_created_then_nominated_then_ungated() -> None:
    seen = decide([])
    kinds = [
        type(a).__name__ for a in seen.actions if isinstance(a, (CreateWorker, Nominate, Ungate))
    ]
    assert kinds == ["CreateWorker", "CreateWorker", "Nominate", "Nominate", "Ungate", "Ungate"]
    assert [a for a in seen.actions if isinstance(a, Nominate)] == [
        Nominate("j-w0-r0", "h1"),
        Nominate("j-w1-r0", "h2"),
    ]
    assert seen.ungate == ["j-w0-r0", "j-w1-r0"]


@pytest.mark.parametrize(
    ("pods", "nominations"),
    [
        pytest.param([worker(0), worker(1)], ["j-w0-r0", "j-w1-r0"], id="none-yet"),
        pytest.param(
            [nominated(worker(0), "h1"), nominated(worker(1), "h2")], [], id="both-nominated"
        ),
        pytest.param(
            [nominated(worker(0), "h1"), nominated(worker(1), "h9")], ["j-w1-r0"], id="wrong-node"
        ),
    ],
)
def test_a_whole_gang_is_nominated_before_it_is_ungated(
    pods: list[WorkerPod], nominations: list[str]
) -> None:
    seen = decide(pods)
    order = [type(a) for a in seen.actions if isinstance(a, (Nominate, Ungate))]
    assert [a.name for a in seen.actions if isinstance(a, Nominate)] == nominations
    assert seen.ungate == ["j-w0-r0", "j-w1-r0"]
    assert order == sorted(order, key=lambda kind: kind is Ungate)  # nominations first


def test_an_unchanged_nominated_bound_gang_nominates_nothing() -> None:
    seen = decide([running(worker(0), "h1"), running(worker(1), "h2")])
    assert not [a for a in seen.actions if isinstance(a, (Nominate, Ungate, CreateWorker))]


def test_a_worker_kube_scheduler_cannot_bind_loses_the_race_and_the_whole_gang_goes_at_once() -> (
    None
):
    seen = decide([running(worker(0), "h1"), unschedulable(worker(1))])

    assert seen.status.phase == "Queued"
    assert sorted(seen.delete) == ["j-w0-r0", "j-w1-r0"]  # the bound worker is released too
    assert seen.wants_placement and seen.requeue_after is None  # no timeout, no backoff
    assert seen.status.attempt == 1 and seen.status.placement is None
    [event] = [e for e in seen.events if e.reason == "RaceLost"]
    assert event.type == "Warning"
    assert "worker 1 cannot bind to node h2: 0/4 nodes are available: 1 Insufficient" in (
        event.message
    )
    assert "now" in event.message
    placed = next(c for c in seen.status.conditions if c.type == "Placed")
    assert (placed.status, placed.reason) == ("False", "RaceLost")


def test_a_gated_worker_whose_room_was_taken_is_re_placed_before_anything_is_ungated() -> None:
    seen = decide(
        [nominated(worker(0), "h1"), nominated(worker(1), "h2")],
        overcommitted=taken(("other", "intruder")),
    )
    assert seen.ungate == []
    assert sorted(seen.delete) == ["j-w0-r0", "j-w1-r0"]
    [event] = [e for e in seen.events if e.reason == "RaceLost"]
    assert (
        "worker 1 lost the room planned on node h2; node h2 now holds other/intruder "
        "(nvidia.com/gpu: 16 requested of 8)" in event.message
    )


def test_what_took_the_room_is_named_with_kube_schedulers_words() -> None:
    seen = decide(
        [bound(worker(0), "h1"), unschedulable(worker(1))],
        overcommitted=taken(("a", "x"), ("b", "y")),
    )
    [event] = [e for e in seen.events if e.reason == "RaceLost"]
    assert "Insufficient nvidia.com/gpu; node h2 now holds a/x, b/y" in event.message


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param([bound(worker(0), "h1"), bound(worker(1), "h2")], id="bound-worker-keeps-it"),
        pytest.param([worker(0), worker(1)], id="only-our-own-pods"),
    ],
)
def test_no_race_when_the_room_is_ours(pods: list[WorkerPod]) -> None:
    overcommit = taken() if pods[1].node is None else taken(("other", "late"))
    seen = decide(pods, overcommitted=overcommit)
    assert not [e for e in seen.events if e.reason == "RaceLost"]
    assert seen.status.placement is not None


def test_a_race_lost_again_backs_off_like_any_re_placement() -> None:
    seen = decide([unschedulable(worker(0)), unschedulable(worker(1))], count=1)
    assert seen.requeue_after == 5.0 and not seen.wants_placement
    assert seen.status.requeue_state is not None and seen.status.requeue_state.count == 2
    assert (
        "in 5s (re-placement 2)" in next(e for e in seen.events if e.reason == "RaceLost").message
    )


def test_the_placement_timeout_stays_the_last_resort() -> None:
    """An ungated worker kube-scheduler has not decided about yet is given the timeout."""
    pods = [bound(worker(0), "h1"), replace(worker(1), gated=False)]
    assert not decide(pods, now=60).events
    seen = decide(pods, now=200)
    assert [e.reason for e in seen.events] == ["Replaced"]


def _pod(spec: dict[str, object], reason: str = "Unschedulable") -> dict[str, object]:
    return {
        "metadata": {
            "name": "j-w1-r0",
            "labels": {"corral.dev/worker-index": "1", "corral.dev/restart": "0"},
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "nominatedNodeName": "h2",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": "0/4 nodes are available: 1 Insufficient nvidia.com/gpu.",
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("spec", "reason", "verdict"),
    [
        ({}, "Unschedulable", "0/4 nodes are available: 1 Insufficient nvidia.com/gpu."),
        ({"schedulingGates": [{"name": "corral.dev/placement"}]}, "Unschedulable", None),
        ({}, "SchedulingGated", None),
        ({"nodeName": "h2"}, "Unschedulable", None),
    ],
)
def test_worker_pod_reads_nomination_and_kube_schedulers_verdict(
    spec: dict[str, object], reason: str, verdict: str | None
) -> None:
    read = WorkerPod.from_pod(_pod(spec, reason))
    assert read is not None
    assert read.nominated_node == "h2"
    assert read.unschedulable == verdict
