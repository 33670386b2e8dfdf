"""TrainingJobs and ResourceQuotas through the real runtime on the in-memory API: a quota whose
count is behind the API server's never admits a gang over it, and a full quota the API server
enforces sends the gang back to the queue instead of failing it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from tests.controllers.harness import Harness

from corral.fleet.testing import job, node, pool

Obj = dict[str, Any]
NS = "team-a"
FULL = (
    'pods "a-worker-1" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=8, '
    "used: requests.nvidia.com/gpu=8, limited: requests.nvidia.com/gpu=8"
)
UNCOUNTABLE = (
    'pods "a-worker-1" is forbidden: failed quota: cpus: must specify limits.cpu for: worker'
)


def harness(hosts: int = 4) -> Harness:
    return Harness(
        nodes=[node(f"h{i}").rack("r0").label("pool", "p").gpus(8) for i in range(hosts)],
        pools=[pool("p").select(pool="p")],
    )


def quota(gpus: int, used: int = 0) -> Obj:
    """The fake API never counts pods in a quota: `used` is what the test says it is."""
    hard = {"requests.nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": NS},
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": {"requests.nvidia.com/gpu": str(used)}},
    }


def condition(obj: Obj, type_: str) -> Obj | None:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    return found[0] if found else None


def test_a_pass_counts_the_workers_the_quota_has_not_counted_yet() -> None:
    """The API server counts a pod in its quotas as it creates it, but the quota's watch event
    can come after the pod's (the operator's own create puts the pod in its cache at once): a
    pass in between once saw neither the plan nor the count, and admitted a second gang over the
    quota. Here the quota's figures never move until the test moves them."""
    h = harness()

    async def scenario() -> None:
        async with h.running():
            h.api.put(quota(16))
            await h.converge()
            h.api.put(job("a", NS).workers(2).gpus(8).dict())
            await h.converge()
            assert h.phase("a", NS) == "Running"
            h.api.put(job("b", NS).workers(2).gpus(8).dict())
            await h.run_for(3)
            placed = condition(h.job("b", NS), "Placed")
            assert placed is not None and placed["reason"] == "QuotaExceeded", placed
            assert not h.job_pods("b", NS)
            # The quota now counts a's workers: still no room, and not counted twice.
            h.api.put(quota(16, used=16))
            await h.run_for(3)
            placed = condition(h.job("b", NS), "Placed")
            assert placed is not None and placed["reason"] == "QuotaExceeded", placed
            assert "16 used" in placed["message"] and "promised" not in placed["message"]
            # a ends and its pods go; the quota says so: b runs.
            await h.api.delete(f"/apis/corral.dev/v1alpha1/namespaces/{NS}/trainingjobs/a")
            await h.converge()
            h.api.put(quota(16, used=0))
            await h.run_for(3)
            assert h.phase("b", NS) == "Running"

    asyncio.run(scenario())


@dataclass
class Refusal:
    name: str
    message: str
    failed: bool
    """Whether the job fails for good (a pod the quota cannot count) or waits (a full quota)."""


REFUSALS = [
    Refusal("a full quota passes", FULL, failed=False),
    Refusal("a pod the quota cannot count does not", UNCOUNTABLE, failed=True),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
def test_a_quota_refusal_of_a_worker(case: Refusal) -> None:
    """Pods of other workloads can fill a quota between admission and the creates: the API server
    then refuses a worker. That is no fault of the job: it goes back to the queue without a
    restart charged, and runs once the quota has room; it used to fail for good."""
    h = harness()

    async def scenario() -> None:
        async with h.running():
            refused = h.api.fail("POST", "pods", 403, times=1, message=case.message)
            h.api.put(job("a", NS).workers(2).gpus(8).dict())
            await h.run_for(2)
            assert refused.times == 0
            status = h.job("a", NS)["status"]
            failed = condition(h.job("a", NS), "Failed")
            if case.failed:
                assert failed is not None and failed["reason"] == "PodRejected", status
                assert case.message in failed["message"]
                return
            assert failed is None, failed
            placed = condition(h.job("a", NS), "Placed")
            assert placed is not None and placed["reason"] == "QuotaExceeded", status
            assert "exceeded quota: gpus" in placed["message"]
            assert "QuotaExceeded" in h.reasons("a")
            assert status.get("restarts", 0) == 0
            await h.run_for(10)  # the re-placement backoff (5 s the first time)
            assert h.phase("a", NS) == "Running"
            pods = h.job_pods("a", NS)
            assert len(pods) == 2
            attempt = h.job("a", NS)["status"]["attempt"]
            assert all(p["metadata"]["labels"]["corral.dev/restart"] == str(attempt) for p in pods)
            assert h.job("a", NS)["status"].get("restarts", 0) == 0

    asyncio.run(scenario())
