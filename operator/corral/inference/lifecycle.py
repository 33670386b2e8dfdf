"""The InferenceService lifecycle: replica pods toward the wanted count, and the status that says so.

Corral owns the replica pods directly (no Deployment in between): each is created already
placed — node affinity to the node the spread placement chose, the `corral.dev/node` annotation
so the fleet snapshot counts it at once, and the placement gate — entered in the ledger before
it exists, then ungated; kube-scheduler binds it. Pods are named `<service>-<revision>-<slot>`:
slots 0..wanted-1 are kept, higher ones scaled away, and a template change rolls out like a
Deployment with maxSurge 1 and maxUnavailable 0 (a replica of the new revision is made, and an
old one goes only once enough replicas are ready). A restarted operator recomputes all of this
from the pods it owns.

Every replica made (scale-up and rollout surge) is admitted first, like a gang
(`corral.scheduling.admission`): only pools whose namespaceSelector matches the namespace, and
only within the namespace's ResourceQuotas, counting the replicas this reconcile already placed
and every planned pod not created yet. A refused replica is simply not made; running replicas
are never deleted for it.

A replica whose node has a binding termination notice (an AWS spot interruption, Karpenter's
disruption taint, GKE, AKS, the kubelet's shutdown; the same reading as for gangs,
`corral.disruption.notices`), or whose pod is marked DisruptionTarget, is replaced surge-first:
a replacement of the same slot (`<service>-<revision>-<slot>-x<n>`) is placed elsewhere — noticed
nodes take none, nodes with an advisory notice only when nothing else has room — and once it is
ready the noticed replica is deleted with its own grace period. Until then both serve; without
room (or admission) for the replacement the noticed replica serves until its node goes, and
condition `Disrupted` says which, where and why. Replacements never take the service above
`max(desired, maxReplicas) + 1` live replicas (the rollout's surge of one, counted on the most the
owner has allowed): a service below its maximum replaces every noticed replica at once (the
notice is short), one at its maximum replaces them one after another. A notice withdrawn before
the swap leaves one replica per slot: the ready one, else the older; the other is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import ParamSpec

from corral.api.conditions import set_condition
from corral.api.inferenceservice import (
    InferenceServiceSpec,
    InferenceServiceStatus,
    ObjectiveStatus,
    OwnTimeStatus,
    ServiceModelStatus,
)
from corral.api.meta import ConditionStatus
from corral.api.names import replica_pod_name, replica_selector
from corral.api.template import pod_spec
from corral.autoscaling.autoscaler import Decision as ScalingDecision
from corral.autoscaling.autoscaler import Verdict
from corral.autoscaling.histogram import Histogram
from corral.disruption.notices import NodeNotice, Notice, no_notice
from corral.fleet.snapshot import FleetSnapshot
from corral.inference.placement import place_replica, replica_request
from corral.inference.replicas import ReplicaPod, revision_of
from corral.placement import NoFit, PlacementRequest, candidate_pools
from corral.scheduling.actions import (
    CreateWorker,
    Decision,
    DeletePod,
    Emit,
    EnsureService,
    RequeueAfter,
    Ungate,
)
from corral.scheduling.admission import Admission
from corral.scheduling.ledger import Ledger
from corral.scheduling.queue import Inadmissible
from corral.scheduling.tenancy import PodFacts, Tenancy

BIND_TIMEOUT_SECONDS = 120.0
"""An ungated replica not bound by then (its node filled up meanwhile) is made again elsewhere."""
RETRY_PLACEMENT_SECONDS = 15.0
P = ParamSpec("P")
DISRUPTED = "Disrupted"
"""The condition naming the replicas on noticed nodes and how far their replacement is."""


@dataclass(frozen=True)
class Interruption:
    """A replacement made for a replica on a noticed node (for the interruption counter)."""

    replica: str
    node: str
    notice: Notice
    replacement: str
    onto: str


@dataclass
class Reconciled:
    decision: Decision
    interruptions: list[Interruption] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceView:
    namespace: str
    name: str
    uid: str
    generation: int
    spec: InferenceServiceSpec
    status: InferenceServiceStatus

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Sizing:
    """How many replicas, and who said so."""

    replicas: int
    reason: str
    """Why this count (the last scaling reason when it changes)."""
    active: Verdict
    limited: Verdict
    slo_met: Verdict
    scaling: ScalingDecision | None = None
    """The autoscaler's decision, for the figures (None: fixed size, or no tick yet)."""


