"""Run a local fleet: kwokctl starts the control plane, this module adds what kwokctl does not do.

kwokctl (`create cluster --runtime binary`) starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and the kwok controller on 127.0.0.1 from the binaries we point it at, picks free
ports, writes PKI and a kubeconfig, and stops/starts/deletes them. What it does not do, and this
module does:

- state per fleet under `.corral/<name>/` (kwokctl's workdir is `.corral/<name>/kwok`, the
  kubeconfig `.corral/<name>/kubeconfig`), so a checkout's fleets never touch `~/.kwok` or
  `~/.kube/config`;
- report a crashed component: kwokctl only answers "ready or not"; `status()` reads each
  component's pid file, checks the process is alive *and* is that component (pid reuse), and
  shows the tail of its log when it is not;
- make `up` idempotent (a running fleet is reused, a broken one restarted) and `down` complete
  (after `kwokctl delete cluster` it waits for every recorded pid to exit, and kills stragglers);
- the fleet file → Node objects, created in parallel through the API (2,000 nodes in seconds),
  and waiting until kwok reports them all Ready.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corral.localfleet import binaries as binaries_module
from corral.localfleet import fleetfile, nodes, stages
from corral.localfleet.flags import ControlPlaneFlags

COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)
"""What kwokctl starts, in start order."""

Log = Callable[[str], None]


class FleetError(Exception):
    """The fleet could not be brought up, or is broken; the message says which part and why."""


def _quiet(_: str) -> None:
    pass


def state_root() -> Path:
    """`$CORRAL_STATE_DIR`, else `.corral/` at the top of the source checkout (else the cwd)."""
    if explicit := os.environ.get("CORRAL_STATE_DIR"):
        return Path(explicit).resolve()
    try:
        return binaries_module.repo_root() / ".corral"
    except binaries_module.BinaryError:
        return Path.cwd() / ".corral"


@dataclass(frozen=True)
class FleetDirs:
    """Where one fleet keeps its state."""

    name: str
    root: Path

    @classmethod
    def of(cls, name: str) -> FleetDirs:
        return cls(name, state_root() / name)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kwok_workdir(self) -> Path:
        return self.root / "kwok"

    @property
    def cluster_dir(self) -> Path:
        return self.kwok_workdir / "clusters" / self.name

    @property
    def config(self) -> Path:
        return self.root / "kwokctl.yaml"

    @property
    def fleet_file(self) -> Path:
        return self.root / "fleet.yaml"

    @property
    def log(self) -> Path:
        return self.root / "kwokctl.log"

    @property
    def flags(self) -> Path:
        """The feature gates and runtime config the fleet was created with."""
        return self.root / "control-plane-flags.json"

    def component_log(self, component: str) -> Path:
        return self.cluster_dir / "logs" / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.cluster_dir / "pids" / f"{component}.pid"


def existing_fleets() -> list[str]:
    root = state_root()
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if (p / "kwok").is_dir() or (p / "kubeconfig").exists()
    )


# --- processes -------------------------------------------------------------------------------


def _proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[0]


def _proc_rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _is_component(pid: int, dirs: FleetDirs, component: str) -> bool:
    """Alive, not a zombie, and really this fleet's component (a recycled pid is not)."""
    cmdline = _proc_cmdline(pid)
    if not cmdline or _proc_state(pid) in ("Z", "X", ""):
        return False
    return cmdline[0] == str(dirs.cluster_dir / "bin" / component)


@dataclass(frozen=True)
class ComponentState:
    name: str
    pid: int | None
    running: bool
    rss_bytes: int
    log_tail: str = ""


