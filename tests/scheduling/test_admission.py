"""Admission in the scheduling pass (issue 9, §2-3), driven through the in-memory cluster: what
waits without holding a pool, and why; quotas, pool access, PriorityClasses, budgets, and the
per-pool queueing strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from corral.api import GPUPool
from corral.fleet.testing import BLOCK, RACK, job, node, pool
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def fleet(hosts: int = 4, **pool_spec: Any) -> InMemoryCluster:
    document = pool("p").levels(BLOCK, RACK).dict()
    document["spec"].update(pool_spec)
    return InMemoryCluster(
        [node(f"h{i}").block("b1").rack(f"r{i // 2}").gpus(8).obj() for i in range(hosts)],
        [GPUPool.model_validate(document)],
    )


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": {**labels}}}


def quota(
    ns: str, hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": ns},
        "spec": {"hard": hard, **spec},
        "status": {"hard": hard, "used": used or {}},
    }


def priority_class(name: str, value: int, default: bool = False) -> dict[str, Any]:
    return {
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "globalDefault": default,
    }


def with_class(document: dict[str, Any], name: str) -> dict[str, Any]:
    document["spec"]["priorityClassName"] = name
    return document


def condition(c: InMemoryCluster, key: str, type_: str) -> dict[str, Any]:
    conditions = c.jobs[key].get("status", {}).get("conditions", [])
    return next(cond for cond in conditions if cond["type"] == type_)


def phase(c: InMemoryCluster, key: str) -> str:
    return str(c.jobs[key].get("status", {}).get("phase"))


# -- own constraints: waiting without holding ---------------------------------------------------


def test_a_job_no_node_could_ever_take_waits_without_holding_the_pool() -> None:
    """Issue 9: a 1-worker job whose nodeSelector matched no node was a non-permanent NoFit and
    held every pool it could use, forever, whatever the priority of the others."""
    c = fleet()
    c.put(priority_class("high", 1000))
    hog = job("hog", "team-b").workers(1).gpus(1).node_selector(gpu="none").dict()
    poison = c.submit(with_class(hog, "high"), T0)
    normal = c.submit(job("normal", "team-a").workers(2).gpus(8).dict(), T0 + timedelta(seconds=1))
    assert c.run_pass(T0) == [normal]
    placed = condition(c, poison, "Placed")
    assert (placed["status"], placed["reason"]) == ("False", "NoMatchingNodes")
    assert "nodeSelector gpu=none not matched on 4 of 4 nodes" in placed["message"]
    assert condition(c, poison, "Admitted")["status"] == "True"
    assert phase(c, poison) == "Queued"
    assert [e.reason for k, e in c.recorded.events if k == poison] == ["NoMatchingNodes"]


def test_a_job_waiting_on_its_own_constraints_is_placed_once_a_node_matches() -> None:
    """The answer "no node could ever take it" is memoised per pool: a node relabelled (or one that
    joins) must reach the job on the next pass, not only after the operator restarts."""
    c = fleet()
    waiting = c.submit(job("picky").workers(1).gpus(8).node_selector(gpu="a100").dict(), T0)
    assert c.run_pass(T0) == []
    assert condition(c, waiting, "Placed")["reason"] == "NoMatchingNodes"
    c.set_node(node("h0").block("b1").rack("r0").gpus(8).label("gpu", "a100").obj())
    assert c.run_pass(T0 + timedelta(seconds=1)) == [waiting]
    assert c.jobs[waiting]["status"]["placement"]["nodes"] == ["h0"]


def test_an_untolerated_taint_on_every_node_is_the_job_s_own_constraint() -> None:
    c = InMemoryCluster(
        [
            node(f"h{i}").block("b1").rack("r0").gpus(8).taint("dedicated", "ml").obj()
            for i in range(2)
        ]
        + [node("free").block("b1").rack("r1").gpus(8).obj()],
        [pool("p").levels(BLOCK, RACK).obj()],
    )
    big = c.submit(job("big").workers(3).gpus(8).dict(), T0)
    small = c.submit(job("small").workers(1).gpus(8).dict(), T0 + timedelta(seconds=1))
    assert c.run_pass(T0) == [small]
    assert condition(c, big, "Placed")["reason"] == "NoMatchingNodes"
    assert (
        "taint dedicated=ml:NoSchedule not tolerated on 2 of 3 nodes"
        in condition(c, big, "Placed")["message"]
    )


def test_a_job_that_would_fit_the_empty_pool_still_holds_it() -> None:
    """StrictFIFO stays strict for the gangs it is for: a big gang waiting for devices to free."""
    c = fleet()
    first = c.submit(job("first").workers(2).gpus(8).dict(), T0)
    c.run_pass(T0)
    big = c.submit(job("big").workers(4).gpus(8).dict(), T0 + timedelta(seconds=1))
    small = c.submit(job("small").workers(1).gpus(8).dict(), T0 + timedelta(seconds=2))
    assert c.run_pass(T0) == []
    assert condition(c, big, "Placed")["reason"] == "NoFit"
    assert "waiting behind default/big" in condition(c, small, "Placed")["message"]
    assert phase(c, first) == "Placing"


def test_a_waiting_job_holds_no_pool_it_could_never_fit() -> None:
    """A job that accepts a pool of 2-device hosts and one of 8-device hosts, for one 8-device
    worker, waits for the 8-device pool: it must not hold the 2-device pool too, which the jobs
    that can use only that pool need (found on the openb fleet: an 8-GPU task held the 1-GPU A10
    pool)."""
    c = InMemoryCluster(
        [node("big-0").label("kind", "big").gpus(8).obj()]
        + [node(f"small-{i}").label("kind", "small").gpus(2).obj() for i in range(2)],
        [pool(kind).match_labels({"kind": kind}).obj() for kind in ("big", "small")],
    )
    first = c.submit(job("first").workers(1).gpus(8).pools("big").dict(), T0)
    assert c.run_pass(T0) == [first]
    wide = c.submit(
        job("wide").workers(1).gpus(8).pools("big", "small").dict(), T0 + timedelta(seconds=1)
    )
    tiny = c.submit(job("tiny").workers(1).gpus(2).pools("small").dict(), T0 + timedelta(seconds=2))
    assert c.run_pass(T0 + timedelta(seconds=3)) == [tiny]
    assert condition(c, wide, "Placed")["reason"] == "NoFit"
    assert phase(c, wide) == "Queued"
    # Asking for only the pool it can never fit is still refused for good, with the reason.
    never = c.submit(job("never").workers(1).gpus(8).pools("small").dict(), T0)
    c.run_pass(T0 + timedelta(seconds=4))
    assert phase(c, never) == "Failed"
    assert "no node of pool small has that many" in condition(c, never, "Failed")["message"]


def test_best_effort_fifo_lets_later_jobs_that_fit_go_ahead() -> None:
    c = fleet(queueing="BestEffortFIFO")
    c.submit(job("first").workers(2).gpus(8).dict(), T0)
    c.run_pass(T0)
    c.submit(job("big").workers(4).gpus(8).dict(), T0 + timedelta(seconds=1))
    small = c.submit(job("small").workers(1).gpus(8).dict(), T0 + timedelta(seconds=2))
    assert c.run_pass(T0) == [small]


# -- pool access ---------------------------------------------------------------------------------


def test_a_pool_takes_jobs_only_from_the_namespaces_it_selects() -> None:
    c = fleet(namespaceSelector={"matchLabels": {"team": "a"}})
    c.put(namespace("team-a", team="a"))
    c.put(namespace("team-b", team="b"))
    outsider = c.submit(job("j", "team-b").workers(1).gpus(8).dict(), T0)
    member = c.submit(job("j", "team-a").workers(1).gpus(8).dict(), T0 + timedelta(seconds=1))
    assert c.run_pass(T0) == [member]
    refused = condition(c, outsider, "Admitted")
    assert (refused["status"], refused["reason"]) == ("False", "PoolNotAllowed")
    assert "namespace team-b may not use pool(s) p" in refused["message"]
    assert phase(c, outsider) == "Queued"


def test_a_namespace_relabelled_into_the_pool_is_admitted_on_the_next_pass() -> None:
    c = fleet(namespaceSelector={"matchLabels": {"team": "a"}})
    key = c.submit(job("j", "team-b").workers(1).gpus(8).dict(), T0)
    assert c.run_pass(T0) == []
    c.put(namespace("team-b", team="a"))
    assert c.run_pass(T0) == [key]


# -- quotas ----------------------------------------------------------------------------------------


def test_a_gang_over_the_namespace_gpu_quota_waits_with_the_numbers() -> None:
    c = fleet()
    c.put(quota("team-b", {"requests.nvidia.com/gpu": "24"}, {"requests.nvidia.com/gpu": "16"}))
    key = c.submit(job("big", "team-b").workers(2).gpus(8).dict(), T0)
    other = c.submit(job("other", "team-a").workers(1).gpus(8).dict(), T0 + timedelta(seconds=1))
    assert c.run_pass(T0) == [other], "a job over its quota holds nothing"
    refused = condition(c, key, "Admitted")
    assert refused["reason"] == "QuotaExceeded"
    assert refused["message"] == (
        "ResourceQuota team-b/gpus: requests.nvidia.com/gpu: the gang needs 16, 8 left of 24 "
        "(16 used)"
    )


def test_gangs_placed_earlier_count_against_the_quota_before_their_pods_exist() -> None:
    c = fleet()
    c.put(quota("team-b", {"requests.nvidia.com/gpu": "16"}))
    first = c.submit(job("a", "team-b").workers(1).gpus(8).dict(), T0)
    second = c.submit(job("b", "team-b").workers(1).gpus(8).dict(), T0 + timedelta(seconds=1))
    third = c.submit(job("c", "team-b").workers(1).gpus(8).dict(), T0 + timedelta(seconds=2))
    assert c.run_pass(T0) == [first, second]
    message = condition(c, third, "Admitted")["message"]
    assert (
        "the gang needs 8, 0 left of 16 (0 used, 16 promised to pods planned but not yet created)"
        in message
    )


def test_cpu_and_pod_count_quotas_are_checked_too() -> None:
    c = fleet()
    c.put(quota("team-b", {"requests.cpu": "10", "pods": "10"}))
    key = c.submit(job("j", "team-b").workers(2).gpus(8).requests(cpu="8").dict(), T0)
    c.run_pass(T0)
    assert (
        "requests.cpu: the gang needs 16, 10 left of 10" in condition(c, key, "Admitted")["message"]
    )


def test_a_quota_scoped_to_another_priority_class_does_not_count() -> None:
    c = fleet()
    c.put(priority_class("low", 10))
    scoped = {
        "scopeSelector": {
            "matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}
            ]
        }
    }
    c.put(quota("team-b", {"requests.nvidia.com/gpu": "0"}, **scoped))
    key = c.submit(with_class(job("j", "team-b").workers(1).gpus(8).dict(), "low"), T0)
    assert c.run_pass(T0) == [key]


def test_a_malformed_quota_is_left_out_alone() -> None:
    c = fleet()
    c.put(quota("team-b", {"requests.nvidia.com/gpu": "1e999999999"}))
    key = c.submit(job("j", "team-b").workers(1).gpus(8).dict(), T0)
    assert c.run_pass(T0) == [key]
    assert "ResourceQuota team-b/gpus" in c.tenancy.problems


# -- priority classes --------------------------------------------------------------------------------


def test_the_priority_class_orders_the_queue() -> None:
    c = fleet(hosts=2)
    c.put(priority_class("high", 1000))
    low = c.submit(job("early").workers(2).gpus(8).dict(), T0)
    high = c.submit(
        with_class(job("late").workers(2).gpus(8).dict(), "high"), T0 + timedelta(hours=1)
    )
    assert c.run_pass(T0) == [high]
    assert phase(c, low) == "Queued", "created an hour earlier, but of a lower class"


def test_the_global_default_class_is_the_priority_of_jobs_naming_none() -> None:
    c = fleet(hosts=2)
    c.put(priority_class("normal", 100, default=True))
    c.put(priority_class("low", 1))
    low = c.submit(with_class(job("early").workers(2).gpus(8).dict(), "low"), T0)
    default = c.submit(job("late").workers(2).gpus(8).dict(), T0 + timedelta(hours=1))
    assert c.run_pass(T0) == [default]
    assert phase(c, low) == "Queued"


def test_an_unknown_priority_class_waits_and_says_so() -> None:
    c = fleet()
    key = c.submit(with_class(job("j").workers(1).gpus(8).dict(), "platinum"), T0)
    other = c.submit(job("other").workers(1).gpus(8).dict(), T0 + timedelta(seconds=1))
    assert c.run_pass(T0) == [other]
    refused = condition(c, key, "Admitted")
    assert refused["reason"] == "PriorityClassNotFound"
    assert "there is no PriorityClass platinum" in refused["message"]
    c.put(priority_class("platinum", 5))
    assert c.run_pass(T0) == [key]


# -- budgets ----------------------------------------------------------------------------------------


def test_a_budget_the_expected_run_would_exceed_is_refused_at_admission() -> None:
    c = fleet()
    document = job("j").workers(2).gpus(8).dict()
    document["spec"]["budget"] = {"deviceHours": 100, "expectedDurationSeconds": 36000}
    key = c.submit(document, T0)
    assert c.run_pass(T0) == []
    refused = condition(c, key, "Admitted")
    assert refused["reason"] == "BudgetExceeded"
    assert "expected use 160.0 device-hours (0.0 used + 16 devices x 10 h" in refused["message"]
    assert phase(c, key) == "Queued"


def test_a_cost_budget_uses_the_cheapest_price_the_job_could_get() -> None:
    c = fleet()  # the test pool: 4.0 on demand, 1.5 spot, per device-hour
    document = job("j").workers(1).gpus(8).dict()
    document["spec"]["budget"] = {"cost": 100, "expectedDurationSeconds": 36000}
    key = c.submit(document, T0)
    c.run_pass(T0)
    message = condition(c, key, "Admitted")["message"]
    assert "expected cost 120.00" in message and "at 1.5 per device-hour" in message


def test_a_budget_within_reach_is_admitted() -> None:
    c = fleet()
    document = job("j").workers(1).gpus(8).dict()
    document["spec"]["budget"] = {"deviceHours": 100, "expectedDurationSeconds": 3600}
    key = c.submit(document, T0)
    assert c.run_pass(T0) == [key]
