"""The TrainingJob lifecycle, one reconcile step at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.training.builders import (
    T0,
    Seen,
    at,
    bound,
    failed,
    job,
    no_problem,
    running,
    succeeded,
    ungated,
    worker,
)

from corral.api.conditions import get_condition
from corral.scheduling.actions import CreateWorker, EnsureService, RequeueAfter, WriteStatus
from corral.training.accounting import Price
from corral.training.lifecycle import admit, reconcile, refuse

PRICE = Price(per_device_hour=2.0, currency="USD")
WorkerToCreate = CreateWorker


def step(j, pods, now=0.0, problem=no_problem, price=PRICE, refresh=False) -> Seen:  # type: ignore[no-untyped-def]
    return Seen(reconcile(j, pods, at(now), problem, price, refresh))


def reasons(decision: Seen) -> list[str]:
    return [event.reason for event in decision.events]


def test_new_job_waits_in_the_queue() -> None:
    d = step(job().obj(), [], now=5)
    assert d.status.phase == "Queued"
    assert d.wants_placement
    assert d.status.queued_since == T0
    assert d.status.observed_generation == 1
    assert not d.create and not d.delete


def test_admit_records_the_placement_and_queue_time() -> None:
    j = job().phase("Queued").status(queued_since=T0).obj()
    status = admit(
        j, "p", "network.corral.dev/rack", "r1", ["h1", "h2"], "2 workers in rack r1", at(42)
    )
    assert status.phase == "Placing"
    assert status.placement is not None and status.placement.nodes == ["h1", "h2"]
    assert status.queued_seconds == 42
    assert status.queued_since is None
    placed = get_condition(status.conditions, "Placed")
    assert placed is not None and (placed.status, placed.reason, placed.message) == (
        "True",
        "GangPlaced",
        "2 workers in rack r1",
    )


def test_placed_job_creates_every_worker_on_its_node() -> None:
    d = step(job().placed("h1", "h2").obj(), [], now=1)
    assert d.create == [WorkerToCreate(0, 0, "h1"), WorkerToCreate(1, 0, "h2")]
    assert d.ensure_service
    assert d.status.phase == "Placing"
    # The bind timeout counts from the placement, not from each attempt to create the pods
    # (else a gang whose pods can never be created would hold its devices for good).
    assert d.requeue_after == pytest.approx(119)
    assert d.status.placement is not None and d.status.placement.time == at(0)


def test_partial_gang_stays_gated_until_every_pod_exists() -> None:
    """The whole gang is ungated in the step that completes it, but only after the creations:
    the executor stops at the first failed action, so nothing is ungated unless every pod exists.
    """
    d = step(job().placed("h1", "h2").obj(), [worker(0)], now=1)
    assert d.create == [WorkerToCreate(1, 0, "h2")]
    assert sorted(d.ungate) == ["j-w0-r0", "j-w1-r0"]
    kinds = [type(a).__name__ for a in d.actions]
    last_create = max(i for i, k in enumerate(kinds) if k == "CreateWorker")
    assert all(i > last_create for i, k in enumerate(kinds) if k in ("Ungate", "Nominate"))


def test_whole_gang_is_ungated_at_once() -> None:
    d = step(job().placed("h1", "h2").obj(), [worker(0), worker(1)], now=1)
    assert d.ungate == ["j-w0-r0", "j-w1-r0"]
    assert not d.create


def test_all_running_is_running_with_one_event() -> None:
    pods = [running(worker(0), "h1", 10), running(worker(1), "h2", 10)]
    d = step(job().placed("h1", "h2").obj(), pods, now=20)
    assert d.status.phase == "Running"
    assert d.status.start_time == at(20)
    assert reasons(d) == ["Running"]
    again = step(
        job().placed("h1", "h2").phase("Running").status(start_time=at(20)).obj(), pods, now=30
    )
    assert reasons(again) == []


def test_bound_but_not_yet_running_is_still_placing() -> None:
    pods = [bound(worker(0), "h1"), running(worker(1), "h2")]
    d = step(job().placed("h1", "h2").obj(), pods, now=5)
    assert d.status.phase == "Placing"
    assert d.requeue_after is None


def test_bind_timeout_replaces_the_whole_gang_after_a_backoff() -> None:
    pods = [bound(worker(0), "h1"), ungated(worker(1))]
    d = step(job().placed("h1", "h2", since=0).obj(), pods, now=121)
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]
    assert d.status.attempt == 1
    assert d.status.placement is None
    assert d.status.phase == "Queued"
    assert not d.wants_placement and d.requeue_after == 5
    assert d.status.requeue_state is not None and d.status.requeue_state.count == 1
    assert d.status.requeue_state.requeue_at == at(126)
    assert reasons(d) == ["Replaced"]
    assert "worker(s) 1 not bound within 120s" in d.events[0].message


@pytest.mark.parametrize(("count", "delay"), [(1, 5), (2, 10), (3, 20), (7, 300), (50, 300)])
def test_replacements_back_off_exponentially_and_capped(count: int, delay: float) -> None:
    from corral.api.trainingjob import RequeueState

    pods = [bound(worker(0), "h1"), ungated(worker(1))]
    j = job().placed("h1", "h2", since=0).status(requeue_state=RequeueState(count=count - 1)).obj()
    d = step(j, pods, now=121)
    assert d.requeue_after == delay
    assert d.status.requeue_state is not None and d.status.requeue_state.count == count


def test_a_job_backing_off_waits_then_asks_for_placement() -> None:
    from corral.api.trainingjob import RequeueState

    waiting = RequeueState(count=2, requeue_at=at(100))
    d = step(job().phase("Queued").status(requeue_state=waiting).obj(), [], now=40)
    assert not d.wants_placement and d.requeue_after == 60
    later = step(job().phase("Queued").status(requeue_state=waiting).obj(), [], now=100)
    assert later.wants_placement


def test_running_gang_forgets_its_backoff() -> None:
    from corral.api.trainingjob import RequeueState

    pods = [running(worker(0), "h1", 10), running(worker(1), "h2", 10)]
    j = job().placed("h1", "h2").status(requeue_state=RequeueState(count=3)).obj()
    assert step(j, pods, now=20).status.requeue_state is None


def test_planned_node_gone_bad_before_binding_replaces() -> None:
    def cordoned(node: str) -> str | None:
        return "node h2 is cordoned" if node == "h2" else None

    d = step(job().placed("h1", "h2").obj(), [bound(worker(0), "h1"), worker(1)], problem=cordoned)
    assert d.status.attempt == 1 and d.requeue_after == 5
    assert "worker 1: node h2 is cordoned" in d.events[0].message


def test_bound_worker_is_not_moved_for_a_node_problem() -> None:
    # Interruptions of running workers belong to the disruption policy, not to placement.
    def cordoned(node: str) -> str | None:
        return "node h1 is cordoned"

    pods = [running(worker(0), "h1"), running(worker(1), "h2")]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, problem=cordoned)
    assert d.status.attempt == 0 and not d.delete


def test_worker_failure_restarts_the_gang() -> None:
    pods = [failed(worker(0), "h1"), running(worker(1), "h2")]
    d = step(job().placed("h1", "h2").phase("Running").status(start_time=at(0)).obj(), pods, now=60)
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]
    assert (d.status.restarts, d.status.attempt, d.status.phase) == (1, 1, "Recovering")
    assert d.wants_placement
    assert reasons(d) == ["Restarted"]
    assert "worker 0 failed: container t exited with code 1 (Error)" in d.events[0].message


def test_failure_after_max_restarts_fails_the_job() -> None:
    pods = [failed(worker(0), "h1"), running(worker(1), "h2")]
    j = job().spec(maxRestarts=2).placed("h1", "h2").phase("Running").status(restarts=2).obj()
    d = step(j, pods, now=60)
    assert d.status.phase == "Failed"
    assert d.delete == ["j-w1-r0"]  # the failed pod stays for its logs
    failed_condition = get_condition(d.status.conditions, "Failed")
    assert failed_condition is not None and failed_condition.reason == "BackoffLimitExceeded"
    assert "maxRestarts=2 reached" in failed_condition.message


def test_all_succeeded_is_succeeded() -> None:
    pods = [succeeded(worker(0), "h1"), succeeded(worker(1), "h2")]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, now=3600)
    assert d.status.phase == "Succeeded"
    assert d.status.completion_time == at(3600)
    assert reasons(d) == ["Succeeded"]


def test_some_succeeded_some_running_is_running() -> None:
    pods = [succeeded(worker(0), "h1"), running(worker(1), "h2")]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, now=3600)
    assert d.status.phase == "Running"


def test_suspend_deletes_workers_and_resume_requeues() -> None:
    pods = [running(worker(0), "h1"), running(worker(1), "h2")]
    d = step(job().spec(suspend=True).placed("h1", "h2").phase("Running").obj(), pods, now=100)
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]
    assert d.status.phase == "Suspended"
    assert d.status.placement is None
    assert reasons(d) == ["Suspended"]
    resumed = step(job().phase("Suspended").status(attempt=1).obj(), [], now=200)
    assert resumed.status.phase == "Queued"
    assert resumed.wants_placement
    assert resumed.status.queued_since == at(200)
    assert reasons(resumed) == ["Resumed"]


def test_suspended_job_stays_suspended() -> None:
    d = step(job().spec(suspend=True).phase("Suspended").obj(), [], now=100)
    assert d.status.phase == "Suspended" and not d.events and not d.wants_placement


def test_leftover_pods_of_an_old_attempt_are_deleted() -> None:
    pods = [running(worker(0, attempt=0), "h1"), worker(0, attempt=1), worker(1, attempt=1)]
    d = step(job().placed("h3", "h4").status(attempt=1).obj(), pods, now=1)
    assert d.delete == ["j-w0-r0"]
    assert d.ungate == ["j-w0-r1", "j-w1-r1"]


def test_pods_without_a_placement_are_deleted() -> None:
    d = step(job().phase("Queued").obj(), [worker(0), worker(1)], now=1)
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]


def test_worker_deleted_by_someone_else_is_recreated_on_its_node() -> None:
    pods = [running(worker(0), "h1")]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, now=500)
    assert d.create == [WorkerToCreate(1, 0, "h2")]
    assert reasons(d) == ["WorkerRecreated"]
    assert d.status.placement is not None and d.status.placement.time == at(500)


def test_usage_is_not_rewritten_on_every_reconcile() -> None:
    # Usage grows with the clock: refreshing it on every step would make every step a write.
    pods = [running(worker(0), "h1", since=0), running(worker(1), "h2", since=0)]
    j = job().placed("h1", "h2").phase("Running").status(start_time=at(0)).obj()
    d = step(j, pods, now=3600)
    assert d.status.device_hours == 0
    assert d.status == j.status.model_copy(
        update={"observed_generation": 1, "workers": d.status.workers}
    )


def test_an_unchanged_running_job_decides_nothing_to_write() -> None:
    pods = [running(worker(0), "h1", since=0), running(worker(1), "h2", since=0)]
    first = step(job().placed("h1", "h2").phase("Placing").obj(), pods, now=10)
    settled = job().placed("h1", "h2").status(**dict(first.status)).obj()
    again = step(settled, pods, now=500)
    assert again.status == settled.status
    # Only the timer of the next periodic checkpoint request (intervalSeconds 1800 by default,
    # counted from the gang's start).
    assert [type(a) for a in again.actions] == [WriteStatus, EnsureService, RequeueAfter]
    assert again.ensure_service and not again.events
    assert again.requeue_after == pytest.approx(1300)


def test_device_hours_and_cost_count_running_workers() -> None:
    pods = [running(worker(0), "h1", since=0), running(worker(1), "h2", since=1800)]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, now=3600, refresh=True)
    assert d.status.device_hours == pytest.approx(8 * 1.0 + 8 * 0.5)
    assert d.status.cost == pytest.approx(12 * 2.0)
    assert d.status.currency == "USD"


def test_usage_is_settled_once_across_a_restart() -> None:
    pods = [failed(worker(0), "h1"), running(worker(1), "h2", since=0)]
    d = step(job().placed("h1", "h2").phase("Running").obj(), pods, now=3600)
    # worker 0 ran 60 s, worker 1 an hour, 8 devices each
    expected = 8 * 60 / 3600 + 8 * 1.0
    assert d.status.accounting.settled_device_hours == pytest.approx(expected)
    # The next step sees the old pods as leftovers: they are deleted, not counted again.
    later = step(
        job()
        .phase("Recovering")
        .status(attempt=1, accounting=d.status.accounting, restarts=1)
        .obj(),
        pods,
        now=7200,
        refresh=True,
    )
    assert later.status.device_hours == pytest.approx(expected)


def test_budget_exhausted_fails_the_job() -> None:
    pods = [running(worker(0), "h1", since=0), running(worker(1), "h2", since=0)]
    j = job().spec(budget={"deviceHours": 10}).placed("h1", "h2").phase("Running").obj()
    d = step(j, pods, now=3600)  # 16 device-hours used
    assert d.status.phase == "Failed"
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]
    condition = get_condition(d.status.conditions, "Failed")
    assert condition is not None and condition.reason == "BudgetExceeded"
    assert "spec.budget.deviceHours" in condition.message


def test_terminal_job_only_frees_devices() -> None:
    pods = [succeeded(worker(0), "h1"), running(worker(1), "h2")]
    j = job().placed("h1", "h2").phase("Failed").status(device_hours=3.0).obj()
    d = step(j, pods, now=99999)
    assert d.delete == ["j-w1-r0"]
    assert d.status.device_hours == 3.0
    assert not d.create and not d.events


def test_refuse_permanent_fails_unschedulable() -> None:
    status, event = refuse(job().obj(), "no pool matches accelerator.types=[B200]", True, at(1))
    assert status.phase == "Failed"
    condition = get_condition(status.conditions, "Failed")
    assert condition is not None and condition.reason == "Unschedulable"
    assert event is not None and event.reason == "Unschedulable"


def test_refuse_for_now_queues_with_the_reason_once() -> None:
    reason = "the largest rack has 16 free devices, the gang needs 32"
    status, event = refuse(job().obj(), reason, False, at(1))
    assert status.phase == "Queued"
    placed = get_condition(status.conditions, "Placed")
    assert placed is not None and (placed.status, placed.reason, placed.message) == (
        "False",
        "NoFit",
        reason,
    )
    assert event is not None and event.reason == "Queued"
    again, event_again = refuse(replace(job().obj(), status=status), reason, False, at(2))
    assert event_again is None
    assert get_condition(again.conditions, "Placed") == placed
    # A new reason updates the condition but does not post another event.
    newer, event_newer = refuse(
        replace(job().obj(), status=again), "the largest rack has 8 free devices", False, at(3)
    )
    assert event_newer is None
    condition = get_condition(newer.conditions, "Placed")
    assert condition is not None and condition.message == "the largest rack has 8 free devices"


pod_states = st.sampled_from(
    ["gated", "ungated", "bound", "running", "succeeded", "failed", "absent"]
)


@given(st.lists(pod_states, min_size=3, max_size=3), st.integers(0, 200), st.integers(0, 2))
def test_decisions_are_consistent(states: list[str], now: int, restarts: int) -> None:
    nodes = ["h1", "h2", "h3"]
    pods = []
    for index, state in enumerate(states):
        pod = worker(index)
        builders = {
            "gated": lambda p, n: p,
            "ungated": lambda p, n: ungated(p),
            "bound": bound,
            "running": running,
            "succeeded": succeeded,
            "failed": failed,
        }
        if state != "absent":
            pods.append(builders[state](pod, nodes[index]))
    j = job().workers(3).spec(maxRestarts=1).placed(*nodes).status(restarts=restarts).obj()
    d = step(j, pods, now=now)
    created = {create.index for create in d.create}
    alive = {pod.index for pod in pods}
    assert not created & alive, "never a second pod for a live worker"
    assert all(create.node == nodes[create.index] for create in d.create)
    assert not set(d.ungate) & set(d.delete)
    if d.create:
        # A gang is ungated only once every pod exists: after every creation of the step (the
        # executor stops at the first failure), and the whole gang of this attempt.
        kinds = [type(a).__name__ for a in d.actions]
        last_create = max(i for i, k in enumerate(kinds) if k == "CreateWorker")
        assert all(i > last_create for i, k in enumerate(kinds) if k == "Ungate")
        assert len(d.ungate) == len(set(d.ungate))
    # Same inputs, same decision: the step is a function of observed state.
    assert step(j, pods, now=now) == d


def test_a_spec_change_of_the_gang_shape_replaces_the_gang() -> None:
    pods = [running(worker(0), "h1"), running(worker(1), "h2")]
    j = job().workers(3).placed("h1", "h2").phase("Running").status(start_time=at(0)).obj()
    d = step(j, pods, now=100)
    assert sorted(d.delete) == ["j-w0-r0", "j-w1-r0"]
    assert d.wants_placement and d.status.attempt == 1
    assert "the spec changed from 2 x 8 to 3 x 8 devices" in d.events[0].message


def test_pods_refused_by_the_api_server_fail_the_job_and_remove_what_was_made() -> None:
    from corral.training.lifecycle import reject_pods

    j = job().placed("h1", "h2").obj()
    d = Seen(reject_pods(j, [worker(0)], "spec.containers[0].name: Invalid value", at(5), PRICE))
    assert d.status.phase == "Failed"
    assert d.delete == ["j-w0-r0"]
    assert not d.create and not d.wants_placement
    condition = get_condition(d.status.conditions, "Failed")
    assert condition is not None and condition.reason == "PodRejected"
    assert "spec.containers[0].name: Invalid value" in condition.message