@dataclass
class FleetStatus:
    name: str
    dirs: FleetDirs
    exists: bool
    components: list[ComponentState] = field(default_factory=list)
    flags: ControlPlaneFlags = field(default_factory=ControlPlaneFlags)
    api_ready: bool = False
    server: str = ""
    nodes: int = 0
    ready_nodes: int = 0
    gpus: int = 0
    pods: int = 0
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.exists and self.api_ready and all(c.running for c in self.components)

    @property
    def crashed(self) -> list[ComponentState]:
        return [c for c in self.components if not c.running]

    @property
    def rss_bytes(self) -> int:
        return sum(c.rss_bytes for c in self.components)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exists": self.exists,
            "healthy": self.healthy,
            "kubeconfig": str(self.dirs.kubeconfig),
            "server": self.server,
            "apiReady": self.api_ready,
            "components": [
                {"name": c.name, "pid": c.pid, "running": c.running, "rssBytes": c.rss_bytes}
                for c in self.components
            ],
            "rssBytes": self.rss_bytes,
            **self.flags.to_json(),
            "nodes": self.nodes,
            "readyNodes": self.ready_nodes,
            "gpus": self.gpus,
            "pods": self.pods,
            "error": self.error,
        }


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def component_states(dirs: FleetDirs) -> list[ComponentState]:
    states = []
    for component in COMPONENTS:
        pid: int | None
        try:
            pid = int(dirs.pid_file(component).read_text().strip())
        except (OSError, ValueError):
            pid = None
        running = pid is not None and _is_component(pid, dirs, component)
        states.append(
            ComponentState(
                component,
                pid,
                running,
                _proc_rss_bytes(pid) if running and pid else 0,
                "" if running else _tail(dirs.component_log(component)),
            )
        )
    return states


# --- API -------------------------------------------------------------------------------------


def api_client(kubeconfig: Path, pool: int = 32) -> Any:
    """A kubernetes.client.ApiClient for the fleet, with a connection pool for parallel calls."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = pool
    configuration.retries = 3
    return client.ApiClient(configuration)


def _raw_json(response: Any) -> Any:
    return json.loads(response.data)


def _api_ready(kubeconfig: Path) -> tuple[bool, str]:
    if not kubeconfig.exists():
        return False, ""
    try:
        with api_client(kubeconfig, pool=1) as api:
            server = str(api.configuration.host)
            response = api.call_api("GET", f"{server}/readyz", _request_timeout=5)
            return response.status == 200, server
    except Exception:
        return False, ""


def _list_fleet_nodes(api: Any, fleet_name: str | None = None) -> list[dict[str, Any]]:
    from kubernetes import client

    selector = f"{nodes.FLEET_LABEL}={fleet_name}" if fleet_name else nodes.FLEET_LABEL
    response = client.CoreV1Api(api).list_node(label_selector=selector, _preload_content=False)
    items: list[dict[str, Any]] = _raw_json(response)["items"]
    return items


SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")
"""Taints Kubernetes itself manages (not-ready, unreachable, ...): `up` neither sets nor removes them."""


def _is_system_taint(taint: dict[str, Any]) -> bool:
    return str(taint.get("key", "")).startswith(SYSTEM_TAINT_PREFIXES)


def _is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_schedulable(node: dict[str, Any]) -> bool:
    """Ready, and kube-controller-manager has lifted its not-ready/unreachable taints."""
    taints = node.get("spec", {}).get("taints") or []
    return _is_ready(node) and not any(_is_system_taint(t) for t in taints)


def status(name: str) -> FleetStatus:
    """What runs and what the API says: components (pid, alive, RSS), API readiness, nodes."""
    dirs = FleetDirs.of(name)
    result = FleetStatus(name, dirs, exists=dirs.cluster_dir.is_dir())
    if not result.exists:
        return result
    result.components = component_states(dirs)
    result.flags = ControlPlaneFlags.load(dirs.flags)
    result.api_ready, result.server = _api_ready(dirs.kubeconfig)
    if result.api_ready:
        from kubernetes import client

        try:
            with api_client(dirs.kubeconfig, pool=2) as api:
                items = _list_fleet_nodes(api)
                result.nodes = len(items)
                result.ready_nodes = sum(_is_ready(n) for n in items)
                result.gpus = sum(
                    int(n.get("status", {}).get("allocatable", {}).get(nodes.GPU_RESOURCE, "0"))
                    for n in items
                )
                pods = client.CoreV1Api(api).list_pod_for_all_namespaces(
                    limit=500, _preload_content=False
                )
                body = _raw_json(pods)
                result.pods = len(body["items"]) + int(
                    body.get("metadata", {}).get("remainingItemCount") or 0
                )
        except Exception as exc:
            result.error = f"API reachable but listing failed: {exc}"
    return result


# --- kwokctl ---------------------------------------------------------------------------------


PORT_OPTIONS = (
    "etcdPort",
    "etcdPeerPort",
    "kubeApiserverPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "kwokControllerPort",
)


def free_ports(count: int, low: int = 20000, high: int = 32700) -> list[int]:
    """`count` distinct loopback ports that are free now, drawn at random below the ephemeral
    range. kwokctl's own choice counts down from 32767 in every process, so two fleets created
    at the same moment (two checkouts, two CI jobs) would pick the same ports."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(low, high)
        if port in chosen:
            continue
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


