"""The discrete-event simulator: simulated time drives the operator's own decisions.

The cluster is `InMemoryCluster`: the SAME scheduling pass, ledger and TrainingJob lifecycle the
operator runs, their typed actions applied to in-memory objects. This module plays the rest of the
world, in simulated time:

- users submit the workload's jobs at their submit times;
- kube-scheduler binds an ungated worker to its planned node, the kubelet starts it;
- the workload runs: a gang whose workers all run finishes after its remaining run time on the
  pool's accelerator (`WorkloadJob.run_seconds`), or a worker fails once when the row asks
  (`failAfter`); an attempt that ends early keeps the work up to its last checkpoint;
- the cloud: a spot trace per zone (`corral.sim.spot`) reclaims spot hosts (a termination notice
  `NOTICE_SECONDS` ahead) and gives them back;
- time passes: a job's `RequeueAfter` wakes it; the fleet is sampled every `tick` seconds;
- inference load (`corral.sim.services`): each InferenceService begins when its trace does, its
  autoscaler ticks every `autoscaler_tick` seconds on what the serving model would report, and
  its replicas compete with the gangs for the same devices (the same snapshot and ledger); the
  service is deleted when its last request has been served.

Deterministic: the same inputs and seed give the same decisions, in the same order (events at
one time are handled in the order they were scheduled; jobs are reconciled in key order).
`events` counts what the heap delivered (arrivals, finishes, failures, wake-ups, spot changes,
notices, reclaims, recoveries, ticks); each may cost several reconciles and a scheduling pass.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from corral.api.gpupool import GPUPool
from corral.api.selection import CapacityType
from corral.cost.chargeback import Chargeback, ChargeKey
from corral.cost.charges import ZERO, Charge, Rates
from corral.fleet.status import device_figures
from corral.placement import NoFit, Placement, PlacementRequest
from corral.placement.baselines import POLICIES
from corral.scheduling.actions import AnnotatePod, CreateWorker, DeletePod, Ungate, WantsPlacement
from corral.sdk import protocol
from corral.sim.inference import ServiceLoad
from corral.sim.memory import InMemoryCluster
from corral.sim.results import Decision, JobOutcome, RunResult, Series
from corral.sim.services import SimulatedService
from corral.sim.spot import SpotTrace
from corral.sim.workload import WorkloadJob, priority_classes, training_job

EPOCH = datetime(2026, 12, 1, tzinfo=UTC)
"""Simulated time 0 (a Tuesday, 00:00 UTC: hourly carbon schedules are read at UTC hours)."""
NOTICE_SECONDS = 120.0
"""A spot termination notice comes this long before the host is reclaimed (AWS gives two
minutes)."""
TERMINATING_TAINT = {"key": "corral.dev/terminating", "effect": "NoSchedule"}
ZONE_LABEL = "topology.kubernetes.io/zone"

# Event kinds (events at one moment are handled in the order they were scheduled).
ARRIVE, FINISH, FAIL, EXIT, ACK, WAKE, SPOT, NOTICE, RECLAIM, RECOVER, TICK = range(11)
SERVE, SCALE, READY, SERVICE_WAKE = range(11, 15)
EVENT_NAMES = (
    "arrive", "finish", "fail", "exit", "checkpoint", "wake", "spot", "notice", "reclaim",
    "recover", "tick", "serve", "scale", "ready", "service-wake",
)  # fmt: skip
AUTOSCALER_TICK_SECONDS = 15.0
"""The operator's default autoscaler interval (`corral run --autoscaler-interval`)."""
EXIT_SPACING = 0.001
"""Workers of a finishing gang exit in index order this far apart: as on a real cluster, each
exit is seen (and may free capacity for the queue) before the next."""


