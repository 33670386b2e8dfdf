"""A handle on the cluster the e2e suite runs against: a local fleet it started, or any cluster
named by `CORRAL_KUBECONFIG` (kind, a real cluster) — the tests do not care which."""

from __future__ import annotations

import functools
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from corral.localfleet import binaries, cluster
from corral.localfleet.flags import ControlPlaneFlags
from harness.kubectl import Kubectl
from harness.process import ManagedProcess
from harness.wait import wait_for

REPO = Path(__file__).resolve().parents[2]


class ClusterError(RuntimeError):
    """The cluster could not be started or reached, or a component died during the run."""


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl: Kubectl
    fleet_name: str | None = None
    """The local fleet's name; None for a cluster named by CORRAL_KUBECONFIG."""
    owned: bool = False
    """True when this run started the fleet (and so tears it down)."""
    api: Any = field(init=False)
    """kubernetes.client.ApiClient bound to the cluster."""

    def __post_init__(self) -> None:
        self.api = cluster.api_client(self.kubeconfig)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def local(
        cls,
        fleet_file: Path,
        name: str,
        flags: ControlPlaneFlags | None = None,
        ready_timeout: float = 300,
    ) -> Cluster:
        """Bring a local fleet up (reusing one that is already up under that name), its control
        plane with `flags` (feature gates, runtime config; the defaults when None)."""
        log = _stderr
        try:
            result = cluster.up(fleet_file, name, log=log, flags=flags, ready_timeout=ready_timeout)
            kubectl = binaries.ensure(only=["kubectl"], log=log)["kubectl"]
        except (cluster.FleetError, binaries.BinaryError) as exc:
            cluster.down(name, log=log)  # leave no process behind, whatever got started
            raise ClusterError(f"the local fleet {name} did not come up:\n{exc}") from exc
        return cls(result.kubeconfig, Kubectl(kubectl, result.kubeconfig), name, owned=True)

    @classmethod
    def existing(cls, kubeconfig: Path) -> Cluster:
        """A cluster someone else runs; the suite neither starts nor stops it."""
        if not kubeconfig.is_file():
            raise ClusterError(f"CORRAL_KUBECONFIG={kubeconfig}: no such file")
        kubectl = binaries.ensure(only=["kubectl"], log=_stderr)["kubectl"]
        handle = cls(kubeconfig, Kubectl(kubectl, kubeconfig))
        try:
            client.VersionApi(handle.api).get_code()
        except Exception as exc:
            raise ClusterError(f"CORRAL_KUBECONFIG={kubeconfig}: API not reachable: {exc}") from exc
        return handle

    # --- typed API clients ----------------------------------------------------------------

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def apiextensions(self) -> client.ApiextensionsV1Api:
        return client.ApiextensionsV1Api(self.api)

    def serves(self, group_version: str) -> bool:
        """Whether the API server serves this API group/version (e.g. scheduling.k8s.io/v1alpha2)."""
        groups = client.ApisApi(self.api).get_api_versions().groups
        return any(v.group_version == group_version for g in groups for v in g.versions)

    # --- CRDs, namespaces -----------------------------------------------------------------

    def apply_crds(self, directory: Path = REPO / "crds") -> list[str]:
        """`kubectl apply -f crds/`, then wait until every CRD is Established."""
        self.kubectl.apply(directory)
        names = [
            line.split("/", 1)[1]
            for line in self.kubectl("get", "-f", str(directory), "-o", "name").split()
        ]
        for name in names:
            wait_for(
                functools.partial(self._crd_established, name),
                timeout=60,
                message=f"CRD {name} Established",
            )
        return names

    def _crd_established(self, name: str) -> bool:
        return _established(self.kubectl.json("get", "crd", name))

    def create_namespace(self, hint: str) -> str:
        """A fresh namespace named after the test, with its default ServiceAccount in place
        (pods are refused until kube-controller-manager has created it)."""
        base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-") or "test"
        name = f"e2e-{base}-{secrets.token_hex(2)}"
        body: Any = {"metadata": {"name": name, "labels": {"e2e.corral.dev/test": "true"}}}
        self.core.create_namespace(body)
        wait_for(
            lambda: self.core.read_namespaced_service_account("default", name),
            timeout=30,
            message=f"ServiceAccount default in {name}",
        )
        return name

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    # --- processes ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this cluster."""
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig))

    def process(
        self, args: Sequence[str], *, log_path: Path, name: str | None = None
    ) -> ManagedProcess:
        """A (not yet started) process that talks to this cluster through KUBECONFIG."""
        return ManagedProcess(args, log_path=log_path, env=self.env(), cwd=REPO, name=name)

    def corral(self, *args: str, log_path: Path) -> ManagedProcess:
        """`corral ARGS` (e.g. `run`) against this cluster, not yet started."""
        return self.process(
            [sys.executable, "-m", "corral", *args], log_path=log_path, name="corral"
        )

    # --- health and teardown --------------------------------------------------------------

    def check_health(self) -> None:
        """For a local fleet: every component still runs; raise with the crashed ones' logs."""
        if self.fleet_name is None:
            return
        state = cluster.status(self.fleet_name)
        if not state.healthy:
            lines = [f"local fleet {self.fleet_name} is not healthy:"]
            if not state.api_ready:
                lines.append("  kube-apiserver does not answer /readyz")
            for component in state.crashed:
                lines.append(f"  {component.name} (pid {component.pid}) is down; log tail:")
                lines.append(component.log_tail)
            raise ClusterError("\n".join(lines))

    def close(self) -> None:
        self.api.close()
        if self.owned and self.fleet_name and not os.environ.get("CORRAL_E2E_KEEP"):
            cluster.down(self.fleet_name, log=_stderr)


def _established(crd: dict[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
