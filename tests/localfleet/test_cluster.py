"""The parts of the fleet runner that need no cluster: state layout and process checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.localfleet import cluster


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CORRAL_STATE_DIR", str(tmp_path))
    return tmp_path


def test_fleet_state_lives_under_its_own_directory(state: Path) -> None:
    dirs = cluster.FleetDirs.of("demo")
    assert dirs.kubeconfig == state / "demo" / "kubeconfig"
    assert dirs.cluster_dir == state / "demo" / "kwok" / "clusters" / "demo"
    assert dirs.pid_file("etcd") == dirs.cluster_dir / "pids" / "etcd.pid"


def test_a_recorded_pid_is_a_component_only_if_its_command_line_matches(state: Path) -> None:
    dirs = cluster.FleetDirs.of("demo")
    (dirs.cluster_dir / "pids").mkdir(parents=True)
    (dirs.cluster_dir / "logs").mkdir()
    dirs.pid_file("etcd").write_text(str(os.getpid()))  # a live pid, but not etcd: pid reuse
    dirs.component_log("etcd").write_text("line 1\npanic: disk full\n")
    states = {s.name: s for s in cluster.component_states(dirs)}
    assert set(states) == set(cluster.COMPONENTS)
    assert not states["etcd"].running
    assert "panic: disk full" in states["etcd"].log_tail
    assert states["kube-apiserver"].pid is None


def test_status_of_a_fleet_that_is_not_up(state: Path) -> None:
    result = cluster.status("nothing")
    assert not result.exists and not result.healthy
    assert cluster.existing_fleets() == []
