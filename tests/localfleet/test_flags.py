"""`corral fleet up --feature-gates/--runtime-config`: parsing, kwokctl options, fixed at creation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corral.localfleet import binaries, cluster
from corral.localfleet.flags import UPSTREAM_GANG_SCHEDULING, ControlPlaneFlags, FlagError


@pytest.mark.parametrize(
    ("gates", "runtime", "want_gates", "want_runtime"),
    [
        ("", "", {}, {}),
        ("GangScheduling=true", "", {"GangScheduling": "true"}, {}),
        (" A=True , B=FALSE,", "", {"A": "true", "B": "false"}, {}),
        ("A=true,A=false", "", {"A": "false"}, {}),  # the last one wins, as in Kubernetes
        ("", "scheduling.k8s.io/v1alpha2=true", {}, {"scheduling.k8s.io/v1alpha2": "true"}),
        ("", "api/alpha=false,v1=true", {}, {"api/alpha": "false", "v1": "true"}),
        ("", "batch/v1/jobs=true", {}, {"batch/v1/jobs": "true"}),
    ],
)
def test_parse(
    gates: str, runtime: str, want_gates: dict[str, str], want_runtime: dict[str, str]
) -> None:
    flags = ControlPlaneFlags.parse(gates, runtime)
    assert (flags.feature_gates, flags.runtime_config) == (want_gates, want_runtime)


@pytest.mark.parametrize(
    ("gates", "runtime", "names"),
    [
        ("GangScheduling", "", "'GangScheduling' is not KEY=VALUE"),
        ("=true", "", "is not KEY=VALUE"),
        ("gang-scheduling=true", "", "'gang-scheduling' is not a feature gate name"),
        ("GangScheduling=yes", "", "GangScheduling: the value must be true or false"),
        ("", "scheduling.k8s.io=true", "'scheduling.k8s.io' is not an API group/version"),
        ("", "scheduling.k8s.io/v1alpha2=on", "the value must be true or false"),
    ],
)
def test_malformed_flags_name_the_item(gates: str, runtime: str, names: str) -> None:
    with pytest.raises(FlagError, match=names):
        ControlPlaneFlags.parse(gates, runtime)


def test_kwokctl_options_carry_the_flags_and_defaults_add_nothing() -> None:
    assert ControlPlaneFlags().kwokctl_options() == {}
    assert UPSTREAM_GANG_SCHEDULING.kwokctl_options() == {
        "kubeFeatureGates": "GangScheduling=true,GenericWorkload=true,"
        "TopologyAwareWorkloadScheduling=true",
        "kubeRuntimeConfig": "scheduling.k8s.io/v1alpha2=true",
    }
    fake = binaries.Binaries(
        {t.name: binaries.Found(Path("/cache") / t.name, "cache") for t in binaries.TOOLS}
    )
    options = next(
        yaml.safe_load_all(cluster.kwokctl_config(fake, flags=UPSTREAM_GANG_SCHEDULING))
    )["options"]
    assert options["kubeFeatureGates"].startswith("GangScheduling=true")
    assert options["kubeRuntimeConfig"] == "scheduling.k8s.io/v1alpha2=true"
    assert "kubeFeatureGates" not in next(yaml.safe_load_all(cluster.kwokctl_config(fake)))


def test_flags_round_trip_and_a_fleet_without_a_record_ran_the_defaults(tmp_path: Path) -> None:
    UPSTREAM_GANG_SCHEDULING.save(tmp_path / "flags.json")
    assert ControlPlaneFlags.load(tmp_path / "flags.json") == UPSTREAM_GANG_SCHEDULING
    assert ControlPlaneFlags.load(tmp_path / "missing.json") == ControlPlaneFlags()
    (tmp_path / "broken.json").write_text("{")
    assert ControlPlaneFlags.load(tmp_path / "broken.json") == ControlPlaneFlags()


def test_up_refuses_a_running_fleet_created_with_other_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(cluster.binaries_module, "ensure", lambda **_: None)
    dirs = cluster.FleetDirs.of("tiny")
    dirs.cluster_dir.mkdir(parents=True)
    UPSTREAM_GANG_SCHEDULING.save(dirs.flags)
    fleet = Path(__file__).resolve().parents[2] / "e2e" / "fleets" / "tiny.yaml"
    with pytest.raises(cluster.FleetError) as refused:
        cluster.up(fleet, "tiny", log=lambda _: None)
    message = str(refused.value)
    assert "runs with --feature-gates=GangScheduling=true" in message
    assert "not default feature gates" in message
    assert "corral fleet down --name tiny" in message


@pytest.mark.parametrize(
    "args",
    [
        ["--feature-gates", "GangScheduling"],
        ["--runtime-config", "scheduling.k8s.io=true"],
    ],
)
def test_fleet_up_with_a_malformed_flag_is_one_line_exit_2(args: list[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "corral", "fleet", "up", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("corral fleet: --")
