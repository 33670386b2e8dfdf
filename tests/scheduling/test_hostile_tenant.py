"""A hostile tenant harms only itself (issue 9): whatever TrainingJobs team-b writes — malformed,
unschedulable, over its quota, naming classes that do not exist — the pass never raises, none of
them holds a pool, each says why it waits, and a valid job of team-a is placed in the same pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.mutations import mutated
from tests.placement.test_hostile_objects import full_job

from corral.fleet.testing import BLOCK, RACK, job, node, pool
from corral.sim.memory import InMemoryCluster

T0 = datetime(2026, 11, 30, tzinfo=UTC)
REASONS = {"QuotaExceeded", "NoMatchingNodes", "PriorityClassNotFound", "BudgetExceeded"}


def fleet() -> InMemoryCluster:
    c = InMemoryCluster(
        [node(f"h{i}").block("b1").rack(f"r{i // 2}").gpus(8).obj() for i in range(4)],
        [
            pool("h100")
            .levels(BLOCK, RACK)
            .accelerator("H100-80GB")
            .location("eu-west-1", "EU")
            .obj()
        ],
    )
    # team-b may not take devices at all: whatever it submits, nothing it does is legitimate use.
    c.put(
        {
            "kind": "ResourceQuota",
            "metadata": {"name": "none", "namespace": "team-b"},
            "spec": {"hard": {"requests.nvidia.com/gpu": "0"}},
        }
    )
    return c


def as_team_b(document: Any, index: int) -> Any:
    if isinstance(document, dict) and isinstance(document.get("metadata"), dict):
        document["metadata"]["namespace"] = "team-b"
        document["metadata"]["name"] = f"poison-{index}"
    return document


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(full_job()), min_size=1, max_size=5))
def test_poison_jobs_never_stop_a_valid_job_of_another_team(poison: list[Any]) -> None:
    c = fleet()
    keys = []
    for index, document in enumerate(poison):
        document = as_team_b(document, index)
        if not (isinstance(document, dict) and isinstance(document.get("metadata"), dict)):
            continue
        keys.append(c.submit(document, T0))
    normal = c.submit(job("normal", "team-a").workers(2).gpus(8).dict(), T0 + timedelta(hours=1))
    assert normal in c.run_pass(T0)
    for key in keys:
        record = c.training_job(key)
        assert record is not None
        if record.problem is not None:
            continue  # invalid: the operator marks it InvalidSpec (tests/controllers)
        conditions = {c["type"]: c for c in c.jobs[key].get("status", {}).get("conditions", [])}
        if record.view is not None and record.view.spec.suspend:
            continue  # suspended jobs are not queued
        if "Failed" in conditions:
            # No pool could ever take it (e.g. topology.required naming a level no pool has):
            # it fails at once, holding nothing (docs/training.md, the queue).
            assert conditions["Failed"]["reason"] == "Unschedulable", conditions["Failed"]
            continue
        placed = conditions["Placed"]
        assert placed["status"] == "False"
        assert placed["reason"] in REASONS, placed
        assert placed["message"]