@dataclass(frozen=True)
class PodAge:
    """When each pod was created, in seconds before now (for the bind timeout)."""

    seconds: dict[str, float] = field(default_factory=dict)


def fixed(replicas: int) -> Sizing:
    message = f"spec.replicas is {replicas}: the autoscaler stands aside; remove it to autoscale"
    return Sizing(
        replicas,
        f"spec.replicas set to {replicas}",
        Verdict(False, "FixedReplicas", message),
        Verdict(False, "FixedReplicas", "the size is fixed by spec.replicas"),
        Verdict(None, "FixedReplicas", "no objectives are evaluated while the size is fixed"),
    )


def decide(
    view: ServiceView,
    pods: list[ReplicaPod],
    sizing: Sizing,
    snapshot: FleetSnapshot,
    ledger: Ledger,
    owner: str,
    now: datetime,
    ages: PodAge | None = None,
    refresh_figures: bool = False,
    tenancy: Tenancy | None = None,
    refused: Inadmissible | None = None,
    node_notice: NodeNotice = no_notice,
) -> Reconciled:
    """The status and actions for one look at the service and its pods. `ledger` holds no plan
    of this service's yet (the caller forgot it): what it still assumes is other workloads', and
    what quotas have not counted yet of pods made (its own replicas too, see the ledger).
    `refused`: the API server refused this service's last replica (PodRejected, or a full quota:
    QuotaExceeded); until the caller lets it retry, no replica is made and the status says why,
    the same on every look (a status that changed back and forth would wake it for ever).
    `node_notice`: the binding termination notice of a node (replicas there are replaced)."""
    spec = view.spec
    revision = revision_of(spec)
    wanted = sizing.replicas
    ages = ages or PodAge()
    decision = Decision(view.status)
    decision.add(EnsureService())
    interruptions: list[Interruption] = []

    ended = [p for p in pods if p.terminated and not p.deleting]
    stuck = [
        p
        for p in pods
        if p.live
        and not p.gated
        and p.node is None
        and ages.seconds.get(p.name, 0.0) > BIND_TIMEOUT_SECONDS
    ]
    for pod in [*ended, *stuck]:
        decision.add(DeletePod(pod.name, pod.uid))
    gone = {p.name for p in [*ended, *stuck]}
    live = [p for p in pods if p.live and p.name not in gone]
    current = [p for p in live if p.revision == revision]
    old = [p for p in live if p.revision != revision]

    # Scale down: the slots above the count go (a replica's grace period is the pod's own).
    surplus = [p for p in current if p.slot >= wanted]
    for pod in surplus:
        decision.add(DeletePod(pod.name, pod.uid))
    kept = [p for p in current if p.slot < wanted]

    # Termination notices: per slot, the noticed replicas serve until a replacement is ready.
    noticed = {p.name: n for p in kept if (n := notice_of(p, node_notice)) is not None}
    swaps = _swaps(kept, noticed, decision)
    kept = [p for p in kept if p.name not in swaps.leaving]

    # Replicas to make: every missing slot, at most one above the count while old ones remain.
    have = {p.slot for p in kept}
    missing = [slot for slot in range(wanted) if slot not in have]
    room = len(missing) if not old else max(0, wanted + 1 - len(kept) - len(old))
    peers = [p.where for p in [*kept, *old] if p.where is not None and p.name not in noticed]
    request = replica_request(view.key, spec)
    tenancy = tenancy or Tenancy()
    admission = Admission(snapshot, tenancy, ledger.assumed_requests(), unit="replica")
    facts = PodFacts(
        priority_class=spec.priority_class_name or tenancy.default_class,
        terminating="activeDeadlineSeconds" in pod_spec(spec.template),
    )
    present = {p.name for p in pods}

    def make(slot: int, replacement: int = 0) -> str | Inadmissible | None:
        """One replica placed, admitted and made: its node, why not, or None (its name is
        still taken by a pod going away)."""
        name = replica_pod_name(view.name, revision, slot, replacement)
        if name in present:
            return None
        admitted = _admit(admission, view.namespace, snapshot, request, facts)
        if isinstance(admitted, Inadmissible):
            return admitted
        placed = place_replica(snapshot, admitted, peers, wanted)
        if isinstance(placed, NoFit):
            return Inadmissible("Unschedulable", placed.reason)
        pool, node = placed
        requests = request.worker_requests(snapshot.pools[pool].resource_name)
        ledger.assume(owner, view.namespace, {name: node}, requests)
        admission.placed(view.namespace, requests)
        decision.add(CreateWorker(slot, 0, node, replacement), Ungate(name))
        peers.append(node)
        return node

    blocked: Inadmissible | None = refused if missing[:room] else None
    made = 0
    for slot in missing[:room] if refused is None else ():
        outcome = make(slot)
        if isinstance(outcome, Inadmissible):
            blocked = outcome
            break
        made += outcome is not None
    for pod in kept:
        if pod.gated and pod.planned_node is not None:
            decision.add(Ungate(pod.name))  # made before a restart, never ungated

    # Replacements, the most urgent notice first, within the surge bound.
    ceiling = max(wanted, _most(spec)) + 1
    budget = ceiling - len(kept) - len(old) - made
    waiting: dict[str, str] = {}
    """Noticed replica -> why its replacement is not made yet."""
    surge_blocked: Inadmissible | None = None
    for pod in sorted(swaps.unreplaced, key=lambda p: (_deadline(noticed[p.name]), p.slot)):
        why: Inadmissible | str | None = refused
        if why is None and surge_blocked is not None:
            why = surge_blocked
        if why is None and budget <= 0:
            why = f"at most {ceiling} replicas at once (max(desired, maxReplicas) + 1)"
        if why is None:
            replacement = 1 + max(p.replacement for p in pods if p.slot == pod.slot)
            outcome = make(pod.slot, replacement)
            if isinstance(outcome, str):
                name = replica_pod_name(view.name, revision, pod.slot, replacement)
                notice = noticed[pod.name]
                budget -= 1
                swaps.starting[pod.name] = f"replacement {name} starting on {outcome}"
                interruptions.append(Interruption(pod.name, pod.where or "", notice, name, outcome))
                decision.add(
                    Emit(
                        "Warning",
                        "TerminationNotice",
                        f"replica {pod.name} on {pod.where} goes{_by(notice)} ({notice.signal}, "
                        f"{notice.source}): replacement {name} placed on {outcome}; {pod.name} "
                        "is deleted once it is ready",
                    )
                )
                continue
            why = outcome if outcome is not None else "its replacement's name is still taken"
        if isinstance(why, Inadmissible):
            surge_blocked = why
            waiting[pod.name] = f"no replacement ({why.reason}: {why.message})"
        else:
            waiting[pod.name] = f"replacement waits: {why}"

    # Rollout: an old replica goes once the count is ready without it (noticed ones first).
    ready_current = len({p.slot for p in kept if p.ready})
    spare = ready_current + sum(1 for p in old if p.ready) - wanted
    ranked = sorted(old, key=lambda p: (p.ready, notice_of(p, node_notice) is None, p.slot))
    for pod in ranked:
        if not pod.ready or spare > 0 or ready_current >= wanted:
            decision.add(DeletePod(pod.name, pod.uid))
            spare -= 1 if pod.ready else 0

    if (blocked is not None or surge_blocked is not None) and refused is None:
        decision.add(RequeueAfter(RETRY_PLACEMENT_SECONDS))
    disrupted = _disrupted(kept, noticed, swaps.starting, waiting, surge_blocked)
    decision.status = _status(
        view, live, kept, old, sizing, blocked, now, refresh_figures, len(surplus), disrupted
    )
    changed_size = view.status.desired_replicas != wanted
    if changed_size and view.status.observed_generation is not None:
        decision.add(
            Emit("Normal", "Scaled", f"{view.status.desired_replicas} -> {wanted}: {sizing.reason}")
        )
    if blocked is not None and not _blocked_before(view.status, blocked):
        decision.add(Emit("Warning", blocked.reason, blocked.message))
    if disrupted is not None and disrupted[0] == "True" and surge_blocked is not None:
        before = next((c for c in view.status.conditions if c.type == DISRUPTED), None)
        if before is None or before.status != "True" or before.reason != surge_blocked.reason:
            decision.add(Emit("Warning", "ReplacementBlocked", disrupted[2]))
    return Reconciled(decision, interruptions)


