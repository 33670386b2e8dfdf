"""The in-memory `TrainingCluster`: the operator's domain decisions, applied without a cluster.

It stands in for the API server (it stores jobs and pods), for kube-scheduler (an ungated worker
binds to its planned node if the node exists, is usable and has room) and, when asked, for the
kubelet (bound workers start; a test or the simulator ends them). It drives the SAME lifecycle
(`corral.training.lifecycle.reconcile`) and scheduling pass (`corral.training.queueing.queue_pass`)
as the operator, applying their typed actions synchronously — so the simulator and the domain's
unit tests make the decisions the operator would make.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from corral.api.gpupool import GPUPool
from corral.api.meta import format_time
from corral.api.names import (
    JOB_LABEL,
    PLACEMENT_GATE,
    REPLACEMENT_LABEL,
    RESTART_LABEL,
    WORKER_INDEX_LABEL,
    worker_pod_name,
)
from corral.api.trainingjob import PlacementStatus, TrainingJobStatus
from corral.disruption.checkpoints import http_ack
from corral.disruption.notices import Notice, binding_notice, node_usability
from corral.fleet.objects import PodRecord
from corral.fleet.resources import pod_requests
from corral.fleet.snapshot import FleetSnapshot
from corral.placement import Placement
from corral.scheduling.actions import (
    Action,
    AnnotatePod,
    CallHook,
    CreateWorker,
    DeletePod,
    Emit,
    EnsureService,
    Nominate,
    ReleaseAssumed,
    RequeueAfter,
    Ungate,
    WantsPlacement,
    WriteStatus,
)
from corral.scheduling.cycle import Solve
from corral.scheduling.ledger import Ledger
from corral.scheduling.tenancy import Tenancy
from corral.training import capacity, replacement
from corral.training.accounting import Price, placement_price
from corral.training.cluster import (
    HOLDING_PHASES,
    JobRecord,
    job_record,
    ledger_owner,
    owners_of,
)
from corral.training.lifecycle import reconcile
from corral.training.pods import WorkerPod
from corral.training.queueing import queue_pass

Obj = dict[str, Any]
HookAnswer = Callable[[CallHook], tuple[int, bytes]]
"""A worker's answer to an httpGet hook call: (HTTP status, body)."""


@dataclass
class Recorded:
    """What the in-memory cluster saw happen, in order (for tests and the simulator's report)."""

    events: list[tuple[str, Emit]] = field(default_factory=list)
    placements: list[tuple[str, Placement]] = field(default_factory=list)
    writes: int = 0


