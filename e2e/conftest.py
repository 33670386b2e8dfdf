"""Fixtures of the e2e suite: a real control plane with a simulated GPU fleet.

- `cluster` (session): brings up the local fleet `CORRAL_E2E_FLEET` (default e2e/fleets/tiny.yaml)
  under the name `e2e-<fleet>` once and tears it down at the end, or uses the cluster of
  `CORRAL_KUBECONFIG` as it is. CRDs from crds/ are applied either way. If the control plane
  cannot start, every test ERRORS (never skips). `CORRAL_E2E_KEEP=1` leaves a local fleet up
  for the next run (which then reuses it). `CORRAL_E2E_UPSTREAM_GANG=1` runs it with Kubernetes'
  alpha gang scheduling switched on (feature gates and the scheduling.k8s.io/v1alpha2 API).
- `upstream_cluster` (session): a cluster with that alpha gang scheduling: the session cluster
  when it has it, else a second local fleet `e2e-<fleet>-gang`, started for the first test that
  asks for it.
- `namespace`: a fresh namespace per test, deleted afterwards; its teardown also checks that no
  control-plane component crashed during the test.
- `kubectl`: the project's kubectl bound to the cluster.
- `spawn`: start background processes (e.g. `corral run`) with the cluster's KUBECONFIG; they
  are stopped after the test and their logs are printed when it failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from corral.localfleet.flags import UPSTREAM_GANG_SCHEDULING
from harness import Cluster, ClusterError, Kubectl, ManagedProcess
from harness.cluster import REPO

DEFAULT_FLEET = REPO / "e2e" / "fleets" / "tiny.yaml"
GANG_API = "scheduling.k8s.io/v1alpha2"


def _session_fleet() -> tuple[Path, str]:
    fleet = Path(os.environ.get("CORRAL_E2E_FLEET") or DEFAULT_FLEET)
    if not fleet.is_absolute():
        fleet = REPO / fleet
    return fleet, os.environ.get("CORRAL_E2E_NAME") or f"e2e-{fleet.stem}"


@pytest.fixture(scope="session")
def session_cluster() -> Iterator[Cluster]:
    """The suite's cluster; tests ask for `cluster`, which a test module may point elsewhere
    (e2e/controllers/test_reservations_race.py runs on `upstream_cluster`)."""
    kubeconfig = os.environ.get("CORRAL_KUBECONFIG")
    if kubeconfig:
        handle = Cluster.existing(Path(kubeconfig))
    else:
        fleet, name = _session_fleet()
        upstream = os.environ.get("CORRAL_E2E_UPSTREAM_GANG") == "1"
        handle = Cluster.local(fleet, name, UPSTREAM_GANG_SCHEDULING if upstream else None)
    try:
        handle.apply_crds()
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="session")
def cluster(session_cluster: Cluster) -> Cluster:
    return session_cluster


@pytest.fixture(scope="session")
def upstream_cluster(session_cluster: Cluster) -> Iterator[Cluster]:
    """A cluster serving Kubernetes' alpha gang scheduling (Workload/PodGroup)."""
    if session_cluster.serves(GANG_API):
        yield session_cluster
        return
    if session_cluster.fleet_name is None:
        raise ClusterError(
            f"CORRAL_KUBECONFIG names a cluster without {GANG_API}: start its kube-apiserver and "
            "kube-scheduler with --feature-gates=GenericWorkload=true,GangScheduling=true,"
            f"TopologyAwareWorkloadScheduling=true and --runtime-config={GANG_API}=true"
        )
    fleet, name = _session_fleet()
    handle = Cluster.local(fleet, f"{name}-gang", UPSTREAM_GANG_SCHEDULING)
    try:
        handle.apply_crds()
        yield handle
    finally:
        handle.close()


@pytest.fixture
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(request.node.name)
    yield name
    cluster.delete_namespace(name)
    cluster.check_health()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def spawn(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    """spawn(args, name=None) -> a started ManagedProcess with the cluster's KUBECONFIG."""
    started: list[ManagedProcess] = []

    def start(args: Sequence[str], name: str | None = None) -> ManagedProcess:
        label = name or Path(args[0]).name
        process = cluster.process(
            args, log_path=tmp_path / f"{label}-{len(started)}.log", name=label
        )
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for process in started:
            print(f"\n----- {process.name} (exit {process.returncode}) log -----\n{process.logs()}")
