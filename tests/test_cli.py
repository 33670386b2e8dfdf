"""The CLI: one line and exit 2 for user errors, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corral.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("corral ")


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["crds", "--no-such-flag"],
        [],
    ],
)
def test_bad_usage_is_one_line_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_crds_to_a_file_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = run_cli("crds", "--out", str(target))
    assert result.returncode == 2
    assert result.stderr.strip() == f"corral crds: --out {target}: not a directory"


def test_crds_writes_one_file_per_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "corral.dev_gpupools.yaml",
        "corral.dev_inferenceservices.yaml",
        "corral.dev_trainingjobs.yaml",
    ]
    for path in tmp_path.iterdir():
        assert yaml.safe_load(path.read_text())["kind"] == "CustomResourceDefinition"


def test_crds_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [doc["spec"]["names"]["kind"] for doc in docs] == [
        "GPUPool",
        "TrainingJob",
        "InferenceService",
    ]


def test_run_with_unreadable_credentials_is_one_line_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("garbage: [\n")
    result = run_cli(
        "run", "--kubeconfig", str(broken), "--metrics-port", "0", "--health-port", "0"
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"corral run: cannot load cluster credentials from {broken}")


@pytest.mark.parametrize("flag", ["--metrics-port=70000", "--health-port=-1"])
def test_run_with_a_bad_port_is_one_line_exit_2(flag: str) -> None:
    result = run_cli("run", flag)
    assert result.returncode == 2
    assert "must be a port number" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_run_refuses_an_unknown_log_level_in_one_line() -> None:
    result = run_cli("run", "--log-level=loud")
    assert result.returncode == 2
    assert "--log-level: invalid choice: 'loud'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "text", ["name: x\nracksPerBlock: [\n", "name: x\nnoSuchKey: 1\n", "- just\n- a list\n"]
)
def test_bad_fleet_file_is_one_line_exit_2(tmp_path: Path, text: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text)
    result = run_cli("fleet", "nodes", "--fleet", str(fleet))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"corral fleet: {fleet}")


def _without_localfleet(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the operator image has it: corral.localfleet cannot be imported."""
    program = (
        "import sys; sys.modules['corral.localfleet'] = None\n"
        "from corral.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_the_operator_image_cli_works_without_the_local_fleet_tooling() -> None:
    version = _without_localfleet("--version")
    assert version.returncode == 0 and version.stdout.startswith("corral ")
    run_help = _without_localfleet("run", "--help")
    assert run_help.returncode == 0 and "--log-level" in run_help.stdout
    fleet = _without_localfleet("fleet", "status")
    assert fleet.returncode == 2
    assert fleet.stderr.startswith("corral fleet: the local-fleet tooling (corral.localfleet)")
    assert len(fleet.stderr.strip().splitlines()) == 1
