"""InferenceServices in the simulator: the operator's own autoscaler and replica lifecycle, fed
by the serving model, on the same fleet snapshot and ledger as the training gangs.

Per service, as the operator does it (`corral.controllers.inferenceservice`):
- every autoscaler tick, the scaling state (`corral.inference.sizing.Scaling`) sees the ready
  replicas and decides on an observation — here what Prometheus would answer about the serving
  model (`corral.autoscaling.servingsim.observe`), masked to the series the spec names;
- every reconcile, the lifecycle (`corral.inference.lifecycle.reconcile`) places missing
  replicas through the same admission and placement as the live controller, against the
  snapshot that counts every gang worker planned in the ledger, and deletes surplus ones.

This module plays the rest: the API server (replica pods as objects), kube-scheduler (an
ungated replica binds to its planned node if it still fits), the kubelet (it runs at once and is
Ready `startupSeconds` later) and the model server (the serving model gains a replica when it
starts serving and drains one when its pod goes: a deleted or reclaimed replica finishes its
requests, and its devices are free at once). The first replicas of a service, made as its load
begins, serve at once: the load is a service's traffic, not a cold start.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.api.inferenceservice import InferenceServiceStatus
from corral.api.names import (
    INFERENCE_LABEL,
    NODE_ANNOTATION,
    REVISION_LABEL,
    SLOT_LABEL,
    replica_pod_name,
)
from corral.autoscaling.observation import Replicas
from corral.autoscaling.policy import Policy, policy_of
from corral.autoscaling.servingsim import ServingSim, observe
from corral.cost.chargeback import team_of
from corral.cost.charges import ZERO, Charge
from corral.fleet.objects import PodRecord
from corral.inference.lifecycle import PodAge, ServiceView, fixed, reconcile
from corral.inference.placement import replica_request
from corral.inference.replicas import ReplicaPod, revision_of
from corral.inference.sizing import Scaling
from corral.scheduling.actions import CreateWorker, DeletePod, RequeueAfter, Ungate
from corral.sim.inference import ServiceLoad
from corral.sim.memory import InMemoryCluster, gated_spec
from corral.sim.results import ObjectiveOutcome, ServiceOutcome, percentile

OWNER_PREFIX = "cis:"
"""Ledger owners of services, as the operator names them (a TrainingJob's attempt has no prefix)."""
DEFAULT_STARTUP_SECONDS = 60.0
"""Start-up of a fixed-size service's replicas (`autoscaling.startupSeconds`' default)."""
BLOCKED = frozenset({"Unschedulable", "QuotaExceeded", "PoolNotAllowed"})
"""Ready reasons of a service with a replica it wants and cannot have."""

Charger = Callable[[str, str, str, str, int, float, float], Charge]
"""(namespace, team, pool, capacity type, devices, start, end): the engine charges a replica's
device-time (and counts it in the fleet's utilisation)."""


@dataclass
class Sample:
    """A service at an autoscaler tick."""

    time: float
    desired: int
    replicas: int
    """Live replica pods (placed; ready or starting)."""
    ready: int
    rate: float
    """Requests per second arrived over the last minute."""


@dataclass
class Reaction:
    """What one reconcile did that the engine must follow up."""

    requeue: float | None = None
    freed: bool = False
    """A replica went: capacity freed for the queue."""
    ready_at: list[tuple[float, str]] = field(default_factory=list)
    """(when, pod) of replicas that started and will be Ready then."""


class SimulatedService:
    def __init__(self, load: ServiceLoad, cluster: InMemoryCluster, charge: Charger):
        service = load.service
        meta = service.metadata
        spec = service.spec
        self.load = load
        self.key = load.key
        self.owner = OWNER_PREFIX + self.key
        self.cluster = cluster
        self.charge = charge
        self.team = team_of(meta.labels)
        autoscaling = spec.autoscaling
        self.policy: Policy | None = (
            policy_of(autoscaling) if spec.replicas is None and autoscaling is not None else None
        )
        self.scaling = Scaling() if self.policy is not None else None
        self.startup = (
            float(autoscaling.startup_seconds) if autoscaling else DEFAULT_STARTUP_SECONDS
        )
        concurrency = autoscaling.concurrency_per_replica if autoscaling else 1
        self.serving = ServingSim(load.requests, concurrency, self.startup, 0)
        self.arrivals = [r.arrival for r in load.requests]
        self.view = ServiceView(
            namespace=meta.namespace or "default",
            name=meta.name or "",
            uid=f"uid-{self.key}",
            generation=1,
            spec=spec,
            status=service.status or InferenceServiceStatus(),
        )
        self.revision = revision_of(spec)
        self.request = replica_request(self.key, spec)
        self.pods: dict[str, dict[str, Any]] = {}
        self.replica_of: dict[str, int] = {}
        """Pod name -> its replica in the serving model (once it runs)."""
        self.born: dict[str, float] = {}
        self.devices: dict[str, tuple[str, str, int]] = {}
        """Pod name -> (pool, capacity type, devices) as it was created."""
        self.charged = ZERO
        self.started = False
        self.ended = False
        self.samples: list[Sample] = []
        self.scale_ups = 0
        self.scale_downs = 0
        self.blocked_episodes = 0
        self.blocked = False
        self.unplaced_seconds = 0.0
        """Replica-seconds wanted and not placed (desired above the live replicas, while a
        replica could not be made)."""
        self.replica_seconds = 0.0
        self.device_seconds = 0.0
        self._short = 0
        self._short_since = 0.0
        self._first = True

    # -- reading ------------------------------------------------------------------------------

    def replica_pods(self) -> list[ReplicaPod]:
        out = []
        for name in sorted(self.pods):
            pod = ReplicaPod.from_pod(self.pods[name])
            if pod is not None:
                out.append(pod)
        return out

    @property
    def autoscaled(self) -> bool:
        return self.policy is not None

    def done(self) -> bool:
        """Every request has arrived and been served."""
        return not self.serving.pending and self.serving.finished

    # -- the operator -------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """One autoscaler tick (the controller's `tick_one`, with the simulator as Prometheus)."""
        self.serving.advance(now)
        pods = self.replica_pods()
        live = [p for p in pods if p.live]
        ready = sum(1 for p in live if p.ready)
        if self.policy is not None and self.scaling is not None:
            policy = self.policy
            scaling = self.scaling
            scaling.saw_ready(ready, now)
            current = scaling.count(self.view, live, policy)
            scaling.decide(self._observation(now, ready, len(live) - ready), policy, current)
        start = bisect.bisect_right(self.arrivals, now - 60.0)
        arrived = bisect.bisect_right(self.arrivals, now) - start
        desired = self.scaling.current if self.scaling is not None else None
        if desired is None:
            desired = self.view.spec.replicas or 0
        self.samples.append(Sample(now, desired, len(live), ready, arrived / 60.0))

    def _observation(self, now: float, ready: int, starting: int) -> Any:
        assert self.policy is not None and self.scaling is not None
        seen = observe(self.serving, self.policy)
        autoscaling = self.view.spec.autoscaling
        source = autoscaling.metrics.prometheus if autoscaling and autoscaling.metrics else None
        # The operator reads only the gauges the spec names.
        in_flight = seen.in_flight if source is not None and source.in_flight else None
        queued = source is not None and source.queued is not None
        return dataclasses.replace(
            seen,
            replicas=Replicas(ready, starting, self.scaling.ready_since),
            in_flight=in_flight,
            queued=seen.queued if queued else None,
            queued_growth=seen.queued_growth if queued else None,
            reporting=ready,
            reporting_now=ready,
        )

    def reconcile(self, now: float, when: datetime) -> Reaction:
        """One reconcile of the service (the controller's `reconcile`), its actions applied."""
        reaction = Reaction()
        if self.ended:
            return reaction
        self.serving.advance(now)
        pods = self.replica_pods()
        view = self.view
        if self.policy is not None and self.scaling is not None:
            sizing = self.scaling.sizing(view, pods, self.policy)
        else:
            sizing = fixed(view.spec.replicas or 0)
        ledger = self.cluster.ledger
        ledger.forget(self.owner, [name for _, name in ledger.assumed(self.owner)])
        ages = PodAge({name: now - born for name, born in self.born.items()})
        decision = reconcile(
            view,
            pods,
            sizing,
            self.cluster.snapshot,
            ledger,
            self.owner,
            when,
            ages,
            False,
            self.cluster.tenancy,
        )
        before = view.status.desired_replicas
        for action in decision.actions:
            if isinstance(action, DeletePod):
                reaction.freed |= self._delete(action.name, now)
            elif isinstance(action, CreateWorker):
                self._create(action, now)
            elif isinstance(action, Ungate):
                self._bind(action.name, now, reaction)
            elif isinstance(action, RequeueAfter):
                reaction.requeue = action.seconds
        status = decision.status
        assert isinstance(status, InferenceServiceStatus)
        self.view = dataclasses.replace(view, status=status)
        if view.status.observed_generation is not None:
            if status.desired_replicas > before:
                self.scale_ups += 1
            elif status.desired_replicas < before:
                self.scale_downs += 1
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        blocked = ready is not None and ready.reason in BLOCKED
        if blocked and not self.blocked:
            self.blocked_episodes += 1
        self.blocked = blocked
        if self._first and self.scaling is not None:
            # The service ran before its load began: the operator has seen these replicas ready
            # since (a window of steady metrics need not be waited for).
            self.scaling.saw_ready(sum(1 for p in self.replica_pods() if p.ready), now)
        self._account(now)
        self._first = False
        return reaction

    # -- the API server, kube-scheduler, the kubelet and the model server ---------------------

    def _create(self, action: CreateWorker, now: float) -> None:
        name = replica_pod_name(self.view.name, self.revision, action.index)
        if name in self.pods:
            return
        snapshot = self.cluster.snapshot
        pool = snapshot.pools.get(snapshot.pool_of(action.node) or "")
        if pool is None:
            return  # its node left the pool: the next reconcile places it again
        requests = self.request.worker_requests(pool.resource_name)
        namespace = self.view.namespace
        self.pods[name] = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{namespace}-{name}-{now:.3f}",
                "labels": {
                    INFERENCE_LABEL: self.view.name,
                    REVISION_LABEL: self.revision,
                    SLOT_LABEL: str(action.index),
                },
                "annotations": {NODE_ANNOTATION: action.node},
            },
            "spec": gated_spec("server", requests),
            "status": {"phase": "Pending"},
        }
        self.born[name] = now
        capacity_type = snapshot.capacity_type_of(action.node) or "on-demand"
        self.devices[name] = (pool.name, capacity_type, requests.get(pool.resource_name, 0))
        key = (namespace, name)
        snapshot.upsert_record(PodRecord(key=key, node=action.node, requests=requests, active=True))
        self.cluster.ledger.observed(key)

    def _bind(self, name: str, now: float, reaction: Reaction) -> None:
        pod = self.pods.get(name)
        if pod is None:
            return
        pod["spec"]["schedulingGates"] = []
        node = pod["metadata"]["annotations"][NODE_ANNOTATION]
        if self.cluster.snapshot.node_problem(node) is not None or not self.cluster.fits(pod, node):
            pod["status"]["conditions"] = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
            ]
            return  # the lifecycle makes it again elsewhere after its bind timeout
        pod["spec"]["nodeName"] = node
        pod["status"] = {"phase": "Running"}
        startup = 0.0 if self._first else self.startup
        self.replica_of[name] = self.serving.add(startup)
        if startup <= 0:
            self._ready(pod)
        else:
            reaction.ready_at.append((now + startup, name))

    def ready(self, name: str) -> bool:
        """The replica's start-up has passed: Ready (False if it went meanwhile)."""
        pod = self.pods.get(name)
        if pod is None or not pod["spec"].get("nodeName"):
            return False
        self._ready(pod)
        return True

    @staticmethod
    def _ready(pod: dict[str, Any]) -> None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

    def _delete(self, name: str, now: float) -> bool:
        pod = self.pods.pop(name, None)
        if pod is None:
            return False
        ident = self.replica_of.pop(name, None)
        if ident is not None:
            self.serving.drain(ident)
        born = self.born.pop(name, now)
        pool, capacity_type, devices = self.devices.pop(name)
        key = (self.view.namespace, name)
        self.cluster.snapshot.remove_pod(*key)
        self.cluster.ledger.observed(key, gone=True)
        self.replica_seconds += now - born
        self.device_seconds += (now - born) * devices
        namespace = self.view.namespace
        self.charged += self.charge(namespace, self.team, pool, capacity_type, devices, born, now)
        return True

    def remove_node(self, host: str, now: float) -> bool:
        """The machine is gone: its replicas with it (the pod garbage collector)."""
        gone = [
            name
            for name, pod in sorted(self.pods.items())
            if (pod["spec"].get("nodeName") or pod["metadata"]["annotations"][NODE_ANNOTATION])
            == host
        ]
        for name in gone:
            self._delete(name, now)
        if gone:
            self._account(now)
        return bool(gone)

    def end(self, now: float) -> bool:
        """The load is over: the service is deleted, and its replicas with it."""
        self.serving.advance(now)
        freed = False
        for name in sorted(self.pods):
            freed |= self._delete(name, now)
        self._account(now)
        self.cluster.ledger.forget(self.owner)
        self.ended = True
        return freed

    def _account(self, now: float) -> None:
        """Replica-seconds wanted and not there, while a replica cannot be made."""
        self.unplaced_seconds += self._short * (now - self._short_since)
        live = sum(1 for p in self.replica_pods() if p.live)
        short = max(0, self.view.status.desired_replicas - live)
        self._short = short if self.blocked and not self.ended else 0
        self._short_since = now

    # -- outcome ------------------------------------------------------------------------------

    def outcome(self) -> ServiceOutcome:
        load = self.load
        served = sorted(self.serving.served)
        by_minute: dict[int, list[tuple[float, float]]] = {}
        for arrival, ttft, latency in served:
            by_minute.setdefault(int((arrival - load.start) // 60), []).append((ttft, latency))
        itl: dict[int, list[float]] = {}
        for request in load.requests:
            if request.tokens > 1:
                minute = int((request.arrival - load.start) // 60)
                itl.setdefault(minute, []).append(request.decode / (request.tokens - 1))
        autoscaling = self.view.spec.autoscaling
        objectives = [] if autoscaling is None else autoscaling.all_objectives()
        met = {o.name: 0 for o in objectives}
        met_all = 0
        for minute, values in by_minute.items():
            ok_all = True
            for objective in objectives:
                if objective.type == "InterTokenLatency":
                    sample = itl.get(minute, [])
                else:
                    index = 0 if objective.type == "TimeToFirstToken" else 1
                    sample = [v[index] for v in values]
                observed = percentile(sample, objective.percentile / 100)
                ok = observed is None or observed <= objective.latency_ms / 1000
                met[objective.name] += ok
                ok_all &= ok
            met_all += ok_all
        minutes = len(by_minute)
        samples = self.samples
        return ServiceOutcome(
            key=self.key,
            namespace=self.view.namespace,
            team=self.team,
            trace=load.trace,
            start=load.start,
            end=load.end,
            requests=len(load.requests),
            served=len(served),
            objectives=[
                ObjectiveOutcome(
                    o.name,
                    o.type,
                    o.percentile,
                    o.latency_ms / 1000,
                    met[o.name] / minutes if minutes else None,
                )
                for o in objectives
            ],
            minutes=minutes,
            minutes_meeting_all=met_all / minutes if minutes and objectives else None,
            p95_latency=percentile([v[2] for v in served], 0.95),
            p95_ttft=percentile([v[1] for v in served], 0.95),
            replica_seconds=self.replica_seconds,
            device_seconds=self.device_seconds,
            charge=self.charged,
            scale_ups=self.scale_ups,
            scale_downs=self.scale_downs,
            unplaced_episodes=self.blocked_episodes,
            unplaced_replica_seconds=self.unplaced_seconds,
            peak_replicas=max((s.replicas for s in samples), default=0),
            samples_time=[s.time for s in samples],
            samples_desired=[s.desired for s in samples],
            samples_ready=[s.ready for s in samples],
            samples_replicas=[s.replicas for s in samples],
            samples_rate=[s.rate for s in samples],
        )