class InMemoryCluster:
    def __init__(self, nodes: Iterable[Mapping[str, Any]], pools: Iterable[GPUPool]):
        nodes = list(nodes)
        self.nodes: dict[str, Mapping[str, Any]] = {n["metadata"]["name"]: n for n in nodes}
        self._snapshot = FleetSnapshot.build(nodes, [], pools, notices=node_usability)
        self._ledger = Ledger(self._snapshot)
        self._pools = {pool.metadata.name or "": pool for pool in pools}
        self.jobs: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.recorded = Recorded()
        self._records: dict[str, tuple[str, JobRecord]] = {}
        self._version = 0
        self.due: dict[str, datetime] = {}
        """Job key -> when it asked to be looked at again (RequeueAfter)."""
        self.failed_by_pass: list[str] = []
        """Jobs the last scheduling pass failed (Unschedulable)."""
        self._waiting: set[str] = set()
        """Jobs neither finished nor placed: what the scheduling pass reads."""
        self._waiting_order: list[str] | None = None
        """`_waiting` in key order, until it changes."""
        self._holding: set[str] = set()
        """Jobs whose gang holds capacity (a phase of HOLDING_PHASES), kept on every status write
        as `_waiting` is: the pass reads their demand between pools, as the operator's does."""
        self._owned: dict[str, set[str]] = {}
        """Owner UID -> keys of its pods (a job's pods are found without a scan)."""
        self._notices: dict[str, Notice | None] = {}
        """Node name -> its binding termination notice, until the node changes."""
        self._requests: dict[str, dict[str, int]] = {}
        """Pod key -> its requests (a worker's resources never change after it is created)."""
        self._read: dict[str, WorkerPod | None] = {}
        """Pod key -> the pod as the lifecycle reads it, until the pod changes (every reconcile
        reads all of its job's pods; most have not changed since the last one)."""
        self._to_bind: set[str] = set()
        """Ungated pods not bound yet: what kube-scheduler looks at."""
        self._to_start: set[str] = set()
        """Bound pods still Pending: what the kubelet starts."""
        self.tenant_objects: dict[str, dict[str, Obj]] = {
            "Namespace": {},
            "ResourceQuota": {},
            "PriorityClass": {},
        }
        """Namespaces, ResourceQuotas and PriorityClasses, as `put` stored them."""
        self._tenancy: Tenancy | None = None
        self.hook: HookAnswer | None = None
        """What workers answer a call of their httpGet checkpoint hook (a test or the simulator
        plays the workload); None: nobody answers."""
        self.hook_calls: list[CallHook] = []
        self._quiet_pass: tuple[tuple[object, ...], datetime] | None = None
        """What the last pass read, if it decided nothing, and until when the clock does not
        matter to it (`run_pass`)."""
        self.skipped_passes = 0
        self._prices: tuple[int, dict[tuple[str, tuple[str, ...]], Price | None]] = (-1, {})
        """(the snapshot's static epoch, placement (pool, nodes) -> its price)."""
        """Passes not run: nothing they read had changed since one that decided nothing."""

    # -- the Cluster protocol -------------------------------------------------------------------

    @property
    def snapshot(self) -> FleetSnapshot:
        return self._snapshot

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def pool(self, name: str) -> GPUPool | None:
        return self._pools.get(name)

    def node_notice(self, name: str) -> Notice | None:
        # Read from the node alone, so kept until the node changes (every reconcile of a running
        # job asks for each of its nodes).
        if name not in self._notices:
            node = self.nodes.get(name)
            self._notices[name] = binding_notice(node) if node is not None else None
        return self._notices[name]

    def set_node(self, node: Mapping[str, Any]) -> None:
        """A node appears or changes (a termination notice set on it, say)."""
        self.nodes[node["metadata"]["name"]] = node
        self._notices.pop(node["metadata"]["name"], None)
        self._snapshot.upsert_node(node)
        self._version += 1

    def jobs_on(self, node: str) -> list[str]:
        """Keys of the jobs with a worker bound to the node (whom a change of it concerns)."""
        return sorted(
            {_job_key(pod) for pod in self.pods.values() if pod["spec"].get("nodeName") == node}
        )

    def remove_node(self, name: str) -> list[str]:
        """The machine is gone: the node and its pods (as the pod GC does); returns the keys of
        the jobs that lost pods."""
        self.nodes.pop(name, None)
        self._notices.pop(name, None)
        self._snapshot.remove_node(name)
        jobs = set()
        for key, pod in list(self.pods.items()):
            if pod["spec"].get("nodeName") == name:
                jobs.add(_job_key(pod))
                self._remove_pod(key)
        self._version += 1
        return sorted(jobs)

    @property
    def tenancy(self) -> Tenancy:
        if self._tenancy is None:
            objects = self.tenant_objects
            self._tenancy = Tenancy.build(
                objects["Namespace"].values(),
                objects["ResourceQuota"].values(),
                objects["PriorityClass"].values(),
            )
        return self._tenancy

    def put(self, obj: Mapping[str, Any]) -> None:
        """An admin creates or changes a Namespace, ResourceQuota or PriorityClass."""
        meta = obj.get("metadata") or {}
        key = (
            f"{meta.get('namespace')}/{meta.get('name')}"
            if meta.get("namespace")
            else str(meta.get("name"))
        )
        self.tenant_objects[str(obj.get("kind"))][key] = copy.deepcopy(dict(obj))
        self._tenancy = None

    def training_job(self, key: str) -> JobRecord | None:
        obj = self.jobs.get(key)
        if obj is None:
            return None
        version = obj["metadata"]["resourceVersion"]
        cached = self._records.get(key)
        if cached is None or cached[0] != version:
            cached = (version, job_record(obj))
            self._records[key] = cached
        return cached[1]

    def training_jobs(self) -> Iterable[JobRecord]:
        """The jobs the scheduling pass may consider, in key order: neither finished nor placed.
        The pass is the only reader and skips the others anyway (as the operator's does); an
        index kept on every status write spares a pass over a simulated week from reading every
        job ever submitted, and every running one."""
        if self._waiting_order is None:
            self._waiting_order = sorted(self._waiting)
        for key in self._waiting_order:
            record = self.training_job(key)
            if record is not None:
                yield record

    def holding_jobs(self) -> Iterable[JobRecord]:
        for key in sorted(self._holding):
            record = self.training_job(key)
            if record is not None:
                yield record

    def job_pods(self, key: str) -> list[WorkerPod]:
        record = self.training_job(key)
        if record is None or record.view is None:
            return []
        read = self._read
        out = []
        for pod_key in sorted(self._owned.get(record.view.uid, ())):
            if pod_key not in read:
                read[pod_key] = WorkerPod.from_pod(self.pods[pod_key])
            pod = read[pod_key]
            if pod is not None:
                out.append(pod)
        return out

    # -- what users and other actors do ---------------------------------------------------------

    def submit(self, job: Obj, now: datetime) -> str:
        """A user creates a TrainingJob (plain dict, as applied)."""
        obj = copy.deepcopy(job)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta["uid"] = f"uid-{meta['namespace']}-{meta['name']}-{self._bump()}"
        meta["generation"] = 1
        meta["creationTimestamp"] = format_time(now)
        meta["resourceVersion"] = self._bump()
        obj.pop("status", None)
        key = f"{meta['namespace']}/{meta['name']}"
        self.jobs[key] = obj
        self._wait(key, True)
        return key

    def delete_job(self, key: str) -> None:
        obj = self.jobs.pop(key, None)
        self._wait(key, False)
        self._holding.discard(key)
        if obj is None:
            return
        uid = obj["metadata"]["uid"]
        for name in sorted(self._owned.get(uid, ())):
            self._remove_pod(name)
        for owner in owners_of(key, self._ledger.owners()):
            self._ledger.forget(owner)

    def start_bound(self, now: datetime) -> list[str]:
        """The kubelet: bound Pending workers start Running; returns their jobs' keys."""
        started = set()
        for pod_key in sorted(self._to_start):
            pod = self.pods[pod_key]
            pod["status"]["phase"] = "Running"
            pod["status"]["startTime"] = format_time(now)
            self._touch(pod)
            started.add(_job_key(pod))
        return sorted(started)

    def bind_ungated(self) -> list[str]:
        """kube-scheduler: an ungated worker binds to its planned node when it still fits, else
        is reported Unschedulable once; returns the keys of the jobs whose workers changed."""
        changed = set()
        for pod_key in sorted(self._to_bind):
            pod = self.pods[pod_key]
            node = pod["metadata"]["annotations"]["corral.dev/node"]
            if self._snapshot.node_problem(node) is None and self.fits(pod, node):
                pod["spec"]["nodeName"] = node
                pod["status"].pop("nominatedNodeName", None)  # the bind clears it
            elif not pod["status"].get("conditions"):
                # As kube-scheduler: Unschedulable, and the nomination dropped once preemption
                # cannot help (the lifecycle then re-places the gang: a lost race).
                pod["status"]["conditions"] = [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": f"0/1 nodes are available: node {node} has no room",
                    }
                ]
                pod["status"].pop("nominatedNodeName", None)
            else:
                continue
            self._touch(pod)
            changed.add(_job_key(pod))
        return sorted(changed)

    def annotate(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        """The workload writes on its own pod (a checkpoint acknowledgement, as `corral.sdk`)."""
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is not None:
            pod["metadata"].setdefault("annotations", {}).update(annotations)
            self._touch(pod)

    def finish(self, namespace: str, name: str, exit_code: int, now: datetime) -> None:
        """A worker's process exits."""
        pod = self.pods[f"{namespace}/{name}"]
        pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        pod["status"]["containerStatuses"] = [
            {
                "name": "worker",
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "finishedAt": format_time(now),
                    }
                },
            }
        ]
        self._touch(pod)

    # -- the decisions --------------------------------------------------------------------------

    def run_pass(self, now: datetime, solve: Solve | None = None) -> list[str]:
        """One scheduling pass; returns the keys of the jobs it placed.

        A pass that decided nothing is not run again until something it reads changes: most
        passes of a busy fleet (a worker ended, a wake-up) find the same waiting jobs before the
        same fleet and place none of them again. Its inputs are the waiting jobs as read, the
        snapshot (nodes, pools, what pods hold), what the ledger adds for quota admission, the
        tenancy, the solver, and the clock where a waiting job reads it (a re-placement backoff
        running out); a job whose pass decision reads the clock further (carbon deferral, the
        deadline spot policy) makes every pass run."""
        self.failed_by_pass = []
        inputs = self._pass_inputs(solve)
        quiet = self._quiet_pass
        if quiet is not None and quiet[0] == inputs and now < quiet[1]:
            self.skipped_passes += 1
            return []
        placed = []
        verdicts = queue_pass(self, now, solve)
        self._quiet_pass = None if verdicts else self._quiet_until(inputs, now)
        for verdict in verdicts:
            key = verdict.record.key
            self.apply(key, verdict.decision.actions, now)
            if getattr(verdict.decision.status, "phase", None) == "Failed":
                self.failed_by_pass.append(key)
            if verdict.placement is not None:
                placed.append(key)
                self.recorded.placements.append((key, verdict.placement))
        return placed

    def _pass_inputs(self, solve: Solve | None) -> tuple[object, ...]:
        """What a pass reads, but the clock: the waiting jobs (each as of its resourceVersion),
        the jobs holding capacity (as of their spec), the snapshot (nodes, pools, what pods hold), what the ledger adds for quota admission,
        the tenancy and the solver."""
        if self._waiting_order is None:
            self._waiting_order = sorted(self._waiting)
        jobs = self.jobs
        versions = tuple(jobs[key]["metadata"]["resourceVersion"] for key in self._waiting_order)
        ledger = self._ledger.assumed_requests()
        # The jobs holding capacity count in the pools' contention through their requests, which
        # change only with their spec (generation), not with each status write.
        holding = tuple(
            (key, jobs[key]["metadata"].get("generation")) for key in sorted(self._holding)
        )
        return (
            self._waiting_order,
            versions,
            holding,
            self._snapshot.static_epoch,
            self._snapshot.pod_changes,
            sorted((namespace, sorted(amounts.items())) for namespace, amounts in ledger.items()),
            self.tenancy,
            solve,
        )

    def _quiet_until(
        self, inputs: tuple[object, ...], now: datetime
    ) -> tuple[tuple[object, ...], datetime] | None:
        """A pass decided nothing: its inputs, and until when the clock changes nothing in it
        (the first re-placement backoff to run out); None when a waiting job's decision in the
        pass reads the clock further (carbon deferral, the deadline spot policy)."""
        until = datetime.max.replace(tzinfo=now.tzinfo)
        for record in self.training_jobs():
            view = record.view
            if view is None:
                continue
            if view.spec.carbon_deferral is not None or capacity.applies(view.spec):
                return None
            requeue = view.status.requeue_state
            if requeue is not None and requeue.requeue_at is not None and requeue.requeue_at > now:
                until = min(until, requeue.requeue_at)
        return inputs, until

    def reconcile(self, key: str, now: datetime, refresh_usage: bool = False) -> list[Action]:
        actions = self.decide(key, now, refresh_usage)
        self.apply(key, actions, now)
        return actions

    def decide(self, key: str, now: datetime, refresh_usage: bool = False) -> list[Action]:
        """What one reconcile of the job decides, in order, without applying it (a test may
        apply part of it: an operator killed between two actions)."""
        record = self.training_job(key)
        if record is None or record.view is None:
            return []
        view = record.view
        decision = reconcile(
            view,
            self.job_pods(key),
            now,
            self._snapshot.node_problem,
            self._price(view.status.placement),
            refresh_usage,
            self.node_notice,
            overcommitted=self._snapshot.overcommitted,
            replace_workers=replacement.bind(self._snapshot, record.request),
            spot_fits=capacity.fits_spot(self._snapshot, record.request),
        )
        return decision.actions

    def _price(self, placement: PlacementStatus | None) -> Price | None:
        """The placement's price, kept while the nodes and pools are as they were (every
        reconcile of a running job asks, for the same nodes)."""
        if placement is None:
            return None
        epoch = self._snapshot.static_epoch
        if self._prices[0] != epoch:
            self._prices = (epoch, {})
        kept = self._prices[1]
        key = (placement.pool, tuple(placement.nodes))
        if key not in kept:
            kept[key] = placement_price(self._snapshot, self.pool(placement.pool), placement.nodes)
        return kept[key]

    def settle(self, now: datetime, rounds: int = 20) -> None:
        """Reconcile every job and run the pass until nothing changes (a quiet operator)."""
        for _ in range(rounds):
            before = self._version
            self.run_pass(now)
            for key in sorted(self.jobs):
                self.reconcile(key, now)
            self._bind_ungated()
            if self._version == before:
                return

    def apply(self, key: str, actions: Iterable[Action], now: datetime) -> None:
        obj = self.jobs.get(key)
        if obj is None:
            return
        for action in actions:
            if isinstance(action, WriteStatus):
                # An unchanged status is not written (and the parsed job is kept as it is).
                record = self.training_job(key)
                if (
                    record is not None
                    and record.view is not None
                    and action.status == record.view.status
                ):
                    continue
                wire = action.status.model_dump(mode="json", by_alias=True, exclude_none=True)
                if wire != obj.get("status"):
                    obj["status"] = wire
                    version = self._bump()
                    obj["metadata"]["resourceVersion"] = version
                    self.recorded.writes += 1
                    status = action.status
                    if (
                        record is not None
                        and record.view is not None
                        and isinstance(status, TrainingJobStatus)
                    ):
                        # Only the status changed: keep the parsed spec rather than parse it again.
                        view = dataclasses.replace(record.view, status=status)
                        self._records[key] = (version, dataclasses.replace(record, view=view))
                    done = wire.get("phase") in ("Succeeded", "Failed") or wire.get("placement")
                    self._wait(key, not done)
                    (
                        self._holding.add
                        if wire.get("phase") in HOLDING_PHASES
                        else self._holding.discard
                    )(key)
            elif isinstance(action, DeletePod):
                self._remove_pod(f"{obj['metadata']['namespace']}/{action.name}")
            elif isinstance(action, ReleaseAssumed):
                self._ledger.forget(ledger_owner(key, action.attempt))
            elif isinstance(action, CreateWorker):
                self._create_worker(key, obj, action)
            elif isinstance(action, Nominate):
                pod = self.pods.get(f"{obj['metadata']['namespace']}/{action.name}")
                if pod is not None and pod["status"].get("nominatedNodeName") != action.node:
                    pod["status"]["nominatedNodeName"] = action.node
                    self._touch(pod)
            elif isinstance(action, Ungate):
                pod = self.pods.get(f"{obj['metadata']['namespace']}/{action.name}")
                if pod is not None and pod["spec"].get("schedulingGates"):
                    pod["spec"]["schedulingGates"] = []
                    self._touch(pod)
            elif isinstance(action, AnnotatePod):
                pod = self.pods.get(f"{obj['metadata']['namespace']}/{action.name}")
                if pod is not None:
                    annotations = pod["metadata"].setdefault("annotations", {})
                    if any(annotations.get(k) != v for k, v in action.annotations):
                        annotations.update(dict(action.annotations))
                        self._touch(pod)
            elif isinstance(action, CallHook):
                self._call_hook(obj["metadata"]["namespace"], action)
            elif isinstance(action, Emit):
                self.recorded.events.append((key, action))
            elif isinstance(action, RequeueAfter):
                self.due[key] = now + timedelta(seconds=action.seconds)
            elif isinstance(action, (WantsPlacement, EnsureService)):
                pass  # the pass runs in `settle`; a Service has no meaning here

    # -- internals ------------------------------------------------------------------------------

    def _call_hook(self, namespace: str, action: CallHook) -> None:
        """The runtime's hook caller, at once: a 200's answer becomes the pod's annotations."""
        self.hook_calls.append(action)
        if self.hook is None:
            return
        status, body = self.hook(action)
        annotations, _ = http_ack(action.request_id, status, body)
        if annotations is not None:
            self.annotate(namespace, action.pod, annotations)

    def _create_worker(self, key: str, obj: Obj, action: CreateWorker) -> None:
        record = self.training_job(key)
        if record is None or record.view is None or record.request is None:
            return
        view = record.view
        placement = view.status.placement
        pool = self.pool(placement.pool) if placement else None
        if pool is None:
            return
        name = worker_pod_name(view.name, action.index, action.attempt, action.replacement)
        pod_key = f"{view.namespace}/{name}"
        if pod_key in self.pods:
            return
        requests = record.request.worker_requests(pool.spec.resource_name)
        self._ledger.assume(
            ledger_owner(key, action.attempt), view.namespace, {name: action.node}, requests
        )
        pod = {
            "metadata": {
                "name": name,
                "namespace": view.namespace,
                "ownerReferences": [{"kind": "TrainingJob", "uid": view.uid, "controller": True}],
                "labels": {
                    JOB_LABEL: view.name,
                    WORKER_INDEX_LABEL: str(action.index),
                    RESTART_LABEL: str(action.attempt),
                    **({REPLACEMENT_LABEL: str(action.replacement)} if action.replacement else {}),
                },
                "annotations": {"corral.dev/node": action.node},
            },
            "spec": gated_spec("worker", requests),
            "status": {"phase": "Pending"},
        }
        self.pods[pod_key] = pod
        self._owned.setdefault(view.uid, set()).add(pod_key)
        self._touch(pod)

    def _bind_ungated(self) -> None:
        self.bind_ungated()

    def fits(self, pod: Obj, node: str) -> bool:
        """Whether the pod still fits its node (what kube-scheduler checks as it binds)."""
        record = self._snapshot.nodes.get(node)
        if record is None:
            return False
        mine = pod_requests(pod["spec"])
        used = dict(self._snapshot.usage.get(node, {}))
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key in self._snapshot.pods and self._snapshot.pods[key].counted:
            for name, amount in self._snapshot.pods[key].requests.items():
                used[name] = used.get(name, 0) - amount
        return all(
            used.get(name, 0) + amount <= record.allocatable.get(name, 0)
            for name, amount in mine.items()
        )

    def _touch(self, pod: Obj) -> None:
        meta = pod["metadata"]
        pod_key = f"{meta['namespace']}/{meta['name']}"
        spec, phase = pod["spec"], pod["status"]["phase"]
        if not spec.get("schedulingGates") and not spec.get("nodeName") and phase == "Pending":
            self._to_bind.add(pod_key)
        else:
            self._to_bind.discard(pod_key)
        if spec.get("nodeName") and phase == "Pending":
            self._to_start.add(pod_key)
        else:
            self._to_start.discard(pod_key)
        self._read.pop(pod_key, None)
        key = (meta["namespace"], meta["name"])
        record = PodRecord(
            key=key,
            node=pod["spec"].get("nodeName") or meta["annotations"].get("corral.dev/node"),
            requests=self._requests.get(pod_key) or pod_requests(pod["spec"]),
            active=pod["status"]["phase"] not in ("Succeeded", "Failed"),
        )
        self._requests[pod_key] = record.requests
        if self._snapshot.pods.get(key) != record:
            # Most changes (an annotation, a start) leave what the pod counts on its node as it
            # was: re-counting it would refresh the node's indexes for nothing.
            self._snapshot.upsert_record(record)
        self._ledger.observed(key)
        self._bump()

    def _remove_pod(self, pod_key: str) -> None:
        pod = self.pods.pop(pod_key, None)
        if pod is None:
            return
        self._to_bind.discard(pod_key)
        self._to_start.discard(pod_key)
        self._read.pop(pod_key, None)
        self._requests.pop(pod_key, None)
        self._owned.get(_owner(pod) or "", set()).discard(pod_key)
        namespace, _, name = pod_key.partition("/")
        self._snapshot.remove_pod(namespace, name)
        self._ledger.observed((namespace, name), gone=True)
        self._bump()

    def _wait(self, key: str, waiting: bool) -> None:
        if waiting != (key in self._waiting):
            (self._waiting.add if waiting else self._waiting.discard)(key)
            self._waiting_order = None

    def _bump(self) -> str:
        self._version += 1
        return str(self._version)


def gated_spec(container: str, requests: Mapping[str, int]) -> Obj:
    """A pod spec as Corral creates a planned pod: gated, one container asking `requests`."""
    return {
        "schedulingGates": [{"name": PLACEMENT_GATE}],
        "containers": [
            {
                "name": container,
                "resources": {
                    "requests": {
                        k: str(v) if k != "cpu" else f"{v}m"
                        for k, v in requests.items()
                        if k != "pods"
                    }
                },
            }
        ],
    }


def _owner(pod: Obj) -> str | None:
    refs = pod["metadata"].get("ownerReferences") or []
    return next((ref["uid"] for ref in refs if ref.get("controller")), None)


def _job_key(pod: Obj) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['labels'][JOB_LABEL]}"
