"""What the scheduling pass keeps from one pass to the next (a request's candidate pools and
admission answer, a job's candidate, what its status says it waits for) is dropped when what it
was read from changes: a node, a pool, the tenancy. Each test asks the same waiting job twice,
with a change in between that must change the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.api import GPUPool
from corral.api.trainingjob import RequeueState
from corral.fleet.testing import RACK, job, node, pool
from corral.scheduling.actions import WriteStatus
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def gpu_pool(name: str, product: str) -> GPUPool:
    return pool(name).levels(RACK).match_labels({"product": product}).obj()


def host(name: str, product: str, **labels: str) -> dict[str, object]:
    builder = node(name).rack("r1").label("product", product).gpus(8)
    for key, value in labels.items():
        builder = builder.label(key, value)
    return builder.obj()


def placed_reason(c: InMemoryCluster, key: str) -> str:
    conditions = c.jobs[key]["status"]["conditions"]
    return str(next(x["reason"] for x in conditions if x["type"] == "Placed"))


def test_a_node_that_comes_to_match_the_nodeselector_admits_the_waiting_job() -> None:
    c = InMemoryCluster([host("h1", "a")], [gpu_pool("a", "a")])
    key = c.submit(job("j", "ns").workers(1).gpus(8).node_selector(disk="ssd").dict(), T0)
    assert c.run_pass(T0) == []
    assert placed_reason(c, key) == "NoMatchingNodes"
    assert c.run_pass(T0) == []  # asked again, unchanged: the kept answer
    c.set_node(host("h1", "a", disk="ssd"))
    assert c.run_pass(T0) == [key]


def test_a_pool_created_after_the_job_is_offered_to_it() -> None:
    c = InMemoryCluster([host("h1", "a"), host("h2", "b")], [gpu_pool("a", "a")])
    busy = c.submit(job("busy", "ns").workers(1).gpus(8).dict(), T0)
    assert c.run_pass(T0) == [busy]  # pool a is full now
    key = c.submit(job("j", "ns").workers(1).gpus(8).dict(), T0)
    assert c.run_pass(T0) == []
    assert c.run_pass(T0) == []
    c.snapshot.upsert_pool(gpu_pool("b", "b"))
    assert c.run_pass(T0) == [key]
    assert c.training_job(key).view.status.placement.pool == "b"  # type: ignore[union-attr]


# A pass that decided nothing is not run again until something it reads changes (`run_pass`):
# each test checks that the pass is skipped while nothing changed, and runs (and places) again
# after the change.


def test_a_quiet_pass_runs_again_once_a_job_frees_capacity() -> None:
    c = InMemoryCluster([host("h1", "a")], [gpu_pool("a", "a")])
    busy = c.submit(job("busy", "ns").workers(1).gpus(8).dict(), T0)
    assert c.run_pass(T0) == [busy]
    key = c.submit(job("j", "ns").workers(1).gpus(8).dict(), T0)
    c.run_pass(T0)  # writes why j waits
    assert c.run_pass(T0) == []  # decides nothing
    skipped = c.skipped_passes
    assert c.run_pass(T0 + timedelta(hours=1)) == []
    assert c.skipped_passes == skipped + 1
    c.delete_job(busy)
    assert c.run_pass(T0 + timedelta(hours=1)) == [key]
    assert c.skipped_passes == skipped + 1


def test_a_quiet_pass_runs_again_when_a_backoff_runs_out() -> None:
    c = InMemoryCluster([host("h1", "a")], [gpu_pool("a", "a")])
    key = c.submit(job("j", "ns").workers(1).gpus(8).dict(), T0)
    view = c.training_job(key).view  # type: ignore[union-attr]
    assert view is not None
    until = T0 + timedelta(seconds=60)
    status = view.status.model_copy(
        update={"requeue_state": RequeueState(count=1, requeue_at=until)}
    )
    c.apply(key, [WriteStatus(status)], T0)
    assert c.run_pass(T0) == []  # backing off: not offered
    assert c.run_pass(T0 + timedelta(seconds=59)) == []
    assert c.skipped_passes == 1
    assert c.run_pass(until) == [key]


def test_a_quiet_pass_runs_again_when_the_waiting_job_changes() -> None:
    c = InMemoryCluster([host("h1", "a")], [gpu_pool("a", "a")])
    body = job("j", "ns").workers(1).gpus(8).dict()
    body["spec"]["suspend"] = True
    key = c.submit(body, T0)
    assert c.run_pass(T0) == []  # suspended: not offered
    assert c.run_pass(T0) == []
    assert c.skipped_passes == 1
    # The user resumes it: a new resourceVersion of the job, nothing else changes.
    c.jobs[key]["spec"]["suspend"] = False
    c.jobs[key]["metadata"]["resourceVersion"] = c._bump()
    assert c.run_pass(T0) == [key]