def kwokctl_config(
    bins: binaries_module.Binaries,
    ports: dict[str, int] | None = None,
    flags: ControlPlaneFlags | None = None,
) -> str:
    """The kwokctl configuration: local binaries, loopback only (on `ports` when given), the
    control plane's feature gates and runtime config, kwok managing annotated nodes, and every
    stage (stock + Corral's)."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeApiserverBinary": str(bins["kube-apiserver"]),
        "kubeControllerManagerBinary": str(bins["kube-controller-manager"]),
        "kubeSchedulerBinary": str(bins["kube-scheduler"]),
        "etcdBinary": str(bins["etcd"]),
        "kwokControllerBinary": str(bins["kwok"]),
        "kubectlBinary": str(bins["kubectl"]),
        "quietPull": True,
        "disableQPSLimits": True,
        **(ports or {}),
        **(flags or ControlPlaneFlags()).kwokctl_options(),
    }
    documents: list[Any] = [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            # kwokctl's binary runtime always passes --manage-all-nodes=true; the later flags win.
            "componentsPatches": [
                {
                    "name": "kwok-controller",
                    "extraArgs": [
                        {"key": "manage-all-nodes", "value": "false"},
                        {
                            "key": "manage-nodes-with-annotation-selector",
                            "value": f"{nodes.KWOK_NODE_ANNOTATION}=fake",
                        },
                    ],
                }
            ],
        },
        *(yaml.safe_load(stage) for stage in stages.ALL),
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def _kwokctl(
    bins: binaries_module.Binaries, dirs: FleetDirs, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    # KWOK_* variables override the config file (KWOK_KUBE_APISERVER_BINARY, ...): drop them so a
    # developer's environment cannot swap the pinned binaries.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWOK_")}
    env["KWOK_WORKDIR"] = str(dirs.kwok_workdir)
    command = [str(bins["kwokctl"]), "--name", dirs.name, "--config", str(dirs.config), *args]
    with dirs.log.open("a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        return subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


def _failure_report(dirs: FleetDirs, headline: str) -> str:
    lines = [headline]
    for state in component_states(dirs):
        if not state.running:
            lines.append(f"--- {state.name} is not running (pid {state.pid}); its log ends with:")
            lines.append(state.log_tail or "(no log)")
    lines.append(f"--- kwokctl's log ({dirs.log}) ends with:")
    lines.append(_tail(dirs.log, 10))
    return "\n".join(lines)


@contextlib.contextmanager
def _fleet_lock(dirs: FleetDirs) -> Iterator[None]:
    dirs.root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = dirs.root.parent / f".{dirs.name}.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class UpResult:
    name: str
    kubeconfig: Path
    created_cluster: bool
    restarted: list[str]
    nodes_created: int
    nodes_updated: int
    nodes_deleted: int
    nodes_ready: int
    seconds: float


def up(
    fleet_path: str | Path,
    name: str | None = None,
    *,
    log: Log = print,
    ready_timeout: float = 300,
    flags: ControlPlaneFlags | None = None,
) -> UpResult:
    """Bring a fleet up (or reuse it), make its nodes match the fleet file, wait until Ready.
    `flags` (feature gates, runtime config) are fixed at creation: a running fleet created with
    other flags is refused (FleetError), never silently reused."""
    flags = flags or ControlPlaneFlags()
    started = time.monotonic()
    fleet = fleetfile.load(fleet_path)
    name = name or fleet.name
    dirs = FleetDirs.of(name)
    bins = binaries_module.ensure(log=log)
    created = False
    restarted: list[str] = []
    with _fleet_lock(dirs):
        dirs.root.mkdir(parents=True, exist_ok=True)
        if dirs.cluster_dir.is_dir():
            running_with = ControlPlaneFlags.load(dirs.flags)
            if running_with != flags:
                raise FleetError(
                    f"fleet {name} runs with {running_with.describe()}, not {flags.describe()}: "
                    f"bring it down first (corral fleet down --name {name}) or pick another --name"
                )
            dirs.config.write_text(kwokctl_config(bins, flags=flags))
            current = status(name)
            if current.healthy:
                log(f"fleet {name}: control plane already running")
            else:
                restarted = [c.name for c in current.crashed] or ["kube-apiserver (not ready)"]
                log(
                    _failure_report(
                        dirs, f"fleet {name}: not healthy ({', '.join(restarted)}); restarting"
                    )
                )
                _kwokctl(bins, dirs, "stop", "cluster", timeout=120)
                done = _kwokctl(bins, dirs, "start", "cluster", "--wait", "2m", timeout=180)
                if done.returncode != 0 or not status(name).healthy:
                    raise FleetError(
                        _failure_report(
                            dirs, f"fleet {name}: restart failed; try `corral fleet down`"
                        )
                    )
        else:
            with_flags = "" if flags.default else f" with {flags.describe()}"
            log(
                f"fleet {name}: starting the control plane (kwokctl, binary runtime){with_flags} ..."
            )
            _create(bins, dirs, log, flags)
            created = True
        shutil.copyfile(fleet_path, dirs.fleet_file)
        with api_client(dirs.kubeconfig) as api:
            made, changed, removed = sync_nodes(api, fleet)
            log(f"fleet {name}: nodes created {made}, updated {changed}, deleted {removed}")
            ready = wait_nodes_ready(api, fleet, timeout=ready_timeout)
    return UpResult(
        name,
        dirs.kubeconfig,
        created,
        restarted,
        made,
        changed,
        removed,
        ready,
        time.monotonic() - started,
    )


def _create(
    bins: binaries_module.Binaries,
    dirs: FleetDirs,
    log: Log,
    flags: ControlPlaneFlags,
    attempts: int = 2,
) -> None:
    """kwokctl create cluster on fresh ports; one retry (new ports) if it does not come up."""
    for attempt in range(1, attempts + 1):
        ports = dict(zip(PORT_OPTIONS, free_ports(len(PORT_OPTIONS)), strict=True))
        dirs.config.write_text(kwokctl_config(bins, ports, flags))
        flags.save(dirs.flags)
        done = _kwokctl(
            bins, dirs, "create", "cluster", "--runtime", "binary",
            "--kubeconfig", str(dirs.kubeconfig), "--wait", "2m", timeout=240,
        )  # fmt: skip
        if done.returncode == 0 and status(dirs.name).healthy:
            return
        report = _failure_report(dirs, f"fleet {dirs.name}: the control plane did not start")
        _down(dirs, bins, _quiet)
        if attempt == attempts:
            raise FleetError(report)
        log(f"{report}\nfleet {dirs.name}: retrying on other ports ...")
        dirs.root.mkdir(parents=True, exist_ok=True)


def _parallel(calls: list[Callable[[], Any]], workers: int = 16) -> None:
    if not calls:
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def _differs(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    labels = existing["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items()):
        return True
    # `corral fleet interrupt --source kubelet` detaches a node from kwok; `up` re-attaches it.
    annotations = existing["metadata"].get("annotations") or {}
    if any(annotations.get(k) != v for k, v in desired["metadata"]["annotations"].items()):
        return True
    ours = [t for t in existing.get("spec", {}).get("taints") or [] if not _is_system_taint(t)]
    if ours != desired["spec"].get("taints", []):
        return True
    capacity = existing.get("status", {}).get("capacity") or {}
    return any(capacity.get(k) != v for k, v in desired["status"]["capacity"].items())


def sync_nodes(api: Any, fleet: fleetfile.Fleet) -> tuple[int, int, int]:
    """Create missing nodes, update changed ones, delete this fleet's nodes the file no longer
    has. Parallel API calls (kube-apiserver on two cores takes 2,000 creates in seconds)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    desired = {n["metadata"]["name"]: n for n in nodes.fleet_nodes(fleet)}
    existing = {n["metadata"]["name"]: n for n in _list_fleet_nodes(api)}
    to_create = [body for node_name, body in desired.items() if node_name not in existing]
    to_delete = [node_name for node_name in existing if node_name not in desired]
    to_update = [
        body
        for node_name, body in desired.items()
        if node_name in existing and _differs(existing[node_name], body)
    ]

    def create(body: Any) -> None:
        core.create_node(body, _preload_content=False)

    def update(body: dict[str, Any]) -> None:
        node_name = body["metadata"]["name"]
        old_labels = existing[node_name]["metadata"].get("labels") or {}
        ours = {k: None for k in old_labels if k not in body["metadata"]["labels"]}
        system = [
            t
            for t in existing[node_name].get("spec", {}).get("taints") or []
            if _is_system_taint(t)
        ]
        patch = {
            "metadata": {
                "labels": ours | body["metadata"]["labels"],
                "annotations": body["metadata"]["annotations"],
            },
            "spec": {"taints": system + body["spec"].get("taints", [])},
        }
        core.patch_node(node_name, patch, _preload_content=False)
        core.patch_node_status(node_name, {"status": body["status"]}, _preload_content=False)

    def delete(node_name: str) -> None:
        core.delete_node(node_name, _preload_content=False)

    _parallel([functools.partial(create, body) for body in to_create])
    _parallel([functools.partial(update, body) for body in to_update])
    _parallel([functools.partial(delete, node_name) for node_name in to_delete])
    return len(to_create), len(to_update), len(to_delete)