def _decision_of(decide: Callable[P, Reconciled]) -> Callable[P, Decision]:
    def decision(*args: P.args, **kwargs: P.kwargs) -> Decision:
        return decide(*args, **kwargs).decision

    return decision


reconcile = _decision_of(decide)
"""`decide`'s decision alone (for a runtime that counts no interruptions: the simulator)."""


def notice_of(pod: ReplicaPod, node_notice: NodeNotice) -> Notice | None:
    """The binding notice a replica acts on: its pod's own (DisruptionTarget), else its node's."""
    if pod.disruption is not None:
        return pod.disruption
    return node_notice(pod.where) if pod.where is not None else None


@dataclass
class _Swaps:
    leaving: set[str] = field(default_factory=set)
    """Replicas deleted this look (noticed ones whose replacement is ready, spare ones)."""
    unreplaced: list[ReplicaPod] = field(default_factory=list)
    """Noticed replicas with no replacement yet."""
    starting: dict[str, str] = field(default_factory=dict)
    """Noticed replica -> its replacement that is not ready yet."""


def _swaps(kept: list[ReplicaPod], noticed: dict[str, Notice], decision: Decision) -> _Swaps:
    """Per slot: once a replica off noticed nodes is ready, the noticed ones go; a slot with two
    replicas and no notice (it was withdrawn) keeps one, the ready one, else the older."""
    swaps = _Swaps()
    slots: dict[int, list[ReplicaPod]] = {}
    for pod in kept:
        slots.setdefault(pod.slot, []).append(pod)
    for group in slots.values():
        doomed = [p for p in group if p.name in noticed]
        healthy = sorted(
            (p for p in group if p.name not in noticed),
            key=lambda p: (not p.ready, p.replacement),
        )
        keep, spare = healthy[:1], healthy[1:]
        for pod in spare:
            swaps.leaving.add(pod.name)
            decision.add(DeletePod(pod.name, pod.uid))
            if not doomed:
                decision.add(
                    Emit(
                        "Normal",
                        "NoticeWithdrawn",
                        f"slot {pod.slot} has {keep[0].name} again (no notice on {keep[0].where} "
                        f"any more): {pod.name} deleted",
                    )
                )
        if not doomed:
            continue
        if not keep:
            swaps.unreplaced.extend(doomed)
            continue
        if not keep[0].ready:
            for pod in doomed:
                swaps.starting[pod.name] = (
                    f"replacement {keep[0].name} starting on {keep[0].where or 'its node'}"
                )
            continue
        for pod in doomed:
            swaps.leaving.add(pod.name)
            decision.add(
                DeletePod(pod.name, pod.uid),
                Emit(
                    "Normal",
                    "Replaced",
                    f"replica {pod.name} on {pod.where} ({noticed[pod.name].signal}) deleted: "
                    f"its replacement {keep[0].name} on {keep[0].where} is ready",
                ),
            )
    return swaps


