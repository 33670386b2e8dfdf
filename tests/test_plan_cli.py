"""`corral plan`: the contract an outside test suite runs (output shape, exit codes, messages)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.cli import main
from corral.fleet.testing import BLOCK, RACK, job, node, pod, pool

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, *documents: Any) -> str:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path)


def fleet_nodes() -> list[dict[str, Any]]:
    nodes = []
    for b in ("b1", "b2"):
        for r in ("r1", "r2"):
            for h in range(2):
                name = f"{b}-{r}-h{h}"
                nodes.append(node(name).block(b).rack(f"{b}-{r}").gpus(8).obj())
    nodes.append(node("cpu-only").gpus(0).obj())
    return nodes


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return {
        "nodes": write(
            tmp_path / "nodes.yaml", {"apiVersion": "v1", "kind": "List", "items": fleet_nodes()}
        ),
        "pods": write(tmp_path / "pods.yaml", pod("busy").on("b1-r1-h0").gpus(8).obj()),
        "job": write(tmp_path / "job.yaml", job("train").workers(2).gpus(8).required(BLOCK).dict()),
        "big": write(tmp_path / "big.yaml", job("big").workers(5).gpus(8).required(BLOCK).dict()),
        "pools": write(tmp_path / "pools.yaml", pool("h100").levels(BLOCK, RACK).dict()),
        "dir": str(tmp_path),
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["plan", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_placed_json_is_one_object_with_the_contract_fields(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    status, out, err = run(
        capsys, "--nodes", files["nodes"], "--job", files["job"], "--output", "json"
    )
    assert status == 0, err
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert result["placed"] is True
    assert result["pool"] == "default"
    assert [a["worker"] for a in result["assignments"]] == [0, 1]
    racks = {a["node"].rsplit("-", 1)[0] for a in result["assignments"]}
    assert len(racks) == 1
    assert set(result["span"]) == {"level", "domain"}
    assert result["span"]["level"] == RACK
    assert isinstance(result["explanation"], str) and result["explanation"]


def test_pods_take_their_devices(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    status, out, _ = run(
        capsys,
        "--nodes",
        files["nodes"],
        "--pods",
        files["pods"],
        "--job",
        files["job"],
        "-o",
        "json",
    )
    assert status == 0
    nodes = [a["node"] for a in json.loads(out)["assignments"]]
    assert "b1-r1-h0" not in nodes


def test_no_fit_exits_3_with_the_reason(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    status, out, _ = run(capsys, "--nodes", files["nodes"], "--job", files["big"], "-o", "json")
    assert status == 3
    result = json.loads(out)
    assert result["placed"] is False
    assert result["reason"].startswith("topology.required=network.corral.dev/block: ")
    assert "the gang needs 40 (5 workers \u00d7 8)" in result["reason"]


def test_text_output_for_a_person(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    status, out, _ = run(capsys, "--nodes", files["nodes"], "--job", files["job"])
    assert status == 0
    assert out.startswith("placed in pool default, span network.corral.dev/rack=")
    assert "worker 0 -> " in out and "worker 1 -> " in out
    status, out, _ = run(
        capsys, "--nodes", files["nodes"], "--job", files["big"], "--output", "text"
    )
    assert status == 3
    assert out.startswith("not placed (")


def test_explicit_pools(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    status, out, _ = run(
        capsys,
        "--nodes",
        files["nodes"],
        "--job",
        files["job"],
        "--pools",
        files["pools"],
        "-o",
        "json",
    )
    assert status == 0
    assert json.loads(out)["pool"] == "h100"


def test_multi_document_nodes(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    nodes = write(tmp_path / "multi.yaml", *fleet_nodes())
    status, _, _ = run(capsys, "--nodes", nodes, "--job", files["job"], "-o", "json")
    assert status == 0


@pytest.mark.parametrize(
    ("contents", "fragment"),
    [
        ("a: [unclosed", "invalid YAML"),
        (yaml.safe_dump(pod("p").obj()), "is a Pod, expected Node"),
        ("- just\n- a list\n", "is not a Node object"),
    ],
)
def test_bad_nodes_file_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    tmp_path: Path,
    contents: str,
    fragment: str,
) -> None:
    (tmp_path / "bad.yaml").write_text(contents)
    status, out, err = run(capsys, "--nodes", str(tmp_path / "bad.yaml"), "--job", files["job"])
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert fragment in err and "bad.yaml" in err


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({**job("j").workers(0).dict()}, "spec.workers: must be >= 1"),
        ({**job("j").dict(), "kind": "Deployment"}, "kind: expected TrainingJob"),
        ({**job("j").dict(), "kind": "InferenceService"}, "InferenceService cannot be planned"),
        (
            job("j").tolerate("x", operator="Sometimes").dict(),
            "spec.template.spec.tolerations[0].operator",
        ),
        (
            {**job("j").dict(), "spec": {**job("j").dict()["spec"], "acceleratorsPerWorkr": 8}},
            "spec.acceleratorsPerWorkr: unknown field",
        ),
    ],
)
def test_invalid_job_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    tmp_path: Path,
    document: dict[str, Any],
    fragment: str,
) -> None:
    path = write(tmp_path / "job.yaml", document)
    status, out, err = run(capsys, "--nodes", files["nodes"], "--job", path)
    assert status == 2
    assert out == ""
    assert fragment in err, err
    assert len(err.strip().splitlines()) == 1


def test_invalid_pool_exits_2_naming_the_pool_and_field(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    document = pool("broken").dict()
    document["spec"]["capacityType"] = "cheap"
    path = write(tmp_path / "pools.yaml", document)
    status, _, err = run(capsys, "--nodes", files["nodes"], "--job", files["job"], "--pools", path)
    assert status == 2
    assert "GPUPool broken: spec.capacityType" in err


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    status, _, err = run(capsys, "--nodes", "/nonexistent/nodes.yaml", "--job", files["job"])
    assert status == 2
    assert "/nonexistent/nodes.yaml" in err


def test_the_console_script(files: dict[str, str]) -> None:
    """The real entry point, as the outside suite calls it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "plan",
            "--nodes",
            files["nodes"],
            "--job",
            files["big"],
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["placed"] is False


@pytest.mark.parametrize(
    ("conditions", "placed"),
    [
        (None, True),  # hand-written nodes: no status conditions at all -> planned as Ready
        ([{"type": "Ready", "status": "False"}], False),  # a cluster's NotReady node stays NotReady
    ],
)
def test_nodes_without_conditions_are_planned_as_ready(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, conditions: Any, placed: bool
) -> None:
    bare = node("h1").gpus(8).obj()
    bare["status"].pop("conditions", None)
    if conditions is not None:
        bare["status"]["conditions"] = conditions
    nodes = write(tmp_path / "nodes.yaml", bare)
    job_file = write(tmp_path / "job.yaml", job("one").workers(1).gpus(8).dict())
    status, out, _ = run(capsys, "--nodes", nodes, "--job", job_file, "--output", "json")
    assert json.loads(out)["placed"] is placed
    assert status == (0 if placed else 3)
