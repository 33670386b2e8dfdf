"""The chaos run of the operator on the local fleet (e2e/controllers/test_chaos.py; `make bench`
runs the long mode): jobs arrive, finish and fail while operator replicas are SIGKILLed at random moments,
kube-apiserver is restarted once, and the leader is killed; samplers watch the invariants all
along.

Two replicas run `corral run --leader-elect` like the chart's Deployment; a supervisor restarts a
replica that exited or was killed, as the kubelet would. Observed, from outside the operator:

- devices: at every sample, per node, the GPUs of active worker pods bound there, and of those
  Corral planned there (its placement annotation, bound or still gated), fit the node;
- duplicates: never two worker pods for one (job, index, attempt);
- writes by a non-leader: each replica's /metrics is scraped; a replica that reports
  `corral_leader 0` and has never led must have sent no write (create/update/patch/delete other
  than its Lease), and its writes never grow between two scrapes that both say it is not leading;
- failover: from each SIGKILL of the leader until the Lease names another holder;
- convergence: after the chaos, every job reaches Succeeded or Failed, no pod is left active, and
  every pod belongs to an existing job.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.api.names import JOB_LABEL, NODE_ANNOTATION, RESTART_LABEL, WORKER_INDEX_LABEL
from corral.localfleet.stages import EXIT_CODE_ANNOTATION
from harness import Cluster, ManagedProcess
from operator_support import free_port

GPU = "nvidia.com/gpu"
WRITE_VERBS = ("create", "update", "patch", "delete")


@dataclass(frozen=True)
class Mode:
    name: str
    window: float
    """Seconds of chaos (jobs arrive, replicas are killed)."""
    kills: int
    jobs: int
    lease: tuple[float, float, float]
    """Lease duration, renew deadline, retry period."""
    converge_timeout: float
    apiserver_grace: float
    """Seconds kube-apiserver may drain on SIGTERM before it is killed."""


FAST = Mode(
    "fast", window=45, kills=20, jobs=14, lease=(4.0, 3.0, 0.5), converge_timeout=120,
    apiserver_grace=3,
)  # fmt: skip
LONG = Mode(
    "long", window=240, kills=40, jobs=60, lease=(15.0, 10.0, 2.0), converge_timeout=400,
    apiserver_grace=70,
)  # fmt: skip


@dataclass
class Replica:
    index: int
    metrics_port: int = 0
    process: ManagedProcess | None = None
    starts: int = 0
    led: bool = False
    last_scrape: tuple[float, float, float] | None = None
    """(leader gauge, writes) at the previous scrape of this process."""


@dataclass
class Report:
    mode: str
    kills: int = 0
    leader_kills: int = 0
    apiserver_restarts: int = 0
    apiserver_down_seconds: float | None = None
    control_plane_revived: dict[str, int] = field(default_factory=dict)
    failovers: list[float] = field(default_factory=list)
    samples: int = 0
    overcommits: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    non_leader_writes: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)
    converge_seconds: float | None = None
    phases: dict[str, int] = field(default_factory=dict)
    replica_starts: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        failovers = sorted(self.failovers)
        return {
            "mode": self.mode,
            "kills": self.kills,
            "leader_kills": self.leader_kills,
            "apiserver_restarts": self.apiserver_restarts,
            "apiserver_down_seconds": self.apiserver_down_seconds,
            "control_plane_revived": self.control_plane_revived,
            "failover_seconds_p50": failovers[len(failovers) // 2] if failovers else None,
            "failover_seconds_max": failovers[-1] if failovers else None,
            "failovers": [round(f, 2) for f in failovers],
            "converge_seconds": self.converge_seconds,
            "samples": self.samples,
            "overcommitted_samples": len(self.overcommits),
            "duplicate_worker_pods": len(self.duplicates),
            "non_leader_writes": len(self.non_leader_writes),
            "orphaned_pods": len(self.orphans),
            "unconverged_jobs": len(self.unconverged),
            "job_phases": self.phases,
            "replica_starts": self.replica_starts,
            "details": {
                "overcommits": self.overcommits[:5],
                "duplicates": self.duplicates[:5],
                "non_leader_writes": self.non_leader_writes[:5],
                "orphans": self.orphans[:5],
                "unconverged": self.unconverged[:5],
                "errors": self.errors[:5],
            },
        }


class Chaos:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        pool: str,
        capacity: dict[str, int],
        mode: Mode,
        log_dir: Path,
        seed: int = 8,
    ):
        self.cluster = cluster
        self.namespace = namespace
        self.pool = pool
        self.capacity = capacity
        self.mode = mode
        self.log_dir = log_dir
        self.rng = random.Random(seed)
        self.report = Report(mode.name)
        self.replicas = [Replica(0), Replica(1)]
        self.lease_name = f"chaos-{namespace[-4:]}"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.fail_jobs: set[str] = set()
        self.running_since: dict[str, float] = {}
        self.exited: set[str] = set()
        self.control_plane = ControlPlane(cluster)

    # -- replicas ---------------------------------------------------------------------------------

    def start_replica(self, replica: Replica) -> None:
        replica.metrics_port = free_port()
        replica.starts += 1
        self.report.replica_starts += 1
        duration, deadline, retry = self.mode.lease
        process = self.cluster.process(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                f"--metrics-port={replica.metrics_port}",
                f"--health-port={free_port()}",
                "--leader-elect",
                f"--leader-election-namespace={self.namespace}",
                f"--leader-election-id={self.lease_name}",
                f"--leader-election-lease-duration={duration}",
                f"--leader-election-renew-deadline={deadline}",
                f"--leader-election-retry-period={retry}",
                "--usage-refresh=5",
            ],
            log_path=self.log_dir / f"replica-{replica.index}-{replica.starts}.log",
            name=f"corral-{replica.index}",
        )
        # The identity is the pod name (HOSTNAME) plus a random suffix.
        process.env = {**process.env, "HOSTNAME": f"replica-{replica.index}"}
        replica.process = process.start()
        replica.led = False
        replica.last_scrape = None

    def kill(self, replica: Replica) -> None:
        if replica.process is not None and replica.process.running:
            replica.process.kill()

    def holder(self) -> str | None:
        try:
            lease = self.cluster.kubectl.json(
                "get", "lease", self.lease_name, "-n", self.namespace, "--ignore-not-found"
            )
        except Exception:
            return None
        return (lease or {}).get("spec", {}).get("holderIdentity") or None

    def leader(self) -> Replica | None:
        holder = self.holder() or ""
        for replica in self.replicas:
            if holder.startswith(f"replica-{replica.index}_"):
                return replica
        return None

    # -- threads ----------------------------------------------------------------------------------

    def supervise(self) -> None:
        """Restart replicas that exited (after losing the Lease, or killed)."""
        while not self.stop.is_set():
            for replica in self.replicas:
                if replica.process is None or not replica.process.running:
                    self.start_replica(replica)
            self.control_plane.revive()
            time.sleep(0.2)

    def sample(self) -> None:
        while not self.stop.is_set():
            try:
                self.check_pods()
                for replica in self.replicas:
                    self.check_writes(replica)
            except Exception as exc:  # the API server may be restarting: try again
                self.report.errors.append(f"sample: {exc}"[:200])
            time.sleep(0.4)

    def check_pods(self) -> None:
        pods = self.pods()
        self.report.samples += 1
        bound: Counter[str] = Counter()
        planned: Counter[str] = Counter()
        workers: Counter[tuple[str, str, str]] = Counter()
        for pod in pods:
            meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
            labels = meta.get("labels") or {}
            owner = next(
                (o["uid"] for o in meta.get("ownerReferences") or [] if o.get("controller")), ""
            )
            workers[
                (
                    owner,
                    labels.get(WORKER_INDEX_LABEL, "?"),
                    labels.get(RESTART_LABEL, "?"),
                )
            ] += 1
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            gpus = sum(
                int((c.get("resources") or {}).get("requests", {}).get(GPU, 0))
                for c in spec.get("containers") or []
            )
            if spec.get("nodeName"):
                bound[spec["nodeName"]] += gpus
            node = (meta.get("annotations") or {}).get(NODE_ANNOTATION)
            if node:
                planned[node] += gpus
        for kind, usage in (("bound", bound), ("planned", planned)):
            for node, used in usage.items():
                if node in self.capacity and used > self.capacity[node]:
                    self.report.overcommits.append(f"{kind} {node}: {used} > {self.capacity[node]}")
        for key, count in workers.items():
            if count > 1:
                self.report.duplicates.append(f"{key}: {count} pods")

    def check_writes(self, replica: Replica) -> None:
        process = replica.process
        if process is None or not process.running:
            return
        try:
            text = subprocess.run(
                [
                    "curl",
                    "-s",
                    "--max-time",
                    "1",
                    f"http://127.0.0.1:{replica.metrics_port}/metrics",
                ],
                capture_output=True,
                text=True,
                timeout=3,
            ).stdout
        except subprocess.TimeoutExpired:
            return
        leader, writes, transitions = parse_metrics(text)
        if leader is None:
            return  # not serving yet
        # Leading may start and end between two scrapes (the sampler waits on a kube-apiserver
        # that is down, a leader is killed a second after it won): the replica's own count of
        # transitions says whether it led meanwhile, whatever the scrapes saw.
        if leader == 1 or transitions > 0:
            replica.led = True
        previous = replica.last_scrape
        if leader == 0 and not replica.led and writes > 0:
            self.report.non_leader_writes.append(
                f"replica {replica.index}: {writes:g} writes, never led"
            )
        if (
            previous is not None
            and previous[0] == 0
            and leader == 0
            and previous[2] == transitions
            and writes > previous[1]
        ):
            self.report.non_leader_writes.append(
                f"replica {replica.index}: writes {previous[1]:g} -> {writes:g} while not leading"
            )
        replica.last_scrape = (leader, writes, transitions)

    def finish_pods(self, converge: bool = False) -> None:
        """Workers run a few seconds, then exit: 0, or 1 for worker 0 of a job meant to fail."""
        now = time.monotonic()
        for pod in self.pods():
            meta = pod["metadata"]
            name = meta["name"]
            if (pod.get("status") or {}).get("phase") != "Running" or name in self.exited:
                continue
            since = self.running_since.setdefault(name, now)
            if now - since < (0.5 if converge else self.rng.uniform(2, 6)):
                continue
            job = (meta.get("labels") or {}).get(JOB_LABEL, "")
            index = (meta.get("labels") or {}).get(WORKER_INDEX_LABEL)
            code = 1 if job in self.fail_jobs and index == "0" and not converge else 0
            try:
                self.cluster.core.patch_namespaced_pod(
                    name,
                    self.namespace,
                    {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}},
                )
                self.exited.add(name)
            except Exception as exc:
                self.report.errors.append(f"finish {name}: {exc}"[:200])

    def finisher(self) -> None:
        while not self.stop.is_set():
            try:
                self.finish_pods()
            except Exception as exc:
                self.report.errors.append(f"finisher: {exc}"[:200])
            time.sleep(0.5)

    # -- helpers ----------------------------------------------------------------------------------

    def pods(self) -> list[dict[str, Any]]:
        answer = self.cluster.core.list_namespaced_pod(
            self.namespace, _preload_content=False, _request_timeout=5
        )
        items: list[dict[str, Any]] = json.loads(answer.data)["items"]
        return items

    def jobs(self) -> list[dict[str, Any]]:
        answer = self.cluster.custom.list_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", _request_timeout=5
        )
        items: list[dict[str, Any]] = answer["items"]
        return items

    def create_job(self, index: int) -> None:
        from builders import training_job

        name = f"c{index:03d}"
        workers = self.rng.choice([1, 1, 2, 2, 3])
        gpus = self.rng.choice([4, 8])
        body = training_job(name, self.namespace).workers(workers).gpus(gpus).pool(self.pool).obj()
        if self.rng.random() < 0.25:
            self.fail_jobs.add(name)
            body["spec"]["maxRestarts"] = 0
        else:
            body["spec"]["maxRestarts"] = 1
        body["spec"]["placementTimeoutSeconds"] = 30
        self.cluster.custom.create_namespaced_custom_object(
            "corral.dev", "v1alpha1", self.namespace, "trainingjobs", body
        )

    def restart_apiserver(self) -> None:
        started = time.monotonic()
        self.control_plane.restart("kube-apiserver", grace=self.mode.apiserver_grace)
        self.control_plane.wait_ready()
        self.report.apiserver_down_seconds = time.monotonic() - started
        self.report.apiserver_restarts += 1

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> Report:
        for replica in self.replicas:
            self.start_replica(replica)
        threads = [
            threading.Thread(target=target, daemon=True, name=target.__name__)
            for target in (self.supervise, self.sample, self.finisher)
        ]
        for thread in threads:
            thread.start()
        try:
            self._chaos()
            self._converge()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(10)
            self.control_plane.revive()
            self.report.control_plane_revived = dict(self.control_plane.revived)
            for replica in self.replicas:
                if replica.process is not None:
                    replica.process.stop()
        return self.report

    def _chaos(self) -> None:
        window = self.mode.window
        started = time.monotonic()
        job_times = sorted(self.rng.uniform(0, window * 0.8) for _ in range(self.mode.jobs))
        kill_times = sorted(self.rng.uniform(window * 0.05, window) for _ in range(self.mode.kills))
        apiserver_at = window * 0.5
        created = 0
        while time.monotonic() - started < window or kill_times:
            now = time.monotonic() - started
            while created < len(job_times) and job_times[created] <= now:
                self.create_job(created)
                created += 1
            if apiserver_at is not None and now >= apiserver_at:
                self.restart_apiserver()
                apiserver_at = None  # type: ignore[assignment]
            if kill_times and kill_times[0] <= now:
                kill_times.pop(0)
                self._kill_one()
            time.sleep(0.1)
        while created < len(job_times):
            self.create_job(created)
            created += 1

    def _kill_one(self) -> None:
        leader = self.leader()
        # Half the kills hit the leader (failover), the others any replica (crash-restart).
        target = (
            leader
            if leader is not None and self.rng.random() < 0.5
            else self.rng.choice(self.replicas)
        )
        was_leader = target is leader and leader is not None
        if was_leader:
            # Failover is measured to a standby that is up (its cache synced), not to one that
            # the previous kill left starting.
            standby = next(r for r in self.replicas if r is not target)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                standby.process is not None
                and standby.process.running
                and "cache seeded" in standby.process.logs()
            ):
                time.sleep(0.2)
        killed_at = time.monotonic()
        old_holder = self.holder()
        self.kill(target)
        self.report.kills += 1
        if not was_leader:
            return
        self.report.leader_kills += 1
        # Failover: until another replica holds the Lease (bounded: a stuck election fails later).
        deadline = killed_at + self.mode.lease[0] * 4
        while time.monotonic() < deadline:
            holder = self.holder()
            if holder and holder != old_holder:
                self.report.failovers.append(time.monotonic() - killed_at)
                return
            time.sleep(0.1)
        self.report.errors.append(f"no failover within {self.mode.lease[0] * 4:.0f}s")

    def _converge(self) -> None:
        started = time.monotonic()
        deadline = started + self.mode.converge_timeout
        while time.monotonic() < deadline:
            try:
                self.finish_pods(converge=True)
                jobs = self.jobs()
                pending = [
                    j["metadata"]["name"]
                    for j in jobs
                    if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                ]
                if not pending:
                    self.report.converge_seconds = time.monotonic() - started
                    break
            except Exception as exc:
                self.report.errors.append(f"converge: {exc}"[:200])
            time.sleep(1)
        jobs = self.jobs()
        self.report.phases = dict(
            Counter((j.get("status") or {}).get("phase") or "Pending" for j in jobs)
        )
        self.report.unconverged = [
            f"{j['metadata']['name']}: {(j.get('status') or {}).get('phase')}"
            for j in jobs
            if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        # Orphans: every pod belongs to an existing job; none is left active once all are done.
        uids = {j["metadata"]["uid"] for j in jobs}
        time.sleep(2)  # let the last deletions land
        for pod in self.pods():
            meta = pod["metadata"]
            owners = [o["uid"] for o in meta.get("ownerReferences") or [] if o.get("controller")]
            active = (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            if not owners or owners[0] not in uids:
                self.report.orphans.append(f"{meta['name']}: no owning job")
            elif active and not meta.get("deletionTimestamp") and not self.report.unconverged:
                self.report.orphans.append(f"{meta['name']}: active after its job finished")


def parse_metrics(text: str) -> tuple[float | None, float, float]:
    """(corral_leader, writes other than the Lease, corral_leader_transitions_total) from a
    /metrics page."""
    leader: float | None = None
    writes = 0.0
    transitions = 0.0
    for line in text.splitlines():
        if line.startswith("corral_leader "):
            leader = float(line.split()[1])
        elif line.startswith("corral_leader_transitions_total "):
            transitions = float(line.split()[1])
        elif line.startswith("corral_api_requests_total{"):
            labels = dict(
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            verb = labels.get("verb", "").strip('"')
            resource = labels.get("resource", "").strip('"')
            if verb in WRITE_VERBS and not resource.startswith("leases"):
                writes += float(line.rsplit(" ", 1)[1])
    return leader, writes, transitions


@dataclass(frozen=True)
class _Command:
    args: list[str]
    env: dict[str, str]
    cwd: str


class ControlPlane:
    """The local fleet's components as a kubelet keeps static pods: one can be restarted, and
    one that exits (kube-scheduler and kube-controller-manager exit when they lose their own
    leader Lease while kube-apiserver is away) is started again with its command line. Pid files
    are kept current, so the fleet's health check and teardown follow the new processes."""

    SUPERVISED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")

    def __init__(self, cluster: Cluster):
        from corral.localfleet.cluster import FleetDirs

        assert cluster.fleet_name, "the control plane can be restarted only on a local fleet"
        self.cluster = cluster
        self.dirs = FleetDirs.of(cluster.fleet_name)
        self.commands = {name: self._command(self._pid(name)) for name in self.SUPERVISED}
        self.revived: Counter[str] = Counter()
        self._restarting: set[str] = set()
        """Components being restarted on purpose: revive() leaves them alone."""

    def _pid(self, name: str) -> int:
        return int(self.dirs.pid_file(name).read_text().strip())

    @staticmethod
    def _command(pid: int) -> _Command:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
        return _Command([a.decode() for a in args], env, os.readlink(f"/proc/{pid}/cwd"))

    def alive(self, name: str) -> bool:
        stat = Path(f"/proc/{self._pid(name)}/stat")
        try:
            return stat.read_text().split(") ", 1)[1][0] != "Z"
        except (OSError, IndexError):
            return False

    def start(self, name: str) -> None:
        command = self.commands[name]
        with open(self.dirs.component_log(name), "ab") as log:
            process = subprocess.Popen(
                command.args,
                env=command.env,
                cwd=command.cwd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.dirs.pid_file(name).write_text(str(process.pid))

    def restart(self, name: str, grace: float) -> None:
        """SIGTERM (as a rolling restart does), SIGKILL after `grace` seconds (kube-apiserver
        drains its watches for up to a minute), start again."""
        self._restarting.add(name)
        try:
            pid = self._pid(name)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.alive(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.alive(name):
                os.kill(pid, signal.SIGKILL)
                while self.alive(name):
                    time.sleep(0.05)
            self.start(name)
        finally:
            self._restarting.discard(name)

    def revive(self) -> None:
        for name in self.SUPERVISED:
            if name not in self._restarting and not self.alive(name):
                self.revived[name] += 1
                self.start(name)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.cluster.kubectl("get", "--raw", "/readyz").strip() == "ok":
                    return
            except Exception:
                pass
            time.sleep(0.3)
        raise AssertionError(f"kube-apiserver not ready within {timeout:.0f}s")