def _disrupted(
    kept: list[ReplicaPod],
    noticed: dict[str, Notice],
    starting: dict[str, str],
    waiting: dict[str, str],
    blocked: Inadmissible | None,
) -> tuple[ConditionStatus, str, str] | None:
    """Condition Disrupted: which replicas are on noticed nodes and how far their replacement
    is (None: no replica is, and the condition is left as it was or set False)."""
    lines = []
    for pod in sorted(kept, key=lambda p: p.name):
        notice = noticed.get(pod.name)
        if notice is None:
            continue
        where = f"{pod.name} on {pod.where} ({notice.signal}, {notice.source}{_by(notice)})"
        if pod.name in waiting:
            lines.append(f"{where}: {waiting[pod.name]}; it serves until its node goes")
        elif pod.name in starting:
            lines.append(f"{where}: {starting[pod.name]}")
    if not lines:
        return None
    return ("True", blocked.reason if blocked is not None else "Replacing", "; ".join(lines))


def _most(spec: InferenceServiceSpec) -> int:
    """The most replicas the owner allows: maxReplicas when autoscaled, else the fixed count."""
    if spec.replicas is None and spec.autoscaling is not None:
        return spec.autoscaling.max_replicas
    return spec.replicas or 0


def _deadline(notice: Notice) -> datetime:
    return _when(notice) or datetime.max.replace(tzinfo=UTC)


