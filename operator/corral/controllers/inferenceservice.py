"""InferenceService controller: read the service and its replicas, ask the autoscaler, execute.

No decisions here: the autoscaler (`corral.autoscaling`) sizes, the lifecycle
(`corral.inference.lifecycle`) places and rolls replicas and writes the status. This module
runs the metrics loop — every `tick_seconds`, each autoscaled service's metrics are read
concurrently (outside the one worker, so a slow Prometheus never delays a placement) and fed to
the autoscaler; the service's key is then marked — and executes the lifecycle's actions.

Autoscaler state lives in memory; the model is written to status (at most once a minute) and a
restarted operator resumes from it (`corral.autoscaling.resume`): warm, with no scale-down
before a full window of fresh metrics (see docs/inference.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from corral import metrics
from corral.api import InvalidObject, parse_object
from corral.api.conditions import set_condition
from corral.api.inferenceservice import (
    InferenceService,
    InferenceServiceStatus,
    PrometheusSource,
)
from corral.api.names import replica_pod_name
from corral.autoscaling.autoscaler import Decision as ScalingDecision
from corral.autoscaling.autoscaler import Verdict
from corral.autoscaling.histogram import Histogram, MalformedHistogram
from corral.autoscaling.observation import Replicas
from corral.autoscaling.policy import Policy, policy_of
from corral.autoscaling.resume import Remembered, resume
from corral.controllers.executor import Blocked, Gone, PodRejected, QuotaRefused, Target
from corral.controllers.servicemetrics import ServiceMetrics
from corral.inference import sizing
from corral.inference.lifecycle import DISRUPTED, PodAge, ServiceView, Sizing, decide, fixed
from corral.inference.placement import replica_request
from corral.inference.replicas import ReplicaPod, revision_of
from corral.kube import replicas as builders
from corral.kube.rest import custom_path
from corral.scheduling.actions import CreateWorker, Decision, Emit
from corral.scheduling.queue import Inadmissible
from corral.sources.metrics import MetricsSource
from corral.sources.metrics import Target as MetricsTarget
from corral.sources.prometheus import PrometheusMetrics

if TYPE_CHECKING:
    from corral.controllers.runtime import Operator

log = logging.getLogger("corral.inferenceservice")

Obj = dict[str, Any]
KEY_PREFIX = "cis:"
"""Work-queue keys of InferenceServices (TrainingJob keys are plain namespace/name)."""
TICK_SECONDS = 15.0
FIGURE_REFRESH_SECONDS = 60.0
"""Latency figures in status are refreshed at most this often unless something else changed."""
ADMISSION = frozenset({"QuotaExceeded", "PoolNotAllowed"})
"""Ready reasons of a service whose next replica admission refused (its namespace's labels, a
ResourceQuota or a PriorityClass can change the answer)."""
CAPACITY = frozenset({"Unschedulable"})
"""The Ready reason of a service whose next replica found no room (a node, a pool's spec or a
pod that ends can change the answer)."""


REFUSED_RETRY_SECONDS = 60.0
"""How long a refused replica waits before it is tried again (unless its spec changes, or a
full quota moves)."""


@dataclass(frozen=True)
class Refused:
    why: Inadmissible
    generation: int | None
    """The spec refused: a new one is tried at once."""
    until: float
    """Monotonic time it is tried again."""


@dataclass
class Scaling(sizing.Scaling):
    """What the controller keeps per autoscaled service between ticks (memory only): the
    domain's scaling state, and when figures were written and which pods Prometheus still
    counts."""

    figures_at: float | None = None
    pods_seen: dict[str, float] = field(default_factory=dict)
    """Pod name -> when it was last seen: a pod gone within the window still counts in it."""


class InferenceServiceController:
    def __init__(
        self,
        operator: Operator,
        metrics: MetricsSource | None = None,
        tick_seconds: float = TICK_SECONDS,
        default_prometheus: str | None = None,
    ):
        self.op = operator
        self.metrics: MetricsSource = metrics or PrometheusMetrics()
        self.tick_seconds = tick_seconds
        self.default_prometheus = default_prometheus
        self.scaling: dict[str, Scaling] = {}
        self._blocked: dict[str, str] = {}
        self.exported = ServiceMetrics()
        self.waiting: dict[str, str] = {}
        """Service -> why a replica it wants is not made (its Ready reason, one of ADMISSION or
        CAPACITY): the events that can change the answer wake exactly these (`wake`); the
        lifecycle's 15 s retry remains only as a safety net."""
        self._refused: dict[str, Refused] = {}
        """Service -> the API server's refusal of its last replica, held until it may retry: the
        spec changes, the retry time comes, or (a full quota) a quota of its namespace moves."""

    # -- reading --------------------------------------------------------------------------------

    def view(self, key: str) -> tuple[Obj, ServiceView | str] | None:
        obj = self.op.cache.inference_services.get(key)
        if obj is None:
            return None
        try:
            parsed = parse_object(obj, expect="InferenceService")
        except InvalidObject as exc:
            return obj, str(exc)
        except Exception as exc:  # a parser bug must not stop the others
            return obj, f"the object could not be read ({type(exc).__name__}: {exc})"
        assert isinstance(parsed, InferenceService)
        meta = parsed.metadata
        return obj, ServiceView(
            namespace=meta.namespace or "",
            name=meta.name or "",
            uid=meta.uid or "",
            generation=meta.generation or 0,
            spec=parsed.spec,
            status=parsed.status or InferenceServiceStatus(),
        )

    def pods(self, view: ServiceView) -> tuple[list[ReplicaPod], PodAge]:
        now = self.op.clock.now()
        found, ages = [], {}
        for pod in self.op.cache.owned_pods(view.uid):
            replica = ReplicaPod.from_pod(pod)
            if replica is None:
                continue
            found.append(replica)
            created = _time((pod.get("metadata") or {}).get("creationTimestamp"))
            if created is not None:
                ages[replica.name] = (now - created).total_seconds()
        return found, PodAge(ages)

    def source(self, view: ServiceView) -> PrometheusSource | None:
        autoscaling = view.spec.autoscaling
        if autoscaling is not None and autoscaling.metrics is not None:
            return autoscaling.metrics.prometheus
        if self.default_prometheus:
            return PrometheusSource(url=self.default_prometheus)
        return None

    # -- the metrics loop -----------------------------------------------------------------------

    async def run_ticks(self) -> None:
        while True:
            await self.op.clock.sleep(self.tick_seconds)
            try:
                await self.tick_all()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not end the loop
                log.exception("autoscaler tick failed")

    async def tick_all(self) -> None:
        keys = [k for k in self.op.cache.inference_services if self._autoscaled(k)]
        await asyncio.gather(*(self.tick_one(key) for key in keys))

    def _autoscaled(self, key: str) -> bool:
        found = self.view(key)
        return (
            found is not None
            and not isinstance(found[1], str)
            and found[1].spec.replicas is None
            and found[1].spec.autoscaling is not None
        )

    async def tick_one(self, key: str) -> None:
        found = self.view(key)
        if found is None or isinstance(found[1], str):
            return
        view = found[1]
        autoscaling = view.spec.autoscaling
        if view.spec.replicas is not None or autoscaling is None:
            return
        policy = policy_of(autoscaling)
        scaling = self._scaling(key, view, policy)
        pods, _ = self.pods(view)
        live = [p for p in pods if p.live]
        ready = sum(1 for p in live if p.ready)
        # Wall time (epoch seconds): Prometheus evaluates its queries at it, and the
        # autoscaler's windows are measured in it.
        now = self.op.clock.now().timestamp()
        scaling.saw_ready(ready, now)
        current = scaling.count(view, live, policy)
        source = self.source(view)
        if source is None:
            scaling.decided(_no_source(current, policy))
            assert scaling.decision is not None
            self.exported.decided(view.namespace, view.name, scaling.decision, current)
            self.op.queue.add(KEY_PREFIX + key)
            return
        # A replica scaled away keeps its requests of the window in Prometheus: its series
        # stay selected for one window, or the rate would dip after every scale-down.
        for pod in pods:
            if not pod.gated:
                scaling.pods_seen[pod.name] = now
        recent = now - source.window_seconds
        scaling.pods_seen = {n: t for n, t in scaling.pods_seen.items() if t >= recent}
        target = MetricsTarget(
            namespace=view.namespace,
            name=view.name,
            pods=tuple(sorted(scaling.pods_seen)),
            replicas=Replicas(ready, sum(1 for p in live if not p.ready), scaling.ready_since),
            source=source,
            objectives=tuple(autoscaling.all_objectives()),
        )
        observation = await self.metrics.observe(target, now)
        if self.view(key) is None:
            return  # deleted while its metrics were read
        decision = scaling.decide(observation, policy, current)
        self.exported.decided(view.namespace, view.name, decision, current)
        self.op.queue.add(KEY_PREFIX + key)

    # -- reconciling ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        found = self.view(key)
        if found is None:
            self.forget(key)
            return
        obj, view = found
        if isinstance(view, str):
            await self._refuse_invalid(obj, view)
            return
        pods, ages = self.pods(view)
        sizing = self._sizing(key, view, pods)
        live = [p for p in pods if p.live]
        self.exported.replicas(
            view.namespace, view.name, sizing.replicas, len(live), sum(p.ready for p in live)
        )
        owner = KEY_PREFIX + key
        ledger = self.op.cache.ledger
        ledger.forget(owner, [name for _, name in ledger.assumed(owner)])
        mono = self.op.clock.monotonic()
        scaling = self.scaling.get(key)
        refresh = scaling is not None and (
            scaling.figures_at is None or mono - scaling.figures_at >= FIGURE_REFRESH_SECONDS
        )
        refused = self._refused.get(key)
        if refused is not None and (refused.generation != view.generation or mono >= refused.until):
            del self._refused[key]
            refused = None
        reconciled = decide(
            view,
            pods,
            sizing,
            self.op.cache.snapshot,
            ledger,
            owner,
            self.op.clock.now(),
            ages,
            refresh,
            self.op.cluster.tenancy,
            refused.why if refused is not None else None,
            self.op.cluster.node_notice,
        )
        decision = reconciled.decision
        try:
            outcome = await self.op.executor.execute(self._target(obj, view), decision.actions)
        except PodRejected as exc:
            # Held, and said by the next look's status: retrying at once would write the status
            # back and forth and wake the service for ever. A full quota waits for the quota.
            reason = "QuotaExceeded" if isinstance(exc, QuotaRefused) else "PodRejected"
            self._refused[key] = Refused(
                Inadmissible(reason, str(exc)), view.generation, mono + REFUSED_RETRY_SECONDS
            )
            self.op.queue.add(owner)
            self.op.queue.add_after(owner, REFUSED_RETRY_SECONDS)
            return
        except Gone:
            return
        except Blocked as exc:
            if self._blocked.get(key) != str(exc):
                self._blocked[key] = str(exc)
                self.op.post_event(obj, "Warning", "Blocked", str(exc))
            raise
        self._blocked.pop(key, None)
        self._note_waiting(key, decision)
        for interruption in reconciled.interruptions:
            metrics.INTERRUPTIONS.labels(
                pool=self.op.cache.snapshot.pool_of(interruption.node) or "",
                source=interruption.notice.source,
                kind="InferenceService",
            ).inc()
        if scaling is not None and outcome.status_written and refresh:
            scaling.figures_at = mono
        if outcome.requeue_after is not None:
            self.op.queue.add_after(owner, outcome.requeue_after)
        if outcome.wrote_pods:
            self.op.queue.add(owner)
            self.op.mark_pools()

    def wake(self, reasons: frozenset[str], namespace: str | None = None) -> None:
        """Reconcile the services waiting for one of `reasons` (in `namespace`, or anywhere):
        something their admission or placement reads has changed."""
        for key, reason in self.waiting.items():
            if reason in reasons and (namespace is None or key.partition("/")[0] == namespace):
                refused = self._refused.get(key)
                if refused is not None and refused.why.reason in reasons:
                    del self._refused[key]  # what refused it has moved: try again
                self.op.queue.add(KEY_PREFIX + key)

    def _note_waiting(self, key: str, decision: Decision) -> None:
        status = decision.status
        assert isinstance(status, InferenceServiceStatus)
        # A replica it wants (Ready), or the replacement of one on a noticed node (Disrupted).
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        disrupted = next((c for c in status.conditions if c.type == DISRUPTED), None)
        if ready is not None and ready.reason in ADMISSION | CAPACITY:
            self.waiting[key] = ready.reason
            return
        if (
            disrupted is not None
            and disrupted.status == "True"
            and disrupted.reason in ADMISSION | CAPACITY
        ):
            self.waiting[key] = disrupted.reason
            return
        self.waiting.pop(key, None)

    def _sizing(self, key: str, view: ServiceView, pods: list[ReplicaPod]) -> Sizing:
        spec = view.spec
        if spec.replicas is not None:
            scaling = self.scaling.get(key)
            if scaling is not None:
                scaling.stand_aside()
            self.exported.autoscaling_stopped(view.namespace, view.name)
            return fixed(spec.replicas)
        assert spec.autoscaling is not None
        policy = policy_of(spec.autoscaling)
        return self._scaling(key, view, policy).sizing(view, pods, policy)

    def _scaling(self, key: str, view: ServiceView, policy: Policy) -> Scaling:
        """This service's autoscaler state; the first time this process sees the service, the
        model a previous operator left in status (a restart does not start it cold)."""
        scaling = self.scaling.get(key)
        if scaling is None:
            now = self.op.clock.now().timestamp()
            scaling = Scaling(state=resume(remembered(view.status), policy, now))
            self.scaling[key] = scaling
        return scaling

    def _target(self, obj: Obj, view: ServiceView) -> Target:
        revision = revision_of(view.spec)
        request = replica_request(view.key, view.spec)

        def replica(action: CreateWorker) -> tuple[Obj, dict[str, int]] | None:
            name = replica_pod_name(view.name, revision, action.index, action.replacement)
            pool_name = self.op.cache.snapshot.pool_of(action.node)
            pool = self.op.cluster.pool(pool_name) if pool_name else None
            if pool is None:
                self.op.cache.ledger.forget(KEY_PREFIX + view.key, [name])
                return None  # its node left the pool: the next reconcile places it again
            pod = builders.replica_pod(
                replacement=action.replacement,
                namespace=view.namespace,
                service=view.name,
                uid=view.uid,
                spec=view.spec,
                revision=revision,
                slot=action.index,
                node=action.node,
                pool=pool_name or "",
                resource_name=pool.spec.resource_name,
                pool_tolerations=pool.spec.tolerations,
            )
            return pod, request.worker_requests(pool.spec.resource_name)

        def service() -> Obj:
            return builders.inference_service(
                namespace=view.namespace, service=view.name, uid=view.uid, port=view.spec.port
            )

        return Target(
            obj=obj,
            kind="InferenceService",
            status_path=custom_path("inferenceservices", view.namespace, view.name, "status"),
            ledger_owner=lambda attempt: KEY_PREFIX + view.key,
            worker=replica,
            service=service,
        )

    def forget(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        self.exported.forget(namespace, name)
        self.scaling.pop(key, None)
        self._blocked.pop(key, None)
        self.waiting.pop(key, None)
        self._refused.pop(key, None)
        self.op.cache.ledger.forget(KEY_PREFIX + key)

    async def _refuse_invalid(self, obj: Obj, problem: str) -> None:
        try:
            status = InferenceServiceStatus.model_validate(obj.get("status") or {})
        except Exception:
            status = InferenceServiceStatus()
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        if ready is not None and ready.reason == "InvalidSpec" and ready.message == problem:
            return
        generation = (obj.get("metadata") or {}).get("generation")
        status.observed_generation = generation if isinstance(generation, int) else None
        status.conditions = set_condition(
            status.conditions,
            "Ready",
            "False",
            "InvalidSpec",
            problem,
            self.op.clock.now(),
            status.observed_generation,
        )
        decision = Decision(status)
        decision.add(Emit("Warning", "InvalidSpec", problem))
        target = Target.status_of(obj, "InferenceService", "inferenceservices")
        try:
            await self.op.executor.execute(target, decision.actions)
        except Gone:
            return


def remembered(status: InferenceServiceStatus) -> Remembered:
    """The model as the last status has it (its figures are rounded to three digits)."""
    model = status.model
    if model is None or model.service_time_ms is None:
        return Remembered()
    corrections = {o.name: o.correction for o in status.objectives if o.correction is not None}
    if not corrections and model.correction is not None:
        # A status written before corrections were per objective: the largest for all of them
        # (more replicas rather than fewer until each relearns its own).
        corrections = {o.name: model.correction for o in status.objectives}
    own = {}
    for objective in status.objectives:
        learned = objective.own_time
        if learned is None:
            continue
        try:
            histogram = Histogram(
                tuple(float(f"{b / 1000:.6g}") for b in learned.bounds_ms),
                tuple(learned.shares),
                (learned.mean_ms or 0.0) / 1000,
            )
        except MalformedHistogram:
            continue  # relearned from the next windows, as for a new service
        if histogram.total > 0:
            own[objective.name] = histogram.normalized()
    return Remembered(
        service_time=model.service_time_ms / 1000,
        service_scv=model.service_time_scv,
        arrival_rate=model.arrival_rate,
        corrections=corrections,
        own=own,
    )


def _no_source(current: int, policy: Policy) -> ScalingDecision:
    held = max(policy.floor, min(current, policy.max_replicas))
    message = (
        "no metrics source: set spec.autoscaling.metrics.prometheus (or run the operator with "
        "--prometheus-url)"
    )
    return ScalingDecision(
        held,
        f"holding {held}: {message}",
        Verdict(False, "NoMetricsSource", message),
        Verdict(False, "WithinBounds", "the recommendation is within bounds"),
        Verdict(None, "NoObservations", "no metrics source"),
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
