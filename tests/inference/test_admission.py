"""Replicas are admitted like gangs: pool namespaceSelector and ResourceQuota, one reconcile at a
time, through `inference.lifecycle.reconcile` (pure: data in, decision out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.api import GPUPool
from corral.api.conditions import set_condition
from corral.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from corral.fleet.snapshot import FleetSnapshot
from corral.fleet.testing import node, pool
from corral.inference.lifecycle import ServiceView, fixed, reconcile
from corral.inference.replicas import ReplicaPod, revision_of
from corral.scheduling.actions import CreateWorker, Decision, DeletePod, Emit
from corral.scheduling.ledger import Ledger
from corral.scheduling.tenancy import Tenancy

T0 = datetime(2026, 11, 30, tzinfo=UTC)
NS = "team-b"


def spec(replicas: int, priority: str | None = None, **pod: Any) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate(
        {
            "acceleratorsPerReplica": 1,
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}], **pod}},
            **({"priorityClassName": priority} if priority else {}),
        }
    )


def gpu_pool(name: str, **selector: str) -> GPUPool:
    document = pool(name).select(pool=name).dict()
    if selector:
        document["spec"]["namespaceSelector"] = {"matchLabels": selector}
    return GPUPool.model_validate(document)


def hosts(pool_name: str, count: int, gpus: int = 8) -> list[dict[str, Any]]:
    return [
        node(f"{pool_name}-h{i}").label("pool", pool_name).gpus(gpus).obj() for i in range(count)
    ]


def quota(hard: str, used: str = "0", **spec: Any) -> dict[str, Any]:
    return {
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": NS},
        "spec": {"hard": {"requests.nvidia.com/gpu": hard}, **spec},
        "status": {"used": {"requests.nvidia.com/gpu": used}},
    }


def running(slot: int, revision: str) -> ReplicaPod:
    return ReplicaPod(
        name=f"chat-{revision}-{slot}",
        uid=f"u{slot}",
        slot=slot,
        revision=revision,
        phase="Running",
        node=f"p-h{slot}",
        planned_node=f"p-h{slot}",
        gated=False,
        deleting=False,
        ready=True,
    )


@dataclass
class Case:
    name: str
    service: InferenceServiceSpec
    quotas: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pools: list[GPUPool] = field(default_factory=lambda: [gpu_pool("p")])
    nodes: list[dict[str, Any]] = field(default_factory=lambda: hosts("p", 4))
    pods: list[ReplicaPod] = field(default_factory=list)
    planned_elsewhere: int = 0
    """Devices another workload of the namespace has planned but not created (in the ledger)."""
    created: int = 0
    on: set[str] | None = None
    """The nodes the new replicas must land on (None: any)."""
    reason: str | None = None
    message: tuple[str, ...] = ()


def decide(case: Case) -> Decision:
    snapshot = FleetSnapshot.build(case.nodes, [], case.pools)
    ledger = Ledger(snapshot)
    if case.planned_elsewhere:
        workers = {f"gang-w{i}": "p-h3" for i in range(case.planned_elsewhere)}
        ledger.assume("team-b/gang#0", NS, workers, {"nvidia.com/gpu": 1, "pods": 1})
    tenancy = Tenancy.build(
        [{"kind": "Namespace", "metadata": {"name": NS, "labels": case.labels}}], case.quotas
    )
    view = ServiceView(NS, "chat", "uid", 1, case.service, InferenceServiceStatus())
    sizing = fixed(case.service.replicas or 0)
    return reconcile(view, case.pods, sizing, snapshot, ledger, "cis:x", T0, tenancy=tenancy)


def ready_condition(decision: Decision) -> Any:
    status = decision.status
    assert isinstance(status, InferenceServiceStatus)
    return next(c for c in status.conditions if c.type == "Ready")


HIGH = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}
"""A quota scope: pods of PriorityClass high only."""

CASES = [
    Case("no quota, no selector: every replica", spec(3), created=3),
    Case(
        "namespace not allowed in the only pool",
        spec(2),
        pools=[gpu_pool("p", team="a")],
        labels={"team": "b"},
        reason="PoolNotAllowed",
        message=("namespace team-b may not use pool(s) p", "label the namespace to match"),
    ),
    Case(
        "namespace allowed by the selector",
        spec(2),
        pools=[gpu_pool("p", team="b")],
        labels={"team": "b"},
        created=2,
    ),
    Case("quota exact fit", spec(2), quotas=[quota("3", used="1")], created=2),
    Case(
        "quota one over: the replicas up to the quota, not the last",
        spec(3),
        quotas=[quota("3", used="1")],
        created=2,
        reason="QuotaExceeded",
        message=(
            "ResourceQuota team-b/gpus: requests.nvidia.com/gpu: the replica needs 1, 0 left of 3 "
            "(1 used, 2 promised to pods planned but not yet created)",
        ),
    ),
    Case(
        "planned pods of another workload count",
        spec(4),
        quotas=[quota("4")],
        planned_elsewhere=3,
        created=1,
        reason="QuotaExceeded",
    ),
    Case(
        "a quota scoped to another PriorityClass does not count the replicas",
        spec(3, priority="low"),
        quotas=[quota("1", scopeSelector=HIGH)],
        created=3,
    ),
    Case(
        "a quota scoped to the template's PriorityClass counts them",
        spec(3, priority="high"),
        quotas=[quota("1", scopeSelector=HIGH)],
        created=1,
        reason="QuotaExceeded",
    ),
    Case(
        "a Terminating quota counts a template with activeDeadlineSeconds",
        spec(2, activeDeadlineSeconds=3600),
        quotas=[quota("1", scopes=["Terminating"])],
        created=1,
        reason="QuotaExceeded",
    ),
    Case(
        "multi-pool: only the allowed pool is used, though the other fits better",
        spec(2),
        pools=[gpu_pool("a", team="a"), gpu_pool("b")],
        nodes=[*hosts("a", 2, gpus=1), *hosts("b", 2)],
        labels={"team": "b"},
        created=2,
        on={"b-h0", "b-h1"},
    ),
    Case(
        "running replicas over a lowered quota stay; the missing one waits",
        spec(4),
        quotas=[quota("3", used="3")],
        pods=[running(slot, revision_of(spec(4))) for slot in range(3)],
        reason="QuotaExceeded",
    ),
    Case(
        "rollout surge beyond the quota: no new replica, no old one deleted",
        spec(2),
        quotas=[quota("2", used="2")],
        pods=[running(slot, "old") for slot in range(2)],
        reason="QuotaExceeded",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replicas_are_admitted_like_gangs(case: Case) -> None:
    decision = decide(case)
    created = decision.of(CreateWorker)
    assert len(created) == case.created
    assert not decision.of(DeletePod)
    if case.on is not None:
        assert {action.node for action in created} <= case.on  # type: ignore[attr-defined]
    ready = ready_condition(decision)
    warnings = [e for e in decision.of(Emit) if e.type == "Warning"]  # type: ignore[attr-defined]
    if case.reason is None:
        assert ready.reason not in ("PoolNotAllowed", "QuotaExceeded")
        assert warnings == []
        return
    assert (ready.status, ready.reason) == ("False", case.reason)
    for part in case.message:
        assert part in ready.message
    assert [(e.reason, e.message) for e in warnings] == [(case.reason, ready.message)]


def test_the_warning_is_emitted_once_while_the_reason_is_unchanged() -> None:
    case = Case("over", spec(3), quotas=[quota("2")], reason="QuotaExceeded")
    first = ready_condition(decide(case))
    view_status = InferenceServiceStatus(
        conditions=set_condition([], "Ready", "False", first.reason, first.message, T0, 1)
    )
    snapshot = FleetSnapshot.build(case.nodes, [], case.pools)
    tenancy = Tenancy.build([], case.quotas)
    view = ServiceView(NS, "chat", "uid", 1, case.service, view_status)
    again = reconcile(view, [], fixed(3), snapshot, Ledger(snapshot), "cis:x", T0, tenancy=tenancy)
    assert ready_condition(again).message == first.message
    assert [e for e in again.of(Emit) if e.type == "Warning"] == []  # type: ignore[attr-defined]