@dataclass
class _Run:
    """A job's progress, which only the simulated workload knows."""

    job: WorkloadJob
    outcome: JobOutcome
    done: float = 0.0
    """Share of the job completed as of its last checkpoint."""
    attempt: int | None = None
    """The attempt whose work clock runs (all its workers running)."""
    clock: int = 0
    """Bumped each time the work clock starts: a worker replaced in place restarts the clock
    within the same attempt, and events of the earlier run (its finish, a checkpoint it was
    writing) are stale."""
    started: float = 0.0
    seconds: float = 0.0
    """Run time of the whole job on the running attempt's accelerator."""
    pool: str = ""
    nodes: tuple[str, ...] = ()
    failed_once: bool = False
    deferred_since: float | None = None
    saved: float = 0.0
    """Seconds of the running attempt kept by its newest acknowledged checkpoint."""


@dataclass
class Options:
    policy: str = "corral"
    seed: int = 0
    tick: float | None = None
    """Seconds between samples of the fleet (default: the arrival window / 300, between a minute
    and an hour; five times that once arrivals have ended)."""
    max_seconds: float | None = None
    """Stop here even if jobs are still running (default: when every job has ended)."""
    epoch: datetime = EPOCH
    spot: Sequence[SpotTrace] = ()
    progress: Callable[[float, float], None] | None = None
    """Called now and then with (simulated seconds, expected end) for a progress bar."""
    checkpoint_write_seconds: float = 30.0
    """How long the simulated workload takes to write a checkpoint it is asked for."""
    services: Sequence[ServiceLoad] = ()
    """InferenceServices and their loads (`corral.sim.inference`)."""
    autoscaler_tick: float = AUTOSCALER_TICK_SECONDS
    """Seconds between autoscaler ticks (the operator's `--autoscaler-interval`)."""


@dataclass(order=True)
class _Event:
    time: float
    order: int
    kind: int = field(compare=False)
    subject: Any = field(compare=False)