def _when(notice: Notice) -> datetime | None:
    """When the node goes, when the signal says so (no estimate from first sight: the status
    must read the same on every look)."""
    if notice.deadline is not None:
        return notice.deadline
    return notice.deadline_after(notice.since) if notice.since is not None else None


def _by(notice: Notice) -> str:
    when = _when(notice)
    return f" by {when:%H:%M:%S}" if when is not None else ""


def _admit(
    admission: Admission,
    namespace: str,
    snapshot: FleetSnapshot,
    request: PlacementRequest,
    facts: PodFacts,
) -> PlacementRequest | Inadmissible:
    """The request narrowed to the pools admission lets one more replica use, or why none."""
    pools = frozenset(candidate_pools(snapshot, request))
    if not pools:
        return request  # no pool qualifies at all: place_replica says why
    admitted = admission.pools(namespace, request, pools, facts)
    if isinstance(admitted, Inadmissible):
        # Only the fit failed (admitted): the template cannot fit even an empty pool.
        return Inadmissible("Unschedulable", admitted.message) if admitted.admitted else admitted
    return replace(request, pools=tuple(sorted(admitted)))


def _blocked_before(status: InferenceServiceStatus, blocked: Inadmissible) -> bool:
    """Whether the Warning was already given. A quota's message carries figures that move with
    the namespace's usage: one event per reason for admission, per message for placement."""
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    if ready is None or ready.reason != blocked.reason:
        return False
    return blocked.reason != "Unschedulable" or ready.message == blocked.message


def _status(
    view: ServiceView,
    live: list[ReplicaPod],
    kept: list[ReplicaPod],
    old: list[ReplicaPod],
    sizing: Sizing,
    blocked: Inadmissible | None,
    now: datetime,
    refresh_figures: bool,
    leaving: int,
    disrupted: tuple[ConditionStatus, str, str] | None = None,
) -> InferenceServiceStatus:
    previous = view.status
    status = previous.model_copy(deep=True)
    generation = view.generation
    wanted = sizing.replicas
    ready = sum(1 for p in live if p.ready)
    status.observed_generation = generation
    status.replicas = len(live)
    status.ready_replicas = ready
    status.desired_replicas = wanted
    status.selector = replica_selector(view.name)
    if previous.desired_replicas != wanted or previous.last_scale_reason is None:
        status.last_scale_time = now
        status.last_scale_reason = sizing.reason

    conditions = status.conditions
    ready_current = len({p.slot for p in kept if p.ready})
    if blocked is not None:
        readiness: tuple[ConditionStatus, str, str] = ("False", blocked.reason, blocked.message)
    elif old:
        readiness = (
            "False",
            "RollingOut",
            f"{ready_current} of {wanted} replicas of the new template ready; {len(old)} old to go",
        )
    elif ready_current < wanted:
        readiness = ("False", "ReplicasStarting", f"{ready_current} of {wanted} replicas ready")
    elif leaving:
        readiness = ("True", "ScalingDown", f"{wanted} ready; {leaving} replica(s) leaving")
    else:
        readiness = ("True", "ReplicasReady", f"{ready} of {wanted} replicas ready")
    conditions = set_condition(conditions, "Ready", *readiness, now, generation)
    for type_, verdict in (
        ("ScalingActive", sizing.active),
        ("ScalingLimited", sizing.limited),
        ("SLOMet", sizing.slo_met),
    ):
        if type_ == "ScalingLimited" and blocked is not None:
            limit = "InsufficientCapacity" if blocked.reason == "Unschedulable" else blocked.reason
            verdict = Verdict(True, limit, blocked.message)
        conditions = set_condition(
            conditions,
            type_,
            _condition(verdict.status),
            verdict.reason,
            verdict.message,
            now,
            generation,
        )
    if disrupted is not None:
        conditions = set_condition(conditions, DISRUPTED, *disrupted, now, generation)
    elif any(c.type == DISRUPTED for c in conditions):
        conditions = set_condition(
            conditions,
            DISRUPTED,
            "False",
            "NoNotices",
            "no replica is on a noticed node",
            now,
            generation,
        )
    status.conditions = conditions

    # Latency figures move every tick: written when something else changed, or when due.
    visible = _without_figures(status) != _without_figures(previous)
    if sizing.scaling is not None and (refresh_figures or visible or previous.model is None):
        _figures(status, sizing.scaling)
    elif sizing.scaling is None:
        _clear_figures(status)
    return status