def wait_nodes_ready(api: Any, fleet: fleetfile.Fleet, timeout: float = 300) -> int:
    """Wait until every node of the fleet is Ready (kwok) and schedulable (kube-controller-manager
    lifted its not-ready taint); the count, or FleetError on timeout."""
    want = {h.name for h in fleetfile.hosts(fleet)}
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while True:
        items = _list_fleet_nodes(api)
        ready = {n["metadata"]["name"] for n in items if is_schedulable(n)} & want
        if ready == want:
            return len(ready)
        if time.monotonic() > deadline:
            missing = sorted(want - ready)
            raise FleetError(
                f"{len(missing)} of {len(want)} nodes not Ready after {timeout:.0f} s "
                f"(e.g. {', '.join(missing[:3])}); is kwok-controller running?"
            )
        time.sleep(0.5)


# --- down ------------------------------------------------------------------------------------


def _down(dirs: FleetDirs, bins: binaries_module.Binaries | None, log: Log) -> list[int]:
    """Delete the cluster, make sure every component process is gone, remove the state dir."""
    pids = {s.pid: s.name for s in component_states(dirs) if s.running and s.pid}
    if dirs.cluster_dir.is_dir() and bins is not None:
        done = _kwokctl(
            bins, dirs, "delete", "cluster", "--kubeconfig", str(dirs.kubeconfig), timeout=120
        )
        if done.returncode != 0:
            log(f"fleet {dirs.name}: kwokctl delete failed (see {dirs.log}); killing the processes")
    deadline = time.monotonic() + 15
    for pid, component in pids.items():
        while _is_component(pid, dirs, component) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_component(pid, dirs, component):
            log(f"fleet {dirs.name}: {component} (pid {pid}) outlived kwokctl delete; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(dirs.root, ignore_errors=True)
    return sorted(pids)


def down(name: str, *, log: Log = print) -> list[int]:
    """Stop every process of the fleet and delete its state; the pids that were stopped."""
    dirs = FleetDirs.of(name)
    if not dirs.root.exists():
        log(f"fleet {name}: not up")
        return []
    with _fleet_lock(dirs):
        found = binaries_module.locate()
        bins = binaries_module.Binaries(found) if "kwokctl" in found else None
        stopped = _down(dirs, bins, log)
    log(f"fleet {name}: down ({len(stopped)} processes stopped)")
    return stopped
