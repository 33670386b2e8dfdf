"""Every notice source, read from the exact keys it writes; malformed values are problems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.disruption.builders import T0, at, signal_node, worker_pod

from corral.disruption import notices as n

ISO = "2026-11-30T12:05:00Z"


@dataclass(frozen=True)
class Case:
    name: str
    node: dict[str, Any]
    source: str | None
    kind: str | None = None
    advisory: bool = False
    deadline: datetime | None = None
    since: datetime | None = None
    problems: int = 0


CASES = [
    Case("plain ready node", signal_node().obj(), None),
    Case("spot node, no signal", signal_node().spot().obj(), None),
    Case(
        "NTH spot interruption",
        signal_node().spot().taint(n.NTH_SPOT_ITN, "evt-123").obj(),
        "aws-nth",
        "reclaim",
    ),
    Case(
        "NTH scheduled maintenance",
        signal_node().taint(n.NTH_SCHEDULED_MAINTENANCE, "evt").obj(),
        "aws-nth",
        "maintenance",
    ),
    Case(
        "NTH ASG lifecycle termination",
        signal_node().taint(n.NTH_ASG_LIFECYCLE).obj(),
        "aws-nth",
        "maintenance",
    ),
    Case(
        "NTH rebalance recommendation is advisory",
        signal_node().spot().taint(n.NTH_REBALANCE).obj(),
        "aws-nth",
        "rebalance",
        advisory=True,
    ),
    Case(
        "NTH action label with action-time",
        signal_node()
        .label(n.NTH_ACTION_LABEL, "UncordonAfterReboot")
        .label(n.NTH_ACTION_TIME_LABEL, str(int(T0.timestamp())))
        .obj(),
        "aws-nth",
        "maintenance",
        since=T0,
    ),
    Case(
        "NTH action-time not Unix seconds",
        signal_node()
        .label(n.NTH_ACTION_LABEL, "UncordonAfterReboot")
        .label(n.NTH_ACTION_TIME_LABEL, "yesterday")
        .obj(),
        "aws-nth",
        "maintenance",
        problems=1,
    ),
    Case(
        "Karpenter v1 disrupted on spot",
        signal_node().spot().taint(n.KARPENTER_DISRUPTED).obj(),
        "karpenter",
        "reclaim",
    ),
    Case(
        "Karpenter v1 disrupted on on-demand",
        signal_node().spot(value="on-demand").taint(n.KARPENTER_DISRUPTED).obj(),
        "karpenter",
        "maintenance",
    ),
    Case(
        "Karpenter v1beta1 disruption=disrupting",
        signal_node().spot().taint(n.KARPENTER_DISRUPTION_V1BETA1, "disrupting").obj(),
        "karpenter",
        "reclaim",
    ),
    Case(
        "GKE impending termination on a spot node",
        signal_node()
        .spot("cloud.google.com/gke-spot", "true")
        .taint(n.GKE_IMPENDING_TERMINATION)
        .obj(),
        "gke",
        "reclaim",
    ),
    Case(
        "GKE impending termination, on-demand (host maintenance)",
        signal_node().taint(n.GKE_IMPENDING_TERMINATION).obj(),
        "gke",
        "maintenance",
    ),
    Case(
        "AKS remediator taint",
        signal_node().spot(n.AKS_SPOT_LABEL, "spot").taint(n.AKS_REMEDIATOR).obj(),
        "aks",
        "reclaim",
    ),
    Case(
        "AKS spot node being drained (cordoned)",
        signal_node().spot(n.AKS_SPOT_LABEL, "spot").cordoned().obj(),
        "aks",
        "reclaim",
    ),
    Case("a cordoned on-demand node is no notice", signal_node().cordoned().obj(), None),
    Case(
        "kubelet graceful shutdown",
        signal_node()
        .spot()
        .ready("False", "KubeletNotReady", "node is shutting down", since=ISO)
        .obj(),
        "kubelet",
        "reclaim",
        since=datetime(2026, 11, 30, 12, 5, tzinfo=UTC),
    ),
    Case(
        "NotReady for another reason is no notice",
        signal_node().ready("False", "KubeletNotReady", "PLEG is not healthy").obj(),
        None,
    ),
    Case(
        "GracefulNodeShutdownInProgress",
        signal_node().condition("GracefulNodeShutdownInProgress").obj(),
        "node-condition",
        "maintenance",
    ),
    Case(
        "DrainInProgress",
        signal_node().spot().condition("DrainInProgress").obj(),
        "node-condition",
        "reclaim",
    ),
    Case(
        "MaintenancePlanned is advisory",
        signal_node().condition("MaintenancePlanned").obj(),
        "node-condition",
        "maintenance",
        advisory=True,
    ),
    Case(
        "a False lifecycle condition is no notice",
        signal_node().condition("DrainInProgress", "False").obj(),
        None,
    ),
    Case(
        "Corral taint, ISO 8601 basic deadline",
        signal_node().spot().taint(n.CORRAL_TERMINATING, "20261130T120500Z").obj(),
        "corral",
        "reclaim",
        deadline=datetime(2026, 11, 30, 12, 5, tzinfo=UTC),
    ),
    Case(
        "Corral taint, Unix seconds",
        signal_node().taint(n.CORRAL_TERMINATING, str(int(at(300).timestamp()))).obj(),
        "corral",
        "maintenance",
        deadline=at(300),
    ),
    Case(
        "Corral annotation (RFC 3339) wins over the taint value",
        signal_node()
        .taint(n.CORRAL_TERMINATING, "20261130T130000Z")
        .annotate(n.CORRAL_TERMINATING_DEADLINE, ISO)
        .obj(),
        "corral",
        "maintenance",
        deadline=datetime(2026, 11, 30, 12, 5, tzinfo=UTC),
    ),
    Case(
        "Corral taint with a malformed deadline still counts",
        signal_node().taint(n.CORRAL_TERMINATING, "soon").obj(),
        "corral",
        "maintenance",
        problems=1,
    ),
    Case(
        "Corral taint without a deadline",
        signal_node().taint(n.CORRAL_TERMINATING).obj(),
        "corral",
        "maintenance",
        problems=1,
    ),
    Case(
        "Corral annotation without a zone",
        signal_node()
        .taint(n.CORRAL_TERMINATING)
        .annotate(n.CORRAL_TERMINATING_DEADLINE, "2026-11-30T12:05:00")
        .obj(),
        "corral",
        "maintenance",
        problems=1,
    ),
    Case(
        "NoExecute taint's timeAdded is when the notice started",
        signal_node().taint(n.NTH_SPOT_ITN, effect="NoExecute", added=ISO).obj(),
        "aws-nth",
        "reclaim",
        since=datetime(2026, 11, 30, 12, 5, tzinfo=UTC),
    ),
    Case("an unrelated taint", signal_node().taint("dedicated", "gpu").obj(), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_signals(case: Case) -> None:
    signals = n.node_notices(case.node)
    assert len(signals.problems) == case.problems, signals.problems
    if case.source is None:
        assert signals.notices == ()
        return
    assert len(signals.notices) == 1, signals.notices
    (notice,) = signals.notices
    assert (notice.node, notice.source, notice.kind, notice.advisory) == (
        "n1",
        case.source,
        case.kind,
        case.advisory,
    )
    assert notice.deadline == case.deadline
    assert notice.since == case.since
    assert notice.window_seconds == n.DEFAULT_WINDOW_SECONDS[notice.source]
    for problem in signals.problems:
        assert problem.node == "n1" and problem.signal in problem.message


def test_every_signal_key_is_named_in_the_table() -> None:
    keys = " ".join(s.key for s in n.SIGNALS)
    for key in (
        n.NTH_SPOT_ITN,
        n.NTH_SCHEDULED_MAINTENANCE,
        n.NTH_ASG_LIFECYCLE,
        n.NTH_REBALANCE,
        n.NTH_ACTION_LABEL,
        n.NTH_ACTION_TIME_LABEL,
        n.KARPENTER_DISRUPTED,
        n.KARPENTER_DISRUPTION_V1BETA1,
        n.GKE_IMPENDING_TERMINATION,
        n.AKS_REMEDIATOR,
        n.AKS_SPOT_LABEL,
        n.KUBELET_SHUTDOWN_MESSAGE,
        n.DISRUPTION_TARGET,
        n.CORRAL_TERMINATING,
        n.CORRAL_TERMINATING_DEADLINE,
        *n.NODE_CONDITION_SIGNALS,
    ):
        assert key in keys, key


@pytest.mark.parametrize("reason", [*n.DISRUPTION_TARGET_REASONS, "SomeFutureReason"])
def test_pod_disruption_target_any_reason(reason: str) -> None:
    pod = worker_pod(
        "w0",
        namespace="ml",
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": reason}],
    )
    (notice,) = n.pod_notices(pod).notices
    assert (notice.node, notice.pod, notice.source) == ("n1", "ml/w0", "kubelet")
    assert reason in notice.signal
    assert notice.kind == ("reclaim" if reason == "TerminationByKubelet" else "maintenance")


def test_pod_without_disruption_target_or_node() -> None:
    assert n.pod_notices(worker_pod("w0")).notices == ()
    unbound = worker_pod(
        "w0", node=None, conditions=[{"type": "DisruptionTarget", "status": "True"}]
    )
    assert n.pod_notices(unbound).notices == ()
    false = worker_pod("w0", conditions=[{"type": "DisruptionTarget", "status": "False"}])
    assert n.pod_notices(false).notices == ()


def test_deadline_after_first_seen_uses_the_source_window() -> None:
    (gke,) = n.node_notices(signal_node().taint(n.GKE_IMPENDING_TERMINATION).obj()).notices
    assert gke.deadline_after(T0) == at(30)
    (aws,) = n.node_notices(signal_node().taint(n.NTH_SPOT_ITN).obj()).notices
    assert aws.deadline_after(T0) == at(120)
    (rebalance,) = n.node_notices(signal_node().taint(n.NTH_REBALANCE).obj()).notices
    assert rebalance.deadline_after(T0) is None
    (corral,) = n.node_notices(
        signal_node().taint(n.CORRAL_TERMINATING, "20261130T120500Z").obj()
    ).notices
    assert corral.deadline_after(at(1000)) == at(300)


def test_most_urgent_prefers_binding_notices_with_the_earliest_deadline() -> None:
    node = (
        signal_node()
        .spot()
        .taint(n.NTH_REBALANCE)
        .taint(n.NTH_SPOT_ITN)
        .taint(n.CORRAL_TERMINATING, "20261130T120100Z")
        .obj()
    )
    signals = n.node_notices(node)
    assert len(signals.notices) == 3
    urgent = n.most_urgent(signals.notices, T0)
    assert urgent is not None and urgent.source == "corral"
    advisory_only = n.node_notices(signal_node().taint(n.NTH_REBALANCE).obj()).notices
    assert n.most_urgent(advisory_only, T0) == advisory_only[0]
    assert n.most_urgent((), T0) is None


@pytest.mark.parametrize(
    ("node", "failure"),
    [
        (None, "deleted without notice"),
        (signal_node().obj(), None),
        (signal_node().ready("False", "KubeletNotReady", "PLEG is not healthy").obj(), "NotReady"),
        (signal_node().ready("Unknown", "NodeStatusUnknown").obj(), "Unknown"),
        (signal_node().ready("False", "KubeletNotReady", "node is shutting down").obj(), None),
    ],
)
def test_node_failure(node: dict[str, Any] | None, failure: str | None) -> None:
    found = n.node_failure(node)
    if failure is None:
        assert found is None
    else:
        assert found is not None and failure in found


def test_read_notices_collects_nodes_and_pods() -> None:
    signals = n.read_notices(
        [signal_node("a").taint(n.NTH_SPOT_ITN).obj(), signal_node("b").obj()],
        [worker_pod("w", node="b", conditions=[{"type": "DisruptionTarget", "status": "True"}])],
    )
    assert sorted(x.node for x in signals.notices) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T12:05:00Z", datetime(2026, 11, 30, 12, 5, tzinfo=UTC)),
        ("2026-11-30T13:05:00+01:00", datetime(2026, 11, 30, 12, 5, tzinfo=UTC)),
        ("20261130T120500Z", datetime(2026, 11, 30, 12, 5, tzinfo=UTC)),
        (str(int(T0.timestamp())), T0),
        ("2026-11-30T12:05:00", None),
        ("", None),
        ("99999999999999999999999", None),
        ("tomorrow", None),
    ],
)
def test_parse_time(text: str, expected: datetime | None) -> None:
    assert n.parse_time(text) == expected


garbage = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    taints=garbage,
    labels=garbage,
    conditions=garbage,
    annotations=garbage,
    unschedulable=garbage,
)
def test_odd_objects_never_raise(
    taints: Any, labels: Any, conditions: Any, annotations: Any, unschedulable: Any
) -> None:
    node = {
        "metadata": {"name": "n", "labels": labels, "annotations": annotations},
        "spec": {"taints": taints, "unschedulable": unschedulable},
        "status": {"conditions": conditions},
    }
    n.node_notices(node)
    n.node_failure(node)
    n.pod_notices({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}, "status": conditions})


@given(value=st.text(max_size=40))
def test_any_corral_taint_value_is_a_notice_or_a_problem(value: str) -> None:
    signals = n.node_notices(signal_node().taint(n.CORRAL_TERMINATING, value).obj())
    assert len(signals.notices) == 1
    assert (signals.notices[0].deadline is None) == (len(signals.problems) == 1)
