"""`corral fleet up/status/down` on a second, throw-away local fleet: up is idempotent, a crashed
component is reported and repaired, a changed fleet file reconciles the nodes, down leaves no
process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from corral.localfleet import cluster as fleet
from harness import wait_for
from harness.cluster import REPO
from harness.process import wait_gone

NAME = "e2e-lifecycle"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CORRAL_KUBECONFIG")),
    reason="exercises the local fleet itself; CORRAL_KUBECONFIG points the suite at another cluster",
)


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "fleet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.fixture
def lifecycle_fleet() -> Iterator[str]:
    yield NAME
    fleet.down(NAME, log=lambda _: None)


def test_up_is_idempotent_crashes_are_reported_and_down_leaves_nothing(
    lifecycle_fleet: str, tmp_path: Path
) -> None:
    tiny = REPO / "e2e" / "fleets" / "tiny.yaml"
    first = corral("up", "--fleet", str(tiny), "--name", NAME)
    assert first.returncode == 0, first.stderr
    kubeconfig = Path(first.stdout.strip())
    assert kubeconfig == REPO / ".corral" / NAME / "kubeconfig"
    assert "127.0.0.1" in kubeconfig.read_text()
    before = {c.name: c.pid for c in fleet.status(NAME).components}
    assert all(before.values()), before

    again = corral("up", "--fleet", str(tiny), "--name", NAME)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert "nodes created 0, updated 0, deleted 0" in again.stderr
    assert {c.name: c.pid for c in fleet.status(NAME).components} == before

    # A crashed component is reported by `status` (exit 1, DOWN, its log) ...
    scheduler = before["kube-scheduler"]
    assert scheduler is not None
    os.kill(scheduler, signal.SIGKILL)
    wait_gone(scheduler)
    report = corral("status", "--name", NAME)
    assert report.returncode == 1
    assert "NOT HEALTHY" in report.stdout
    assert any(
        line.split()[:1] == ["kube-scheduler"] and "DOWN" in line
        for line in report.stdout.splitlines()
    )
    # ... and repaired by `up`.
    repaired = corral("up", "--fleet", str(tiny), "--name", NAME)
    assert repaired.returncode == 0, repaired.stderr
    assert "kube-scheduler" in repaired.stderr and "restarting" in repaired.stderr
    assert fleet.status(NAME).healthy

    # A changed fleet file reconciles the nodes: one rack fewer deletes its hosts.
    smaller = yaml.safe_load(tiny.read_text()) | {"racksPerBlock": 1}
    (tmp_path / "smaller.yaml").write_text(yaml.safe_dump(smaller))
    shrunk = corral("up", "--fleet", str(tmp_path / "smaller.yaml"), "--name", NAME)
    assert shrunk.returncode == 0, shrunk.stderr
    assert "nodes created 0, updated 0, deleted 2" in shrunk.stderr
    state = wait_for(lambda: (s := fleet.status(NAME)).nodes == 2 and s, message="2 nodes left")
    assert state.ready_nodes == 2

    pids = [c.pid for c in fleet.status(NAME).components if c.pid]
    down = corral("down", "--name", NAME)
    assert down.returncode == 0, down.stderr
    for pid in pids:
        wait_gone(pid, timeout=5)
    assert not (REPO / ".corral" / NAME).exists()
    assert corral("status", "--name", NAME).returncode == 3
    assert corral("down", "--name", NAME).returncode == 0  # down twice is fine