class Simulation:
    def __init__(
        self,
        nodes: Sequence[dict[str, Any]],
        pools: Sequence[GPUPool],
        jobs: Sequence[WorkloadJob],
        options: Options | None = None,
    ):
        self.options = options or Options()
        if self.options.policy not in POLICIES:
            raise ValueError(
                f"unknown policy {self.options.policy!r} (one of {', '.join(POLICIES)})"
            )
        self.policy: Callable[[Any, PlacementRequest], Placement | NoFit] = POLICIES[
            self.options.policy
        ]
        """The placement policy inside a pool; the pass applies each job's placementObjective."""
        self.cluster = InMemoryCluster(nodes, pools)
        for priority_class in priority_classes(jobs):
            self.cluster.put(priority_class)  # what an admin defines for the rows' priorities
        self.pools = {pool.metadata.name or "": pool for pool in pools}
        self.node_objects = {node["metadata"]["name"]: node for node in nodes}
        self.jobs = sorted(jobs, key=lambda j: (j.submit, j.key))
        self.runs: dict[str, _Run] = {}
        self.rng = random.Random(self.options.seed)
        self.heap: list[_Event] = []
        self.order = 0
        self.now = 0.0
        self.events = 0
        self.dirty: set[str] = set()
        self.wants_pass = False
        self.chargeback = Chargeback()
        self.decisions: list[Decision] = []
        self.series = Series()
        self.services = [
            SimulatedService(load, self.cluster, self._charge_devices)
            for load in sorted(self.options.services, key=lambda load: load.key)
        ]
        self.dirty_services: set[int] = set()
        self.service_wakes: dict[int, float] = {}
        """Service -> when its pending wake-up (a RequeueAfter) is due."""
        self.arrival_end = max(
            [self.jobs[-1].submit if self.jobs else 0.0, *(s.load.end for s in self.services)]
        )
        self.allocated_seconds = 0.0
        self.reclaimed: set[str] = set()
        self.spot_hosts: dict[str, list[str]] = {}
        self.capacity = sum(view.total_devices for view in self.cluster.snapshot.pools.values())
        self.notes: list[str] = []
        self.losses: list[tuple[float, float]] = []
        self.running = 0
        """Jobs whose work clock runs."""
        self.finished = 0

    # -- the event heap ---------------------------------------------------------------------------

    def at(self, when: float, kind: int, subject: Any = None) -> None:
        self.order += 1
        heapq.heappush(self.heap, _Event(when, self.order, kind, subject))

    def when(self, seconds: float) -> datetime:
        return self.options.epoch + timedelta(seconds=seconds)

    # -- running ------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.perf_counter()
        for index, job in enumerate(self.jobs):
            self.at(job.submit, ARRIVE, index)
        for index, service in enumerate(self.services):
            self.at(service.load.start, SERVE, index)
        self._plan_spot()
        self.tick = self.options.tick or min(3600.0, max(60.0, self.arrival_end / 300.0))
        self.at(0.0, TICK)
        limit = self.options.max_seconds
        expected_end = max(self.arrival_end, 1.0)
        while self.heap:
            event = heapq.heappop(self.heap)
            if limit is not None and event.time > limit:
                self.now = limit
                break
            idle = not self.heap and not self.dirty and not self.wants_pass
            if event.kind == TICK and (self._all_done() or idle):
                # Done, or nothing but the clock is left: no job can change any more.
                self.now = event.time
                self._sample()
                break
            self.now = event.time
            self.events += 1
            self._handle(event)
            # Every event at this moment first, then the operator reacts once.
            if not self.heap or self.heap[0].time != self.now:
                self._settle()
            if self.options.progress is not None and self.events % 2000 == 0:
                self.options.progress(self.now, expected_end)
        self._close_running()
        return self._result(time.perf_counter() - started)

    def _all_done(self) -> bool:
        return self.finished == len(self.jobs) and all(s.ended for s in self.services)

    def _handle(self, event: _Event) -> None:
        kind = event.kind
        if kind == ARRIVE:
            self._arrive(self.jobs[event.subject])
        elif kind in (FINISH, FAIL):
            key, clock = event.subject
            run = self.runs[key]
            if clock is None:
                self._exit_at(key, 0 if kind == FINISH else 1)
                return
            if run.attempt is None or run.clock != clock:
                return  # the attempt ended (or a worker was replaced in place) meanwhile
            attempt = run.attempt
            if kind == FAIL:
                run.failed_once = True
            self._exit(key, attempt, 0 if kind == FINISH else 1)
        elif kind == EXIT:
            self._worker_exit(*event.subject)
        elif kind == ACK:
            self._acknowledge(*event.subject)
        elif kind == WAKE:
            self.dirty.add(event.subject)
            self.wants_pass = True
        elif kind == SPOT:
            self._spot_change(*event.subject)
        elif kind == NOTICE:
            self._notice(event.subject)
        elif kind == RECLAIM:
            self._reclaim(event.subject)
        elif kind == RECOVER:
            self._recover(event.subject)
        elif kind == TICK:
            self._sample()
            after = self.now >= self.arrival_end and self.options.tick is None
            self.at(self.now + self.tick * (5 if after else 1), TICK)
        elif kind in (SERVE, SCALE, READY, SERVICE_WAKE):
            self._service_event(kind, event.subject)

    def _service_event(self, kind: int, subject: Any) -> None:
        index = subject if kind != READY else subject[0]
        service = self.services[index]
        if service.ended:
            return
        if kind == SERVE:
            service.started = True
            self.dirty_services.add(index)
            self.at(self.now + self.options.autoscaler_tick, SCALE, index)
        elif kind == SCALE:
            if self.now >= service.load.end and service.done():
                # Its last request is served: the user deletes the service.
                self.wants_pass |= service.end(self.now)
                return
            service.tick(self.now)
            self.dirty_services.add(index)
            self.at(self.now + self.options.autoscaler_tick, SCALE, index)
        elif kind == READY:
            if service.ready(subject[1]):
                self.dirty_services.add(index)
        elif kind == SERVICE_WAKE:
            if self.service_wakes.get(index) == self.now:
                del self.service_wakes[index]
            self.dirty_services.add(index)

    def _exit_at(self, key: str, code: int) -> None:
        """A replayed run ends (or fails) at a recorded time, whatever it has done."""
        run = self.runs[key]
        if run.attempt is None:
            self.notes.append(f"{key}: its workers were to exit at {self.now:.0f}s but none ran")
            return
        if code:
            run.failed_once = True
        self._exit(key, run.attempt, code)

    def _exit(self, key: str, attempt: int, code: int) -> None:
        """The run ends: every worker exits 0, one after the other; or worker 0 exits 1."""
        workers = 1 if code else self.runs[key].job.workers
        for index in range(workers):
            self.at(self.now + index * EXIT_SPACING, EXIT, (key, attempt, index, code))

    def _worker_exit(self, key: str, attempt: int, index: int, code: int) -> None:
        run = self.runs[key]
        if run.attempt != attempt:
            return  # the attempt ended meanwhile
        name = self._worker_names(key, attempt)[index]
        self.cluster.finish(run.job.namespace, name, code, self.when(self.now))
        self.dirty.add(key)
        self.wants_pass = True  # a pod ended: capacity may have freed

    def _arrive(self, job: WorkloadJob) -> None:
        tj = training_job(job, self.options.epoch)
        body = tj.model_dump(mode="json", by_alias=True, exclude_none=True)
        key = self.cluster.submit(body, self.when(self.now))
        outcome = JobOutcome(
            key=key,
            namespace=job.namespace,
            team=job.team,
            devices=job.devices,
            submit=self.now,
            deadline=job.deadline,
        )
        self.runs[key] = _Run(job, outcome)
        self.dirty.add(key)
        if job.finish_at is not None:
            self.at(job.finish_at, FINISH, (key, None))
        if job.fail_at is not None:
            self.at(job.fail_at, FAIL, (key, None))

    # -- the operator's reaction --------------------------------------------------------------------

    def _settle(self) -> None:
        """Reconcile what changed and run scheduling passes until the operator is quiet."""
        now = self.when(self.now)
        for _ in range(1000):
            if not self.dirty and not self.wants_pass and not self.dirty_services:
                return
            if self.wants_pass:
                # Capacity may have freed: services waiting for a replica look again first
                # (replicas are placed as soon as they are wanted, outside the pass).
                self.dirty_services.update(i for i, s in enumerate(self.services) if s.blocked)
            while self.dirty or self.dirty_services:
                self._reconcile_services(now)
                for key in sorted(self.dirty):
                    self.dirty.discard(key)
                    self._reconcile(key, now)
                self._kube_scheduler_and_kubelet(now)
            if self.wants_pass:
                self.wants_pass = False
                for key in self.cluster.run_pass(now, self.policy):
                    self._placed(key)
                    self.dirty.add(key)
                for key in sorted({*self.cluster.due, *self.cluster.failed_by_pass}):
                    self._observe(key)  # a carbon deferral starts, or the job can never fit
            self._wake_when_due()
        raise RuntimeError(f"the operator did not settle at t={self.now}s (a livelock: a bug)")

    def _reconcile(self, key: str, now: datetime) -> None:
        actions = self.cluster.reconcile(key, now)
        changed = False
        for action in actions:
            if isinstance(action, (CreateWorker, DeletePod, Ungate)):
                changed = True
            elif isinstance(action, WantsPlacement):
                self.wants_pass = True
            if isinstance(action, DeletePod):
                self.wants_pass = True  # capacity may have freed
            elif isinstance(action, AnnotatePod):
                request = dict(action.annotations).get(protocol.REQUESTED)
                run = self.runs[key]
                if request is not None and run.attempt is not None:
                    when = self.now + self.options.checkpoint_write_seconds
                    self.at(when, ACK, (key, run.clock, action.name, request))
        self._observe(key)
        if changed:
            self.dirty.add(key)

    def _reconcile_services(self, now: datetime) -> None:
        for index in sorted(self.dirty_services):
            self.dirty_services.discard(index)
            service = self.services[index]
            if not service.started:
                continue
            reaction = service.reconcile(self.now, now)
            if reaction.freed:
                self.wants_pass = True
            for when, pod in reaction.ready_at:
                self.at(when, READY, (index, pod))
            if reaction.requeue is not None and index not in self.service_wakes:
                self.service_wakes[index] = self.now + reaction.requeue
                self.at(self.now + reaction.requeue, SERVICE_WAKE, index)

    def _wake_when_due(self) -> None:
        """A decision asked to look at a job again later (RequeueAfter): wake it then."""
        for key, when in sorted(self.cluster.due.items()):
            seconds = (when - self.options.epoch).total_seconds()
            self.at(max(seconds, self.now + 0.001), WAKE, key)
        self.cluster.due.clear()

    def _acknowledge(self, key: str, clock: int, pod: str, request: str) -> None:
        """The workload wrote the checkpoint it was asked for (as `corral.sdk` does): it says so
        on its pod, and the work done so far is kept."""
        run = self.runs[key]
        if run.attempt is None or run.clock != clock:
            return  # the attempt ended before the checkpoint was written
        run.saved = self.now - run.started
        step = round((run.done + run.saved / run.seconds) * run.job.duration) if run.seconds else 0
        self.cluster.annotate(
            run.job.namespace, pod, {protocol.COMPLETED: request, protocol.STEP: str(step)}
        )
        self.dirty.add(key)

    def _kube_scheduler_and_kubelet(self, now: datetime) -> None:
        for key in self.cluster.bind_ungated():
            self.dirty.add(key)
        for key in self.cluster.start_bound(now):
            self.dirty.add(key)

    def _placed(self, key: str) -> None:
        record = self.cluster.training_job(key)
        if record is None or record.view is None or record.view.status.placement is None:
            return
        placement = record.view.status.placement
        run = self.runs[key]
        self.decisions.append(Decision(self.now, key, placement.pool, tuple(placement.nodes)))
        if run.outcome.first_placed is None:
            run.outcome.first_placed = self.now
        if run.deferred_since is not None:
            run.outcome.deferred_seconds += self.now - run.deferred_since
            run.deferred_since = None
        run.outcome.pool = placement.pool

    def _observe(self, key: str) -> None:
        """Start or end the work clock of a job from what its current pods do."""
        record = self.cluster.training_job(key)
        run = self.runs[key]
        if record is None or record.view is None:
            return
        status = record.view.status
        run.outcome.queued_seconds = status.queued_seconds
        run.outcome.restarts = status.restarts
        run.outcome.interruptions = status.interruptions
        if status.deferred_until is not None and run.deferred_since is None:
            run.deferred_since = self.now
        if status.phase in ("Succeeded", "Failed"):
            if run.attempt is not None:
                self._end_attempt(run, completed=status.phase == "Succeeded")
            if run.outcome.finished is None:
                run.outcome.finished = self.now
                run.outcome.failed = status.phase == "Failed"
                self.finished += 1
            return
        pods = self.cluster.job_pods(key)
        if run.attempt is not None:
            current = [p for p in pods if p.restart == run.attempt]
            ended = len(current) < run.job.workers or any(
                p.phase not in ("Running", "Succeeded") for p in current
            )
            if ended:  # a worker failed or is gone (workers that exited 0 are finishing)
                self._end_attempt(run, completed=False)
        placement = status.placement
        if run.attempt is None and placement is not None:
            current = [p for p in pods if p.restart == status.attempt]
            if len(current) == run.job.workers and all(p.phase == "Running" for p in current):
                self._start_attempt(run, status.attempt, placement.pool, tuple(placement.nodes))

    def _start_attempt(self, run: _Run, attempt: int, pool: str, nodes: tuple[str, ...]) -> None:
        accelerator = self.pools[pool].spec.accelerator.type
        run.attempt, run.started, run.pool, run.nodes = attempt, self.now, pool, nodes
        run.clock += 1
        run.saved = 0.0
        self.running += 1
        run.seconds = run.job.run_seconds(accelerator)
        remaining = max(0.0, (1.0 - run.done) * run.seconds)
        key = run.outcome.key
        if run.job.finish_at is not None:
            return  # a replay: the run ends at its recorded time
        self.at(self.now + remaining, FINISH, (key, run.clock))
        fail_after = run.job.fail_after
        if fail_after is not None and not run.failed_once and fail_after < remaining:
            self.at(self.now + fail_after, FAIL, (key, run.clock))

    def _end_attempt(self, run: _Run, completed: bool) -> None:
        elapsed = self.now - run.started
        job = run.job
        if completed:
            kept = elapsed
            run.done = 1.0
        else:
            # What the workload kept: its own periodic checkpoints (every checkpointSeconds of
            # running) or the newest checkpoint it wrote when the operator asked.
            every = job.checkpoint_seconds
            periodic = (elapsed // every) * every if every > 0 else 0.0
            kept = min(elapsed, max(periodic, run.saved))
            run.done = min(1.0, run.done + kept / run.seconds) if run.seconds else run.done
            lost = (elapsed - kept) * job.devices
            run.outcome.lost_device_seconds += lost
            if lost > 0:
                self.losses.append((self.now, lost))
        rate = dict(job.throughput).get(self.pools[run.pool].spec.accelerator.type)
        if rate is None:
            rate = self.pools[run.pool].spec.accelerator.peak_tflops or 1.0
        run.outcome.work_units += elapsed * job.devices / 3600.0 * rate
        self._charge(run, run.started, self.now)
        run.attempt = None
        self.running -= 1

    def _charge(self, run: _Run, start: float, end: float) -> None:
        job = run.job
        total = ZERO
        for node in run.nodes:
            capacity_type = self.cluster.snapshot.capacity_type_of(node) or "on-demand"
            total += self._charge_devices(
                job.namespace, job.team, run.pool, capacity_type, job.devices_per_worker, start, end
            )
        run.outcome.charge += total

    def _charge_devices(
        self,
        namespace: str,
        team: str,
        pool: str,
        capacity_type: str,
        devices: int,
        start: float,
        end: float,
    ) -> Charge:
        """Devices held on one node from `start` to `end`: charged, and counted in the fleet's
        allocated device-time over the arrival window."""
        kind = cast(CapacityType, capacity_type)
        charge = Rates.of(self.pools[pool].spec, kind).charge(
            devices, self.when(start), self.when(end)
        )
        self.chargeback.add(ChargeKey(namespace, team, pool, kind), charge)
        clipped = max(0.0, min(end, self.arrival_end) - start)
        self.allocated_seconds += clipped * devices
        return charge

    def _close_running(self) -> None:
        for run in self.runs.values():
            if run.attempt is not None:
                self._end_attempt(run, completed=False)
        for service in self.services:
            if not service.ended:
                service.end(self.now)

    def _worker_names(self, key: str, attempt: int) -> list[str]:
        """The running workers of the attempt, by index (a worker replaced in place has its own
        name)."""
        pods = [p for p in self.cluster.job_pods(key) if p.restart == attempt]
        return [p.name for p in sorted(pods, key=lambda p: p.index)]

    # -- spot ---------------------------------------------------------------------------------------

    def _plan_spot(self) -> None:
        traces = list(self.options.spot)
        if not traces:
            return
        snapshot = self.cluster.snapshot
        for name in sorted(snapshot.nodes):
            if snapshot.capacity_type_of(name) == "spot":
                zone = snapshot.nodes[name].labels.get(ZONE_LABEL, "")
                self.spot_hosts.setdefault(zone, []).append(name)
        if not self.spot_hosts:
            self.notes.append("spot traces given, but the fleet has no spot hosts")
            return
        end = self.arrival_end + 7 * 86400.0
        for position, zone in enumerate(sorted(self.spot_hosts)):
            trace = traces[position % len(traces)]
            previous = None
            tick = 0
            while tick * trace.gap_seconds <= end:
                share = trace.share(tick * trace.gap_seconds)
                if share != previous:
                    self.at(tick * trace.gap_seconds, SPOT, (zone, share))
                    previous = share
                tick += 1

    def _spot_change(self, zone: str, share: float) -> None:
        hosts = self.spot_hosts[zone]
        target = round(share * len(hosts))
        down = [h for h in hosts if h in self.reclaimed or self._noticed(h)]
        up = [h for h in hosts if h not in down]
        if len(up) > target:
            for host in self.rng.sample(up, len(up) - target):
                self.at(self.now, NOTICE, host)
        elif len(up) < target:
            back = [h for h in hosts if h in self.reclaimed]
            for host in self.rng.sample(back, min(len(back), target - len(up))):
                self.at(self.now, RECOVER, host)

    def _noticed(self, host: str) -> bool:
        node = self.node_objects[host]
        return TERMINATING_TAINT in (node.get("spec") or {}).get("taints", [])

    def _notice(self, host: str) -> None:
        node = self.node_objects[host]
        spec = node.setdefault("spec", {})
        spec["taints"] = [*spec.get("taints", []), dict(TERMINATING_TAINT)]
        self.cluster.set_node(node)
        self.dirty.update(self.cluster.jobs_on(host))  # the operator reacts to the node's change
        self.at(self.now + NOTICE_SECONDS, RECLAIM, host)

    def _reclaim(self, host: str) -> None:
        for key in self.cluster.remove_node(host):
            self.dirty.add(key)
        for index, service in enumerate(self.services):
            if service.remove_node(host, self.now):
                self.dirty_services.add(index)
        self.reclaimed.add(host)
        self.wants_pass = True

    def _recover(self, host: str) -> None:
        node = self.node_objects[host]
        taints = [t for t in (node.get("spec") or {}).get("taints", []) if t != TERMINATING_TAINT]
        node["spec"] = {**node.get("spec", {}), "taints": taints}
        self.reclaimed.discard(host)
        self.cluster.set_node(node)
        self.wants_pass = True

    # -- measuring ----------------------------------------------------------------------------------

    def _sample(self) -> None:
        allocated = capacity = free = whole_free = 0
        for view in self.cluster.snapshot.pools.values():
            figures = device_figures(view)
            allocated += figures.allocated
            capacity += figures.allocatable
            free += figures.free
            whole_free += figures.whole_free
        series = self.series
        series.time.append(self.now)
        series.allocated.append(allocated)
        series.capacity.append(capacity)
        series.fragmentation.append(round(1 - whole_free / free, 4) if free else 0.0)
        series.running.append(self.running)
        series.queued.append(len(self.runs) - self.running - self.finished)
        series.spot_up.append(sum(len(h) for h in self.spot_hosts.values()) - len(self.reclaimed))

    def _result(self, wall: float) -> RunResult:
        unfinished = sum(1 for r in self.runs.values() if r.outcome.finished is None)
        if unfinished:
            self.notes.append(f"{unfinished} job(s) had not finished when the simulation stopped")
        currencies = {p.spec.pricing.currency for p in self.pools.values()}
        return RunResult(
            policy=self.options.policy,
            seed=self.options.seed,
            arrival_end=self.arrival_end,
            end=self.now,
            events=self.events,
            wall_seconds=wall,
            jobs=[self.runs[k].outcome for k in sorted(self.runs)],
            series=self.series,
            chargeback=self.chargeback,
            decisions=self.decisions,
            allocated_device_seconds=self.allocated_seconds,
            capacity_device_seconds=self.capacity * self.arrival_end,
            currency=sorted(currencies)[0] if currencies else "USD",
            notes=self.notes,
            losses=self.losses,
            services=[service.outcome() for service in self.services],
        )


def simulate(
    nodes: Sequence[dict[str, Any]],
    pools: Sequence[GPUPool],
    jobs: Sequence[WorkloadJob],
    options: Options | None = None,
) -> RunResult:
    return Simulation(nodes, pools, jobs, options).run()
