"""Sample objects survive YAML -> model -> YAML, with the defaults of DESIGN.md applied."""

from __future__ import annotations

import pytest
import yaml
from tests.api.objects import example, minimal

from corral.api import GPUPool, InferenceService, TrainingJob, parse_object

KINDS = ["GPUPool", "TrainingJob", "InferenceService"]


@pytest.mark.parametrize("kind", KINDS)
def test_example_round_trips(kind: str) -> None:
    doc = example(kind)
    obj = parse_object(doc)
    wire = obj.to_wire()
    again = parse_object(yaml.safe_load(yaml.safe_dump(wire)))
    assert again == obj
    # Everything the user wrote is kept exactly.
    for key, value in doc["spec"].items():
        assert wire["spec"][key] == value or isinstance(value, dict), key


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_round_trips(kind: str) -> None:
    obj = parse_object(minimal(kind))
    assert parse_object(obj.to_wire()) == obj


def test_gpupool_defaults() -> None:
    pool = parse_object(minimal("GPUPool"))
    assert isinstance(pool, GPUPool)
    spec = pool.to_wire()["spec"]
    assert spec["resourceName"] == "nvidia.com/gpu"
    assert spec["capacityType"] == "auto"
    assert spec["topology"]["levels"] == [
        "topology.kubernetes.io/zone",
        "network.corral.dev/block",
        "network.corral.dev/rack",
        "kubernetes.io/hostname",
    ]
    assert spec["pricing"]["currency"] == "USD"


def test_trainingjob_defaults() -> None:
    job = parse_object(minimal("TrainingJob"))
    assert isinstance(job, TrainingJob)
    spec = job.to_wire()["spec"]
    assert spec["acceleratorsPerWorker"] == 1
    assert spec["checkpoint"] == {
        "intervalSeconds": 1800,
        "onInterruption": True,
        "hook": {"annotation": {}},
        "timeoutSeconds": 90,
    }
    assert spec["capacity"]["types"] == ["on-demand", "reserved", "spot"]
    assert "prefer" not in spec["capacity"]
    assert spec["priority"] == 0
    assert spec["maxRestarts"] == 10
    assert spec["suspend"] is False
    assert spec["placementTimeoutSeconds"] == 120
    assert spec["rendezvous"] == {"port": 29500, "replaceInPlace": True}


def test_inferenceservice_defaults() -> None:
    doc = minimal("InferenceService")
    del doc["spec"]["replicas"]
    doc["spec"]["autoscaling"] = {"slo": {"latencyMs": 250}}
    svc = parse_object(doc)
    assert isinstance(svc, InferenceService)
    autoscaling = svc.to_wire()["spec"]["autoscaling"]
    assert autoscaling["minReplicas"] == 1
    assert autoscaling["maxReplicas"] == 32
    assert autoscaling["slo"] == {"percentile": 99.0, "latencyMs": 250.0}
    assert autoscaling["behavior"] == {
        "scaleUpStabilizationSeconds": 0,
        "scaleDownStabilizationSeconds": 300,
        "maxScaleUpRate": 2.0,
        "maxScaleDownRate": 0.5,
        "tolerance": 0.1,
    }
    assert autoscaling["concurrencyPerReplica"] == 1
    assert autoscaling["startupSeconds"] == 60


def test_deadline_is_rfc3339_utc() -> None:
    doc = minimal("TrainingJob")
    doc["spec"]["deadline"] = "2026-12-01T01:00:00+01:00"
    wire = parse_object(doc).to_wire()
    assert wire["spec"]["deadline"] == "2026-12-01T00:00:00Z"


def test_status_round_trips_conditions() -> None:
    doc = minimal("TrainingJob")
    doc["status"] = {
        "phase": "Running",
        "observedGeneration": 3,
        "placement": {
            "pool": "h100",
            "level": "network.corral.dev/rack",
            "domain": "r1",
            "nodes": ["a", "b"],
        },
        "conditions": [
            {
                "type": "Placed",
                "status": "True",
                "reason": "GangPlaced",
                "message": "2 workers in rack r1",
                "lastTransitionTime": "2026-11-22T05:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "futureField": "ignored by an older operator",
    }
    job = parse_object(doc)
    wire = job.to_wire()
    assert wire["status"]["conditions"][0]["lastTransitionTime"] == "2026-11-22T05:00:00Z"
    assert "futureField" not in wire["status"]
