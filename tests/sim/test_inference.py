"""Inference load in the simulator: the input file, the event loop's inference part (the
operator's autoscaler and replica lifecycle on the shared fleet), and determinism."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.sim.test_engine import h100_pool, hosts

from corral.cli import main
from corral.sim.engine import Options, simulate
from corral.sim.inference import ServiceLoad, read_trace, services
from corral.sim.results import RunResult, summary
from corral.sim.workload import WorkloadError, WorkloadJob

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2023, 11, 16, 18, 0, 0)


def trace(path: Path, rates: list[tuple[float, float]], context: int = 800, out: int = 40) -> Path:
    """A trace in the Azure format: (seconds, requests per second) segments, evenly spaced."""
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    start = 0.0
    for seconds, rate in rates:
        count = round(seconds * rate)
        for i in range(count):
            stamp = T0 + timedelta(seconds=start + i / rate)
            lines.append(f"{stamp:%Y-%m-%d %H:%M:%S.%f}0,{context},{out}")
        start += seconds
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def service(
    name: str = "chat",
    devices: int = 8,
    min_replicas: int = 1,
    max_replicas: int = 4,
    annotations: dict[str, str] | None = None,
    **autoscaling: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": "prod",
            "annotations": {"sim.corral.dev/trace": "trace.csv", **(annotations or {})},
        },
        "spec": {
            "acceleratorsPerReplica": devices,
            "autoscaling": {
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "concurrencyPerReplica": 4,
                "objectives": [
                    {
                        "name": "ttft",
                        "histogram": "ttft_seconds",
                        "type": "TimeToFirstToken",
                        "percentile": 99,
                        "latencyMs": 2000,
                    },
                    {
                        "name": "e2e",
                        "histogram": "e2e_seconds",
                        "type": "Latency",
                        "latencyMs": 30000,
                    },
                ],
                **autoscaling,
            },
            "template": {"spec": {"containers": [{"name": "server", "image": "vllm"}]}},
        },
    }


def loads(tmp_path: Path, *documents: dict[str, Any]) -> list[ServiceLoad]:
    return services(list(documents), "inference.yaml", tmp_path)


def by_service(result: RunResult) -> dict[str, Any]:
    data = summary(result)["inference"]
    assert data is not None
    return data


# -- input validation ------------------------------------------------------------------------

BAD = [
    (
        "no trace annotation",
        {"metadata": {"annotations": {}}},
        "metadata.annotations[sim.corral.dev/trace]: required",
    ),
    (
        "negative start",
        {"metadata": {"annotations": {"sim.corral.dev/trace": "trace.csv", "sim.corral.dev/start": "-5"}}},
        "metadata.annotations[sim.corral.dev/start]: '-5' is not a number >= 0",
    ),
    (
        "zero speed",
        {"metadata": {"annotations": {"sim.corral.dev/trace": "trace.csv", "sim.corral.dev/speed": "0"}}},
        "metadata.annotations[sim.corral.dev/speed]: '0' is not a number > 0",
    ),
    (
        "fractional repeat",
        {"metadata": {"annotations": {"sim.corral.dev/trace": "trace.csv", "sim.corral.dev/repeat": "1.5"}}},
        "metadata.annotations[sim.corral.dev/repeat]: '1.5' is not a whole number",
    ),
    (
        "min above max (the operator's own validation)",
        {"spec": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
        "minReplicas: 5 must be <= maxReplicas 2",
    ),
    (
        "missing trace file",
        {"metadata": {"annotations": {"sim.corral.dev/trace": "nope.csv"}}},
        "nope.csv: No such file or directory",
    ),
    ("wrong kind", {"kind": "TrainingJob"}, "kind: expected InferenceService"),
]  # fmt: skip


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[c[0] for c in BAD])
def test_a_malformed_inference_file_exits_2_with_one_line_naming_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    change: dict[str, Any],
    message: str,
) -> None:
    trace(tmp_path / "trace.csv", [(60, 1.0)])
    document = _merge(service(), change)
    if change.get("metadata", {}).get("annotations") == {}:
        document["metadata"]["annotations"] = {}
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(document))
    fleet = ROOT / "e2e" / "fleets" / "tiny.yaml"
    code = main(
        ["simulate", "--fleet", str(fleet), "--inference", str(path), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert message in err
    assert str(path) in err


TRACE_ROWS = [
    ("TIMESTAMP,ContextTokens\n2023-11-16 18:00:00.0,5\n", "line 1: column GeneratedTokens missing"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,5\n", "line 2: TIMESTAMP: 'yesterday' is not a time"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,5,-1\n", "line 2: GeneratedTokens: '-1' is not a token count"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "no requests"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), TRACE_ROWS)
def test_a_malformed_trace_names_its_line_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=message):
        read_trace(path)


def test_the_shipped_excerpt_reads_as_the_bench_reads_the_whole_trace() -> None:
    requests = read_trace(ROOT / "examples" / "sim" / "traces" / "azure-conv-10min.csv")
    assert len(requests) == 2867
    assert requests[0].arrival == 0.0 and 599 < requests[-1].arrival < 600
    assert requests[0].prefill == pytest.approx(0.02 + 374 / 8000)  # the first row: 374, 44
    assert requests[0].decode == pytest.approx(43 * 0.025)


def test_start_speed_and_repeat_place_the_load_in_simulated_time(tmp_path: Path) -> None:
    trace(tmp_path / "trace.csv", [(10, 1.0)])  # arrivals at 0..9 s
    annotations = {
        "sim.corral.dev/start": "100",
        "sim.corral.dev/speed": "2",
        "sim.corral.dev/repeat": "2",
    }
    (load,) = loads(tmp_path, service(annotations=annotations))
    arrivals = [r.arrival for r in load.requests]
    # At twice the speed the 10 arrivals are 0.5 s apart (0 .. 4.5 s); played again one mean
    # gap after the last, so the rate stays the trace's.
    assert arrivals[:10] == pytest.approx([100 + 0.5 * i for i in range(10)])
    assert arrivals[10:] == pytest.approx([105 + 0.5 * i for i in range(10)])


# -- the event loop --------------------------------------------------------------------------


def test_a_service_scales_up_with_its_load_and_back_down_after_it(tmp_path: Path) -> None:
    # 0.5 req/s, then 8 req/s, then 0.5 again; each request holds a slot ~1.1 s.
    trace(tmp_path / "trace.csv", [(600, 0.5), (900, 8.0), (900, 0.5)], out=40)
    result = simulate(hosts(4), [h100_pool()], [], Options(services=loads(tmp_path, service())))
    (outcome,) = result.services
    figures = by_service(result)["prod/chat"]
    assert figures["requests"] == figures["served"] == 300 + 7200 + 450
    assert figures["scaleUps"] >= 1 and figures["scaleDowns"] >= 1
    during = [r for t, r in zip(outcome.samples_time, outcome.samples_replicas, strict=True)
              if 900 <= t <= 1500]  # fmt: skip
    before = [r for t, r in zip(outcome.samples_time, outcome.samples_replicas, strict=True)
              if t < 600]  # fmt: skip
    assert max(during) > max(before)
    assert outcome.samples_replicas[-1] < max(during)
    assert figures["sloAttainment"] is not None and figures["sloAttainment"] > 0.8
    # Replica-hours are the pods' lifetimes; every replica is charged at the pool's price.
    assert figures["replicaHours"] > 0
    assert figures["deviceHours"] == pytest.approx(figures["replicaHours"] * 8, rel=0.01)
    assert figures["cost"] == pytest.approx(figures["deviceHours"] * 4.0, rel=0.01)
    # The service was deleted when its load ended: nothing of it is left on the fleet.
    assert not outcome.samples_time or result.end >= outcome.end
    assert figures["unplacedScaleUps"] == 0


def test_replicas_and_gangs_compete_for_the_same_hosts(tmp_path: Path) -> None:
    # Two hosts. The service starts at 2 replicas of a whole host each; a 1-host gang submitted
    # meanwhile waits until the load ends and the service is deleted.
    trace(tmp_path / "trace.csv", [(1200, 2.0)])
    document = service(min_replicas=2, max_replicas=2)
    options = Options(services=loads(tmp_path, document))
    gang = WorkloadJob("train", 60.0, 1, 8, 600.0)
    result = simulate(hosts(2), [h100_pool()], [gang], options)
    (job,) = result.jobs
    (outcome,) = result.services
    assert job.first_placed is not None and job.first_placed >= outcome.end
    alone = simulate(hosts(2), [h100_pool()], [gang], Options())
    assert alone.jobs[0].queue_delay == 0.0


def test_a_scale_up_with_no_room_waits_and_is_counted_unplaced(tmp_path: Path) -> None:
    # Two hosts, a 2-device replica each, a gang holding half of one host: room for 6 replicas
    # (the load keeps ~25 slots busy: 7 or more replicas of 4).
    trace(tmp_path / "trace.csv", [(1800, 12.0)], out=80)
    document = service(devices=2, max_replicas=12)
    gang = WorkloadJob("hold", 0.0, 1, 4, 7200.0)
    result = simulate(hosts(2), [h100_pool()], [gang], Options(services=loads(tmp_path, document)))
    (outcome,) = result.services
    figures = by_service(result)["prod/chat"]
    assert max(outcome.samples_replicas) == 6
    assert max(outcome.samples_desired) > 6
    assert figures["unplacedScaleUps"] >= 1
    assert figures["unplacedReplicaHours"] > 0
    assert result.jobs[0].queue_delay == 0.0  # the running gang is never touched


def test_the_same_inputs_give_the_same_outcome(tmp_path: Path) -> None:
    trace(tmp_path / "trace.csv", [(300, 1.0), (600, 6.0), (300, 1.0)])
    jobs = [WorkloadJob(f"j{i}", 30.0 * i, 1, 4, 400.0) for i in range(6)]

    def run() -> dict[str, Any]:
        options = Options(services=loads(tmp_path, service(devices=4, max_replicas=6)))
        data = summary(simulate(hosts(2), [h100_pool()], jobs, options))
        data.pop("simulation")
        return data

    first = run()
    assert json.dumps(first, sort_keys=True) == json.dumps(run(), sort_keys=True)
    # Pinned: a change of the autoscaler, the lifecycle or the event loop shows here.
    chat = first["inference"]["prod/chat"]
    pinned = {k: chat[k] for k in ("scaleUps", "scaleDowns", "peakReplicas", "replicaHours")}
    pinned["trainingMeanQueue"] = first["queueing"]["meanSeconds"]
    assert pinned == PINNED


PINNED: dict[str, Any] = {
    "scaleUps": 3,
    "scaleDowns": 0,
    "peakReplicas": 4,
    "replicaHours": 0.897,
    "trainingMeanQueue": 416.7,
}


@pytest.mark.parametrize("with_jobs", [False, True], ids=["inference only", "with a workload"])
def test_the_cli_reports_the_services_and_their_effect_on_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], with_jobs: bool
) -> None:
    trace(tmp_path / "trace.csv", [(300, 2.0)])
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(service(devices=4)))
    args = [
        "simulate",
        "--fleet",
        str(ROOT / "e2e" / "fleets" / "tiny.yaml"),
        "--inference",
        str(path),
    ]
    if with_jobs:
        jobs = tmp_path / "w.jsonl"
        jobs.write_text(
            '{"name": "a", "submit": 10, "workers": 4, "devicesPerWorker": 8, "duration": 60}\n'
        )
        args += ["--workload", str(jobs)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    chat = data["inference"]["prod/chat"]
    assert chat["served"] == chat["requests"] == 600
    assert "prod/chat:" in capsys.readouterr().out
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Inference: replicas and load" in page
    if with_jobs:
        # The 4-host gang waits until the service (on one of the hosts) is gone.
        effect = data["inferenceEffect"]
        assert effect["meanSeconds"]["without"] == 0.0
        assert effect["meanSeconds"]["with"] > 250
    else:
        assert "inferenceEffect" not in data