def _condition(value: bool | None) -> ConditionStatus:
    return "Unknown" if value is None else ("True" if value else "False")


def _without_figures(status: InferenceServiceStatus) -> dict[str, object]:
    wire = status.model_dump(mode="json", exclude_none=True)
    for key in (
        "objectives",
        "model",
        "observed_latency_ms",
        "target_latency_ms",
        "slo_attainment",
    ):
        wire.pop(key, None)
    wire["conditions"] = [
        {k: v for k, v in c.items() if k not in ("message", "last_transition_time")}
        for c in wire.get("conditions", [])
    ]
    return wire


def _figures(status: InferenceServiceStatus, scaling: ScalingDecision) -> None:
    reports = scaling.objectives
    status.objectives = [
        ObjectiveStatus(
            name=r.name,
            percentile=r.percentile,
            target_latency_ms=_ms(r.target) or 0.0,
            observed_latency_ms=_ms(r.observed),
            predicted_latency_ms=_ms(r.predicted),
            attainment=None if r.attainment is None else round(r.attainment, 4),
            met=r.met,
            correction=_round(r.correction),
            own_time=_own_time(r.own),
        )
        for r in reports
    ]
    judged = [r for r in reports if r.observed is not None]
    if judged:
        closest = max(judged, key=lambda r: (r.observed or 0.0) / r.target)
        status.observed_latency_ms = _ms(closest.observed)
        status.target_latency_ms = _ms(closest.target)
        status.slo_attainment = None if closest.attainment is None else round(closest.attainment, 4)
    else:
        status.observed_latency_ms = None
        status.target_latency_ms = None
        status.slo_attainment = None
    status.model = ServiceModelStatus(
        arrival_rate=_round(scaling.arrival_rate),
        forecast_rate=_round(scaling.forecast_rate),
        service_time_ms=_ms(scaling.service_time),
        service_time_scv=_round(scaling.service_scv),
        correction=_round(scaling.correction),
    )


def _own_time(own: Histogram | None) -> OwnTimeStatus | None:
    if own is None or own.total <= 0:
        return None
    shares = own.normalized()
    return OwnTimeStatus(
        bounds_ms=[float(f"{b * 1000:.6g}") for b in own.bounds],
        shares=[float(f"{c:.3g}") for c in shares.counts],
        mean_ms=_ms(own.mean()),
    )


def _clear_figures(status: InferenceServiceStatus) -> None:
    status.objectives = []
    status.model = None
    status.observed_latency_ms = None
    status.target_latency_ms = None
    status.slo_attainment = None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else _round(seconds * 1000)


def _round(value: float | None) -> float | None:
    """Three significant digits: what a person reads, and fewer writes of noise."""
    if value is None:
        return None
    return float(f"{value:.3g}")
