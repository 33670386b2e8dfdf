"""Termination notices: what clouds and Kubernetes really set on nodes and pods, read as `Notice`s.

Pure: Node and Pod dicts (as the API returns them) in, notices and problems out; time is passed in
where it matters. Every source is listed in `SIGNALS` with its exact key, and docs/disruption.md
has the same table. What counts as a notice, and what does not:

- a signal set *before* the machine goes (a taint, a label, a condition): a `Notice`, with the
  deadline when the signal carries one, else the window the source usually gives (`window_seconds`,
  counted from when the signal was first seen);
- a node deleted, or gone NotReady without the kubelet's shutdown message: a failure
  (`node_failure`), never a notice: there was no time to checkpoint;
- a malformed value (a deadline that does not parse): a `SignalProblem` naming the key and the
  fix, reported once per node as a Warning event; the notice itself still counts (a node announced
  as terminating is going, whether or not its deadline can be read).

Nothing here raises on odd input: a Node with taints that are not a list, or a condition that is
not a mapping, yields fewer notices, not an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from corral.fleet.capacity import capacity_type_from_labels

Source = Literal["aws-nth", "karpenter", "gke", "aks", "kubelet", "node-condition", "corral"]
NoticeKind = Literal["reclaim", "maintenance", "rebalance"]
"""reclaim: spot capacity taken back; maintenance: the platform takes the node for its own
reasons (host maintenance, scale-in, consolidation, drain); rebalance: an advisory hint that
capacity is at elevated risk."""
RestartClass = Literal["SpotReclaimed", "Maintenance", "NodeFailure", "AppError"]

# --- the keys, exactly as each source writes them -----------------------------------------------

NTH_PREFIX = "aws-node-termination-handler/"
NTH_SPOT_ITN = NTH_PREFIX + "spot-itn"
NTH_SCHEDULED_MAINTENANCE = NTH_PREFIX + "scheduled-maintenance"
NTH_ASG_LIFECYCLE = NTH_PREFIX + "asg-lifecycle-termination"
NTH_REBALANCE = NTH_PREFIX + "rebalance-recommendation"
NTH_ACTION_LABEL = NTH_PREFIX + "action"
NTH_ACTION_TIME_LABEL = NTH_PREFIX + "action-time"
"""Unix seconds when NTH set the action label (it cordons the node for a maintenance reboot)."""

KARPENTER_DISRUPTED = "karpenter.sh/disrupted"
"""Karpenter v1: NoSchedule taint set on a node it is about to drain and delete."""
KARPENTER_DISRUPTION_V1BETA1 = "karpenter.sh/disruption"
"""Karpenter v0.32-v0.37 (v1beta1 APIs): `karpenter.sh/disruption=disrupting:NoSchedule`."""

GKE_IMPENDING_TERMINATION = "cloud.google.com/impending-node-termination"

AKS_REMEDIATOR = "remediator.kubernetes.azure.com/unschedulable"
"""Set by AKS node auto-drain on scheduled events (Preempt on spot, Reboot, Redeploy)."""
AKS_SPOT_LABEL = "kubernetes.azure.com/scalesetpriority"

KUBELET_SHUTDOWN_MESSAGE = "node is shutting down"
"""What the kubelet's shutdown manager reports in the Ready condition's message."""
DISRUPTION_TARGET = "DisruptionTarget"
DISRUPTION_TARGET_REASONS = (
    "PreemptionByScheduler",
    "DeletionByTaintManager",
    "EvictionByEvictionAPI",
    "DeletionByPodGC",
    "TerminationByKubelet",
)
"""The reasons Kubernetes sets today; any other reason still counts (the list grows)."""

NODE_CONDITION_SIGNALS: dict[str, bool] = {
    "GracefulNodeShutdownInProgress": False,
    "DrainInProgress": False,
    "MaintenancePlanned": True,
}
"""Node conditions proposed upstream for the node lifecycle (type -> advisory), recognised by
their type name so Corral is ready when clusters set them."""

CORRAL_TERMINATING = "corral.dev/terminating"
"""Corral's own taint for platforms with none of the above. A taint value must be a valid label
value (no `:`), so the deadline is written in ISO 8601 basic form (`20261130T120000Z`) or as Unix
seconds; the annotation below carries a full RFC 3339 deadline and wins when both are set."""
CORRAL_TERMINATING_DEADLINE = "corral.dev/terminating-deadline"

DEFAULT_WINDOW_SECONDS: dict[Source, float] = {
    "aws-nth": 120.0,  # EC2 spot interruption notice: two minutes
    "karpenter": 120.0,  # Karpenter acts on the same two-minute EC2 notice
    "gke": 30.0,  # GCE preemption notice: 30 s
    "aks": 30.0,  # Azure Preempt scheduled event: at least 30 s
    "kubelet": 30.0,  # a typical shutdownGracePeriod
    "node-condition": 120.0,
    "corral": 120.0,
}
"""How long each source usually gives when its signal carries no deadline."""


@dataclass(frozen=True)
class SignalInfo:
    source: Source
    key: str
    where: str
    advisory: bool
    meaning: str


SIGNALS: tuple[SignalInfo, ...] = (
    SignalInfo("aws-nth", NTH_SPOT_ITN, "node taint", False, "EC2 spot interruption notice"),
    SignalInfo("aws-nth", NTH_SCHEDULED_MAINTENANCE, "node taint", False, "EC2 scheduled event"),
    SignalInfo("aws-nth", NTH_ASG_LIFECYCLE, "node taint", False, "ASG scale-in/termination hook"),
    SignalInfo("aws-nth", NTH_REBALANCE, "node taint", True, "EC2 rebalance recommendation"),
    SignalInfo(
        "aws-nth",
        f"{NTH_ACTION_LABEL} + {NTH_ACTION_TIME_LABEL}",
        "node labels",
        False,
        "NTH cordoned the node for an action (a maintenance reboot); action-time in Unix seconds",
    ),
    SignalInfo("karpenter", KARPENTER_DISRUPTED, "node taint", False, "Karpenter v1 drains"),
    SignalInfo(
        "karpenter", KARPENTER_DISRUPTION_V1BETA1, "node taint", False, "Karpenter v1beta1 drains"
    ),
    SignalInfo("gke", GKE_IMPENDING_TERMINATION, "node taint", False, "GCE preemption/maintenance"),
    SignalInfo("aks", AKS_REMEDIATOR, "node taint", False, "AKS node auto-drain"),
    SignalInfo(
        "aks",
        f"{AKS_SPOT_LABEL}=spot + spec.unschedulable",
        "node label + cordon",
        False,
        "an AKS spot node being drained",
    ),
    SignalInfo(
        "kubelet",
        f"Ready=False, message '{KUBELET_SHUTDOWN_MESSAGE}'",
        "node condition",
        False,
        "graceful node shutdown in progress",
    ),
    SignalInfo(
        "kubelet",
        f"{DISRUPTION_TARGET}=True (any reason)",
        "pod condition",
        False,
        "the pod is about to be terminated (preemption, eviction, taint manager, shutdown)",
    ),
    *(
        SignalInfo("node-condition", type_, "node condition", advisory, "proposed upstream (=True)")
        for type_, advisory in NODE_CONDITION_SIGNALS.items()
    ),
    SignalInfo(
        "corral",
        CORRAL_TERMINATING,
        "node taint",
        False,
        "Corral's generic signal; value 20261130T120000Z or Unix seconds",
    ),
    SignalInfo(
        "corral",
        CORRAL_TERMINATING_DEADLINE,
        "node annotation",
        False,
        "RFC 3339 deadline for the corral.dev/terminating taint",
    ),
)


@dataclass(frozen=True)
class Notice:
    """One signal that a node (or one pod on it) is about to go."""

    node: str
    kind: NoticeKind
    deadline: datetime | None
    """When the node goes, when the signal says so."""
    source: Source
    advisory: bool
    """A hint (rebalance, planned maintenance): checkpoint and avoid the node, do not move."""
    signal: str
    """The exact key that was read, e.g. `taint aws-node-termination-handler/spot-itn`."""
    window_seconds: float
    """How long the source usually gives: without a deadline, the node goes about this long after
    the signal was first seen (`since` when the signal records it)."""
    since: datetime | None = None
    """When the signal was set, when it records that (NTH action-time, a condition transition,
    a NoExecute taint's timeAdded)."""
    pod: str | None = None
    """`namespace/name` when the notice is about one pod (DisruptionTarget), not the whole node."""

    def deadline_after(self, first_seen: datetime) -> datetime | None:
        """The deadline, else `since` (or `first_seen`) + the source's usual window; None for an
        advisory notice without a deadline (there is nothing to race)."""
        if self.deadline is not None:
            return self.deadline
        if self.advisory:
            return None
        return (self.since or first_seen) + timedelta(seconds=self.window_seconds)

    @property
    def restart_class(self) -> RestartClass:
        return "SpotReclaimed" if self.kind == "reclaim" else "Maintenance"


NodeNotice = Callable[[str], "Notice | None"]
"""The binding termination notice on a node (a cluster's `node_notice`), or None."""


def no_notice(_: str) -> Notice | None:
    return None


@dataclass(frozen=True)
class SignalProblem:
    """A signal whose value cannot be read; reported once per node as a Warning event."""

    node: str
    signal: str
    message: str


@dataclass(frozen=True)
class Signals:
    notices: tuple[Notice, ...] = ()
    problems: tuple[SignalProblem, ...] = ()

    def __add__(self, other: Signals) -> Signals:
        return Signals(self.notices + other.notices, self.problems + other.problems)


# --- parsing helpers --------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def parse_time(text: str) -> datetime | None:
    """RFC 3339 (`2026-11-30T12:00:00Z`), ISO 8601 basic (`20261130T120000Z`) or Unix seconds;
    None when it is none of those or has no zone."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _kind_for(labels: Mapping[str, str]) -> NoticeKind:
    """Sources that do not say why a node goes (GKE, AKS, kubelet, Karpenter, Corral): on spot
    capacity it is counted as a reclaim, elsewhere as maintenance."""
    return "reclaim" if capacity_type_from_labels(labels) == "spot" else "maintenance"


def _taint_since(taint: Mapping[str, Any]) -> datetime | None:
    added = taint.get("timeAdded")
    return parse_time(added) if isinstance(added, str) else None


def _condition_since(condition: Mapping[str, Any]) -> datetime | None:
    moved = condition.get("lastTransitionTime")
    return parse_time(moved) if isinstance(moved, str) else None


# --- nodes ------------------------------------------------------------------------------------


def node_notices(node: Mapping[str, Any]) -> Signals:
    """Every notice the Node carries, and every signal on it whose value cannot be read."""
    metadata = _mapping(node.get("metadata"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return Signals()
    labels = {str(k): str(v) for k, v in _mapping(metadata.get("labels")).items()}
    annotations = {str(k): str(v) for k, v in _mapping(metadata.get("annotations")).items()}
    spec = _mapping(node.get("spec"))
    status = _mapping(node.get("status"))
    kind = _kind_for(labels)
    notices: list[Notice] = []
    problems: list[SignalProblem] = []

    def notice(
        source: Source,
        signal: str,
        *,
        kind_: NoticeKind = kind,
        advisory: bool = False,
        deadline: datetime | None = None,
        since: datetime | None = None,
    ) -> None:
        notices.append(
            Notice(
                node=name,
                kind=kind_,
                deadline=deadline,
                source=source,
                advisory=advisory,
                signal=signal,
                window_seconds=DEFAULT_WINDOW_SECONDS[source],
                since=since,
            )
        )

    for taint in _items(spec.get("taints")):
        key = taint.get("key")
        since = _taint_since(taint)
        signal = f"taint {key}"
        if key == NTH_SPOT_ITN:
            notice("aws-nth", signal, kind_="reclaim", since=since)
        elif key in (NTH_SCHEDULED_MAINTENANCE, NTH_ASG_LIFECYCLE):
            notice("aws-nth", signal, kind_="maintenance", since=since)
        elif key == NTH_REBALANCE:
            notice("aws-nth", signal, kind_="rebalance", advisory=True, since=since)
        elif key in (KARPENTER_DISRUPTED, KARPENTER_DISRUPTION_V1BETA1):
            notice("karpenter", signal, since=since)
        elif key == GKE_IMPENDING_TERMINATION:
            notice("gke", signal, since=since)
        elif key == AKS_REMEDIATOR:
            notice("aks", signal, since=since)
        elif key == CORRAL_TERMINATING:
            deadline, problem = _corral_deadline(name, taint, annotations)
            if problem:
                problems.append(problem)
            notice("corral", signal, deadline=deadline, since=since)

    if NTH_ACTION_LABEL in labels:
        raw = labels.get(NTH_ACTION_TIME_LABEL, "")
        action_time = parse_time(raw) if raw.isdigit() else None
        if raw and action_time is None:
            problems.append(
                SignalProblem(
                    name,
                    f"label {NTH_ACTION_TIME_LABEL}",
                    f"label {NTH_ACTION_TIME_LABEL}={raw!r} is not Unix seconds; the notice "
                    f"counts from when Corral first saw label {NTH_ACTION_LABEL}",
                )
            )
        notice(
            "aws-nth",
            f"label {NTH_ACTION_LABEL}={labels[NTH_ACTION_LABEL]}",
            kind_="maintenance",
            since=action_time,
        )

    if labels.get(AKS_SPOT_LABEL) == "spot" and spec.get("unschedulable") is True:
        notice("aks", f"cordoned spot node ({AKS_SPOT_LABEL}=spot)", kind_="reclaim")

    for condition in _items(status.get("conditions")):
        type_ = condition.get("type")
        state = condition.get("status")
        if type_ == "Ready" and state != "True":
            message = str(condition.get("message") or "")
            if KUBELET_SHUTDOWN_MESSAGE in message:
                notice(
                    "kubelet",
                    f"condition Ready={state} ({KUBELET_SHUTDOWN_MESSAGE})",
                    since=_condition_since(condition),
                )
        elif isinstance(type_, str) and type_ in NODE_CONDITION_SIGNALS and state == "True":
            advisory = NODE_CONDITION_SIGNALS[type_]
            notice(
                "node-condition",
                f"condition {type_}=True",
                advisory=advisory,
                since=_condition_since(condition),
            )
    return Signals(tuple(notices), tuple(problems))


def _corral_deadline(
    node: str, taint: Mapping[str, Any], annotations: Mapping[str, str]
) -> tuple[datetime | None, SignalProblem | None]:
    if CORRAL_TERMINATING_DEADLINE in annotations:
        raw = annotations[CORRAL_TERMINATING_DEADLINE]
        parsed = parse_time(raw)
        if parsed is not None:
            return parsed, None
        return None, SignalProblem(
            node,
            f"annotation {CORRAL_TERMINATING_DEADLINE}",
            f"annotation {CORRAL_TERMINATING_DEADLINE}={raw!r} is not an RFC 3339 time with a "
            "zone (e.g. 2026-11-30T12:00:00Z); the node is treated as terminating within "
            f"{DEFAULT_WINDOW_SECONDS['corral']:g}s",
        )
    raw = str(taint.get("value") or "")
    if not raw:
        return None, SignalProblem(
            node,
            f"taint {CORRAL_TERMINATING}",
            f"taint {CORRAL_TERMINATING} has no deadline; set its value (20261130T120000Z or Unix "
            f"seconds) or the annotation {CORRAL_TERMINATING_DEADLINE} (RFC 3339); the node is "
            f"treated as terminating within {DEFAULT_WINDOW_SECONDS['corral']:g}s",
        )
    parsed = parse_time(raw)
    if parsed is not None:
        return parsed, None
    return None, SignalProblem(
        node,
        f"taint {CORRAL_TERMINATING}",
        f"taint {CORRAL_TERMINATING}={raw!r} is not a deadline (20261130T120000Z or Unix "
        f"seconds); the node is treated as terminating within "
        f"{DEFAULT_WINDOW_SECONDS['corral']:g}s",
    )


# --- pods -------------------------------------------------------------------------------------


def pod_notices(pod: Mapping[str, Any]) -> Signals:
    """A pod with the DisruptionTarget condition (any reason) is about to be terminated; the
    notice names the pod and its node."""
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    node = spec.get("nodeName")
    name = metadata.get("name")
    if not isinstance(node, str) or not node or not isinstance(name, str):
        return Signals()
    namespace = str(metadata.get("namespace") or "default")
    for condition in _items(_mapping(pod.get("status")).get("conditions")):
        if condition.get("type") == DISRUPTION_TARGET and condition.get("status") == "True":
            reason = str(condition.get("reason") or "unknown reason")
            kind: NoticeKind = "reclaim" if reason == "TerminationByKubelet" else "maintenance"
            return Signals(
                (
                    Notice(
                        node=node,
                        kind=kind,
                        deadline=None,
                        source="kubelet",
                        advisory=False,
                        signal=f"pod condition {DISRUPTION_TARGET}=True ({reason})",
                        window_seconds=DEFAULT_WINDOW_SECONDS["kubelet"],
                        since=_condition_since(condition),
                        pod=f"{namespace}/{name}",
                    ),
                )
            )
    return Signals()


def read_notices(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]] = ()
) -> Signals:
    """Every notice and problem of these nodes and pods."""
    total = Signals()
    for node in nodes:
        total = total + node_notices(node)
    for pod in pods:
        total = total + pod_notices(pod)
    return total


def most_urgent(notices: Iterable[Notice], first_seen: datetime) -> Notice | None:
    """The binding notice: the earliest deadline among the non-advisory ones (an advisory one
    only when there is nothing else)."""
    ranked = sorted(
        notices,
        key=lambda n: (
            n.advisory,
            n.deadline_after(first_seen) or datetime.max.replace(tzinfo=UTC),
            n.signal,
        ),
    )
    return ranked[0] if ranked else None


def binding_notice(node: Mapping[str, Any]) -> Notice | None:
    """The notice a gang on this node must act on (checkpoint, then move): the most urgent
    non-advisory one, or None."""
    found = [n for n in node_notices(node).notices if not n.advisory]
    return most_urgent(found, datetime.fromtimestamp(0, UTC)) if found else None


def node_usability(node: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """What placement must know of a node's notices (`corral.fleet.snapshot.NodeNotices`): the
    signal of its binding notice (no new worker goes there, even when the signal is only a
    condition kube-scheduler ignores, or a taint the pool tolerates) and of its advisory notice
    (avoided when there is a choice)."""
    found = node_notices(node).notices
    binding = most_urgent([n for n in found if not n.advisory], datetime.fromtimestamp(0, UTC))
    advisory = next((n for n in found if n.advisory), None)
    return (
        binding.signal if binding is not None else None,
        advisory.signal if advisory is not None else None,
    )


def node_failure(node: Mapping[str, Any] | None) -> str | None:
    """Why a node is lost without notice (deleted, or NotReady without the kubelet's shutdown
    message): a failure, classified NodeFailure; None for a Ready node or one under notice."""
    if node is None:
        return "the node was deleted without notice"
    for condition in _items(_mapping(node.get("status")).get("conditions")):
        if condition.get("type") != "Ready":
            continue
        if condition.get("status") == "True":
            return None
        message = str(condition.get("message") or "")
        if KUBELET_SHUTDOWN_MESSAGE in message:
            return None
        state = "NotReady" if condition.get("status") == "False" else "unreachable (Unknown)"
        reason = condition.get("reason") or "no reason"
        detail = f": {message}" if message else ""
        return f"the node is {state} without notice ({reason}){detail}"
    return None
