"""Workload files: the documented format, and one line naming file, line and field for a bad row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.sim.workload import WorkloadError, WorkloadJob, dump, load, training_job

EPOCH = datetime(2026, 12, 1, tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_and_jsonl_describe_the_same_jobs(tmp_path: Path) -> None:
    csv_file = write(
        tmp_path,
        "w.csv",
        "name,submit,workers,devicesPerWorker,duration,priority,accelerators,throughput,"
        "topologyRequired,team,namespace,carbonAware,deadline\n"
        "a,0,4,8,3600,10,H100-80GB|A100-80GB,H100-80GB=3|A100-80GB=1,block,nlp,research,true,"
        "20000\n"
        "b,5.5,1,1,60,,,,,,,,\n",
    )
    jsonl = write(
        tmp_path,
        "w.jsonl",
        json.dumps(
            {
                "name": "a",
                "submit": 0,
                "workers": 4,
                "devicesPerWorker": 8,
                "duration": 3600,
                "priority": 10,
                "accelerators": ["H100-80GB", "A100-80GB"],
                "throughput": {"H100-80GB": 3, "A100-80GB": 1},
                "topologyRequired": "block",
                "team": "nlp",
                "namespace": "research",
                "carbonAware": True,
                "deadline": 20000,
            }
        )
        + "\n# a comment\n\n"
        + json.dumps({"name": "b", "submit": 5.5, "duration": 60})
        + "\n",
    )
    assert load(csv_file) == load(jsonl)
    a, b = load(jsonl)
    assert a.required == "network.corral.dev/block"
    assert a.run_seconds("A100-80GB") == 3 * 3600 and a.run_seconds("H100-80GB") == 3600
    assert (b.workers, b.devices_per_worker, b.namespace) == (1, 1, "default")


def test_steps_times_step_seconds_is_the_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "w.jsonl", '{"submit": 0, "steps": 100, "stepSeconds": 1.5}\n')
    (job,) = load(path)
    assert job.duration == 150 and job.name == "job-000000"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "w.jsonl",
            '{"submit": 0, "duration": 5}\n{"submit": 1, "workers": 0, "duration": 5}\n',
            "w.jsonl:2: workers: must be >= 1",
        ),
        (
            "w.jsonl",
            '{"submit": 0}\n',
            "w.jsonl:1: duration: required (or steps with stepSeconds, or finishAt)",
        ),
        ("w.jsonl", '{"submit": 0, "duration": 5, "gpus": 3}\n', "w.jsonl:1: gpus: unknown field"),
        ("w.jsonl", '{"submit": 0, "duration": 5\n', "w.jsonl:1: not JSON"),
        ("w.jsonl", "[1, 2]\n", "w.jsonl:1: a row is a JSON object"),
        (
            "w.jsonl",
            '{"submit": 9, "duration": 5, "deadline": 3}\n',
            "w.jsonl:1: deadline: must be after submit",
        ),
        (
            "w.jsonl",
            '{"submit": 0, "duration": 5, "carbonAware": true}\n',
            "w.jsonl:1: carbonAware: needs a deadline or startBy",
        ),
        (
            "w.jsonl",
            '{"name": "x", "submit": 0, "duration": 5}\n{"name": "x", "submit": 0, "duration": 5}\n',
            "w.jsonl:2: name: default/x is also on line 1",
        ),
        (
            "w.jsonl",
            '{"name": "Bad_Name", "submit": 0, "duration": 5}\n',
            "w.jsonl:1: name: must match",
        ),
        (
            "w.csv",
            "submit,duration,capacityTypes\n0,5,spot|cheap\n",
            "w.csv:2: capacityTypes[1]: must be one of",
        ),
        (
            "w.csv",
            "submit,duration,throughput\n0,5,H100\n",
            "w.csv:2: throughput: write type=rate pairs",
        ),
        ("w.csv", "submit,duration\n0,5,7\n", "w.csv:2: more cells than the header"),
        ("w.jsonl", "", "w.jsonl: no jobs"),
    ],
)
def test_a_bad_row_is_one_line_naming_file_line_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(WorkloadError) as info:
        load(path)
    assert str(info.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(info.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="No such file"):
        load(tmp_path / "absent.jsonl")


def test_dump_writes_what_load_reads(tmp_path: Path) -> None:
    jobs = [
        WorkloadJob("a", 0.0, 2, 8, 3600.0, namespace="ml", team="nlp", deadline=9000.0,
                    carbon_aware=True, required="network.corral.dev/block",
                    accelerators=("H100-80GB",), throughput=(("H100-80GB", 2.0),),
                    cpu_millis=8000, memory_mib=65536, checkpoint_seconds=600, fail_after=100),
        WorkloadJob("b", 1.5, 1, 1, 60.0),
    ]  # fmt: skip
    path = tmp_path / "w.jsonl"
    dump(jobs, path)
    assert load(path) == jobs


def test_a_row_becomes_the_training_job_a_user_would_apply() -> None:
    job = WorkloadJob(
        "a", 30.0, 2, 8, 3600.0, namespace="ml", team="nlp", deadline=9000.0, carbon_aware=True,
        objective="CostPerWork", throughput=(("H100-80GB", 2.0),), cpu_millis=8000,
    )  # fmt: skip
    tj = training_job(job, EPOCH)
    assert tj.metadata.labels == {"corral.dev/team": "nlp"}
    assert tj.metadata.creationTimestamp == datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    assert tj.spec.workers == 2 and tj.spec.accelerators_per_worker == 8
    assert tj.spec.deadline == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
    assert tj.spec.carbon_deferral is not None
    assert tj.spec.carbon_deferral.expected_duration_seconds == 3600
    assert tj.spec.placement_objective == "CostPerWork"
    container = tj.spec.template["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "8000m"}
