"""The Alibaba `openb` GPU cluster trace (2023) as a simulator fleet and workload.

Source: github.com/alibaba/clusterdata, `cluster-trace-gpu-v2023` (the traces of Weng et al.,
"Beware of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent",
USENIX ATC '23), released for research and study. Read in place; never copied into this
repository. docs/simulate.md says how each field is used.

- **Fleet**: `openb_node_list_gpu_node.csv`, 1,213 nodes with 6,212 GPUs of seven models. Each
  node keeps its CPUs, memory and GPU count; one GPUPool per model (`accelerator.type` = the
  model). The trace has no network topology: the pools have the host level only.
- **Workload**: `openb_pod_list_*.csv`, single-node tasks. GPU tasks that ran (a
  `scheduled_time`) keep their GPU count, CPU and memory requests, accepted GPU models
  (`gpu_spec`, in the `gpuspec33` file) and run time (`deletion_time - scheduled_time`). A
  GPU-sharing task (`gpu_milli` < 1000) takes a whole device: Corral allocates whole devices.
  CPU-only tasks and tasks that never ran are left out.

As recorded, the trace offers about 1 % of its fleet (some 50 GPUs busy at a time out of 6,212):
it is a sample of the cluster's tasks. `sample` draws tasks from it (uniformly, with replacement,
seeded) as Poisson arrivals until the offered load — each task's GPUs x its run time, counted up to
the horizon — reaches the target. The task population is real; the arrival rate is ours.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.api.gpupool import GPUPool
from corral.sim.workload import WorkloadError, WorkloadJob

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
TASK_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
PRODUCT_LABEL = "nvidia.com/gpu.product"
MODEL_MEMORY_GIB = {"P100": 16, "T4": 16, "V100M16": 16, "V100M32": 32, "A10": 24}
"""Device memory of the disclosed models; G1-G3 are undisclosed (placeholder 32 GiB: no openb task
asks for a memory size, so it decides nothing)."""


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise WorkloadError(f"{path}: not an openb file: no column {missing[0]}")
            return list(reader)
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None


def is_node_list(path: str | Path) -> bool:
    return _header(path)[: len(NODE_COLUMNS)] == list(NODE_COLUMNS)


def is_task_list(path: str | Path) -> bool:
    return _header(path)[: len(TASK_COLUMNS)] == list(TASK_COLUMNS)


def _header(path: str | Path) -> list[str]:
    path = Path(path)
    if path.suffix != ".csv":
        return []
    try:
        with path.open(newline="") as handle:
            return next(csv.reader(handle), [])
    except OSError:
        return []


def fleet(path: str | Path) -> tuple[list[dict[str, Any]], list[GPUPool]]:
    """Node objects of the GPU nodes of an openb node list, and one pool per GPU model."""
    path = Path(path)
    nodes: list[dict[str, Any]] = []
    models: set[str] = set()
    for line, row in enumerate(_rows(path, NODE_COLUMNS), start=2):
        try:
            gpus = int(row["gpu"])
            cpu, memory = int(row["cpu_milli"]), int(row["memory_mib"])
        except ValueError:
            raise WorkloadError(f"{path}:{line}: gpu, cpu_milli, memory_mib: integers") from None
        model = row["model"]
        if gpus <= 0 or not model:
            continue
        models.add(model)
        resources = {
            "cpu": f"{cpu}m",
            "memory": f"{memory}Mi",
            "pods": "110",
            "nvidia.com/gpu": str(gpus),
        }
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": row["sn"],
                    "labels": {"kubernetes.io/hostname": row["sn"], PRODUCT_LABEL: model},
                },
                "spec": {},
                "status": {
                    "allocatable": resources,
                    "capacity": dict(resources),
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    pools = [
        GPUPool.model_validate(
            {
                "metadata": {"name": model.lower()},
                "spec": {
                    "nodeSelector": {"matchLabels": {PRODUCT_LABEL: model}},
                    "accelerator": {"type": model, "memoryGiB": MODEL_MEMORY_GIB.get(model, 32)},
                    "topology": {"levels": ["kubernetes.io/hostname"]},
                    "capacityType": "on-demand",
                },
            }
        )
        for model in sorted(models)
    ]
    return nodes, pools


@dataclass(frozen=True)
class Task:
    name: str
    gpus: int
    cpu_millis: int
    memory_mib: int
    models: tuple[str, ...]
    seconds: float


def tasks(path: str | Path) -> list[Task]:
    """The GPU tasks of an openb pod list that ran."""
    path = Path(path)
    out: list[Task] = []
    for line, row in enumerate(_rows(path, TASK_COLUMNS), start=2):
        try:
            gpus = int(row["num_gpu"])
            if gpus <= 0 or not row.get("scheduled_time") or not row.get("deletion_time"):
                continue
            seconds = float(int(row["deletion_time"]) - int(row["scheduled_time"]))
            cpu, memory = int(row["cpu_milli"]), int(row["memory_mib"])
        except ValueError:
            raise WorkloadError(f"{path}:{line}: a number column is not an integer") from None
        spec = row.get("gpu_spec") or ""
        models = tuple(sorted({m for m in spec.split("|") if m}))
        out.append(Task(row["name"], gpus, cpu, memory, models, max(1.0, seconds)))
    if not out:
        raise WorkloadError(f"{path}: no GPU task that ran")
    return out


def offered_device_seconds(task: Task, horizon: float) -> float:
    return task.gpus * min(task.seconds, horizon)


def sample(
    population: list[Task], devices: int, hours: float, load: float, seed: int
) -> list[WorkloadJob]:
    """Poisson arrivals of tasks drawn from the trace, offering `load` of `devices` over `hours`."""
    horizon = hours * 3600.0
    mean = sum(offered_device_seconds(t, horizon) for t in population) / len(population)
    rate = load * devices / mean
    rng = random.Random(seed)
    jobs: list[WorkloadJob] = []
    now = 0.0
    while True:
        now += rng.expovariate(rate)
        if now >= horizon:
            return jobs
        task = population[rng.randrange(len(population))]
        jobs.append(
            WorkloadJob(
                name=f"{task.name}-{len(jobs):06d}",
                submit=round(now, 3),
                workers=1,
                devices_per_worker=task.gpus,
                duration=task.seconds,
                namespace="openb",
                team="openb",
                accelerators=task.models,
                cpu_millis=task.cpu_millis,
                memory_mib=task.memory_mib,
            )
        )
