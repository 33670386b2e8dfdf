"""`corral simulate` from the command line: files in, report out, one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli import main

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "e2e" / "fleets" / "tiny.yaml"


def workload(tmp_path: Path) -> Path:
    path = tmp_path / "w.jsonl"
    rows = [
        {
            "name": "a",
            "submit": 0,
            "workers": 2,
            "devicesPerWorker": 8,
            "duration": 600,
            "team": "nlp",
        },
        {"name": "b", "submit": 5, "workers": 2, "devicesPerWorker": 8, "duration": 600},
        {"name": "c", "submit": 10, "devicesPerWorker": 4, "duration": 60, "failAfter": 30},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_run_writes_the_summary_the_report_and_the_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "simulate",
            "--fleet",
            str(FLEET),
            "--workload",
            str(workload(tmp_path)),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"] == "corral"
    assert summary["jobs"] == {
        "submitted": 3, "finished": 3, "failed": 0, "unfinished": 0, "restarts": 1, "interruptions": 0,
    }  # fmt: skip
    assert summary["economics"]["byTeam"]["nlp"]["deviceHours"] == pytest.approx(
        16 * 600 / 3600, abs=0.001
    )
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 4
    decisions = (out / "decisions.csv").read_text().splitlines()
    assert decisions[0] == "policy,time_seconds,job,pool,nodes"
    assert [line.split(",")[2] for line in decisions[1:]][:3] == [
        "default/a",
        "default/b",
        "default/c",
    ]
    assert "corral: 3/3 jobs finished" in capsys.readouterr().out


def test_compare_tables_the_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["--fleet", str(FLEET), "--workload", str(workload(tmp_path)), "--out", str(out)]
    assert main(["simulate", *args, "--compare", "corral,spread"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [run["policy"] for run in summary["runs"]] == ["corral", "spread"]
    assert summary["comparison"]["baseline"] == "corral"
    assert "(ratios against corral)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "row", "message"),
    [
        ([], '{"submit": 0, "workers": -1, "duration": 5}', "w.jsonl:1: workers: must be >= 1"),
        (
            ["--compare", "corral,best"],
            '{"submit": 0, "duration": 5}',
            "--compare: unknown policy 'best'",
        ),
        (["--inference", "absent.yaml"], '{"submit": 0, "duration": 5}', "absent.yaml"),
        (["--pools", "absent.yaml"], '{"submit": 0, "duration": 5}', "absent.yaml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], row: str, message: str
) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(row + "\n")
    code = main(
        ["simulate", "--fleet", str(FLEET), "--workload", str(path), "--out", str(tmp_path), *extra]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("corral simulate: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_without_matplotlib_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    program = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from corral.cli import main\n"
        f"sys.exit(main(['simulate', '--fleet', {str(FLEET)!r}, '--workload', "
        f"{str(workload(tmp_path))!r}, '--out', {str(tmp_path / 'o')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "corral simulate: the report needs matplotlib: pip install 'corral[sim]' (or matplotlib>=3.8)"
    )
