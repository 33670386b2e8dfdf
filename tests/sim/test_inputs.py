"""The simulator's inputs besides workload files: the generator, the openb trace, spot traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.sim import openb
from corral.sim.generate import GeneratorParams, arrival_rate, describe, generate
from corral.sim.spot import load as load_spot
from corral.sim.workload import WorkloadError


def test_the_generator_is_deterministic_for_a_seed() -> None:
    params = GeneratorParams()
    assert generate(params, 1024, 6, 0.85, 3) == generate(params, 1024, 6, 0.85, 3)
    assert generate(params, 1024, 6, 0.85, 3) != generate(params, 1024, 6, 0.85, 4)


def test_generated_gangs_have_the_published_shape() -> None:
    jobs = generate(GeneratorParams(), 8192, 48, 0.85, 1)
    shape = describe(jobs)["by_devices"]
    small_jobs = sum(v["jobs_share"] for k, v in shape.items() if int(k) <= 8)
    big_time = sum(v["device_time_share"] for k, v in shape.items() if int(k) > 8)
    assert small_jobs > 0.85  # most jobs fit one 8-device host
    assert big_time > 0.5  # the few big gangs take most of the device-time
    assert max(job.devices for job in jobs) == 256
    for job in jobs:
        assert (job.devices <= 8 and job.workers == 1) or job.devices_per_worker == 8


def test_the_offered_load_is_the_target() -> None:
    params = GeneratorParams(size_mix=((8, 1.0),), sigma=0.1)
    jobs = generate(params, 512, 200, 0.5, 9)
    offered = sum(job.devices * job.duration for job in jobs) / (512 * 200 * 3600)
    assert offered == pytest.approx(0.5, rel=0.1)
    assert arrival_rate(params, 512, 0.5) * 200 * 3600 == pytest.approx(len(jobs), rel=0.1)


NODES = """sn,cpu_milli,memory_mib,gpu,model
openb-node-0001,64000,262144,2,P100
openb-node-0002,96000,786432,8,G2
openb-node-0003,32000,262144,0,
"""
TASKS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
openb-pod-0000,12000,16384,1,1000,,LS,Running,0,600,10
openb-pod-0001,6000,12288,1,460,P100|G2,BE,Failed,5,100,5
openb-pod-0002,6000,12288,0,0,,BE,Running,5,100,5
openb-pod-0003,6000,12288,8,1000,,BE,Pending,5,100,
"""


def test_openb_fleet_keeps_gpu_nodes_with_one_pool_per_model(tmp_path: Path) -> None:
    path = tmp_path / "openb_node_list_gpu_node.csv"
    path.write_text(NODES)
    assert openb.is_node_list(path) and not openb.is_task_list(path)
    nodes, pools = openb.fleet(path)
    assert [n["metadata"]["name"] for n in nodes] == ["openb-node-0001", "openb-node-0002"]
    assert nodes[0]["status"]["allocatable"] == {
        "cpu": "64000m",
        "memory": "262144Mi",
        "pods": "110",
        "nvidia.com/gpu": "2",
    }
    assert [(p.metadata.name, p.spec.accelerator.type) for p in pools] == [
        ("g2", "G2"),
        ("p100", "P100"),
    ]


def test_openb_tasks_that_ran_become_jobs(tmp_path: Path) -> None:
    path = tmp_path / "openb_pod_list_gpuspec33.csv"
    path.write_text(TASKS)
    assert openb.is_task_list(path)
    tasks = openb.tasks(path)
    assert [(t.name, t.gpus, t.models, t.seconds) for t in tasks] == [
        ("openb-pod-0000", 1, (), 590.0),
        ("openb-pod-0001", 1, ("G2", "P100"), 95.0),
    ]
    jobs = openb.sample(tasks, devices=10, hours=1, load=0.5, seed=1)
    assert jobs and all(j.workers == 1 and j.namespace == "openb" for j in jobs)
    assert jobs == openb.sample(tasks, devices=10, hours=1, load=0.5, seed=1)


def test_an_openb_file_missing_a_column_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text("sn,cpu_milli\nx,1\n")
    with pytest.raises(WorkloadError, match="not an openb file: no column memory_mib"):
        openb.fleet(path)


def test_spot_traces_give_the_available_share(tmp_path: Path) -> None:
    one = tmp_path / "a_v100_1.json"
    one.write_text(json.dumps({"metadata": {"gap_seconds": 60}, "data": [1, 0, 1]}))
    many = tmp_path / "b_v100_16.json"
    many.write_text(json.dumps({"metadata": {"gap_seconds": 300}, "data": [16, 8, 4]}))
    a, b = load_spot(tmp_path)
    assert [a.share(t) for t in (0, 59, 60, 125, 180)] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert [b.share(t) for t in (0, 300, 600)] == [1.0, 0.5, 0.25]
    assert load_spot(one) == [a]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"metadata": {"gap_seconds": 0}, "data": [1]}',
            "metadata.gap_seconds: must be a number > 0",
        ),
        ('{"metadata": {"gap_seconds": 5}, "data": []}', "data: must be a non-empty list"),
        ('{"metadata": {"gap_seconds": 5}, "data": [1, -1]}', "data[1]: must be an integer >= 0"),
        ("[1]", "a spot trace is a JSON object"),
        ("{", "not JSON"),
    ],
)
def test_a_bad_spot_trace_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(WorkloadError) as info:
        load_spot(path)
    assert message in str(info.value) and str(path) in str(info.value)
