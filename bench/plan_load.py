"""How long `corral plan` takes to read a large node list, against the pure-Python YAML loader.

Issue 9 measured 16 s for a 5.6 MB `kubectl get nodes -o yaml` with PyYAML's pure-Python
SafeLoader although libyaml was installed. This script writes such a list (nodes as a cluster
returns them: ~30 labels, conditions, images, managedFields), then times, in one run:
- `baseline`: `yaml.safe_load` (pure Python), what `corral plan` used before;
- `corral plan read`: `corral.commands.common.read_documents` (libyaml, with the depth, size and
  alias checks), the same text;
- `corral plan read (json)`: the same list as `kubectl get -o json` writes it;
- `corral plan`: the whole command on the YAML file (read, strict parse, snapshot, solve).
It prints the ratio to the baseline and writes bench/results/plan_load.json. The target is "a few
seconds" for the whole command (5 s here), and it says so when missed.

    .venv/bin/python bench/plan_load.py [--nodes 1220] [--out bench/results/plan_load.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from corral.cli import main
from corral.commands.common import read_documents
from corral.fleet.testing import job, node

TARGET_SECONDS = 5.0


def cluster_node(index: int) -> dict[str, Any]:
    """A node as `kubectl get nodes -o yaml` shows it, with what a real GPU node carries."""
    obj = (
        node(f"gpu-node-{index:05d}")
        .zone(f"eu-west-1{'abc'[index % 3]}")
        .block(f"b{index // 256}")
        .rack(f"r{index // 16}")
        .gpus(8)
        .cpu("192")
        .memory("2Ti")
        .obj()
    )
    meta = obj["metadata"]
    meta["labels"].update({f"feature.node.kubernetes.io/cpu-cpuid.F{j}": "true" for j in range(20)})
    meta["annotations"] = {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    meta["managedFields"] = [
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:status": {
                    "f:conditions": {
                        f'k:{{"type":"C{j}"}}': {".": {}, "f:lastHeartbeatTime": {}}
                        for j in range(5)
                    }
                }
            },
        }
    ]
    status = obj["status"]
    status["conditions"] += [
        {
            "type": f"C{j}",
            "status": "False",
            "reason": "KubeletHasSufficientMemory",
            "message": "kubelet has sufficient memory available",
            "lastHeartbeatTime": "2026-11-30T10:00:00Z",
            "lastTransitionTime": "2026-11-30T09:00:00Z",
        }
        for j in range(4)
    ]
    status["images"] = [
        {
            "names": [
                f"registry.example.com/ml/image-{j}@sha256:{'ab' * 32}",
                f"registry.example.com/ml/image-{j}:v1",
            ],
            "sizeBytes": 1234567890,
        }
        for j in range(5)
    ]
    status["nodeInfo"] = {
        "architecture": "amd64",
        "kernelVersion": "6.8.0-1015-aws",
        "kubeletVersion": "v1.36.3",
        "osImage": "Ubuntu 24.04.1 LTS",
        "machineID": "0" * 32,
        "systemUUID": "1" * 36,
        "bootID": "2" * 36,
    }
    return obj


def timed(action: Any, repeat: int = 3) -> float:
    """The median of `repeat` runs, in seconds (process time: other work on the machine does not
    count against it)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=1220)
    parser.add_argument("--out", default="bench/results/plan_load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        items = [cluster_node(i) for i in range(args.nodes)]
        listing = {"apiVersion": "v1", "kind": "List", "items": items}
        text = yaml.safe_dump(listing)
        (folder / "nodes.yaml").write_text(text)
        (folder / "nodes.json").write_text(json.dumps(listing))
        (folder / "job.yaml").write_text(yaml.safe_dump(job("j").workers(4).gpus(8).dict()))
        megabytes = len(text.encode()) / 1e6

        def plan() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                argv = [
                    "plan",
                    "--nodes",
                    str(folder / "nodes.yaml"),
                    "--job",
                    str(folder / "job.yaml"),
                ]
                assert main(argv) == 0

        figures = {
            "baseline: yaml.safe_load (pure Python)": timed(lambda: yaml.safe_load(text), repeat=1),
            "corral plan read (libyaml)": timed(lambda: read_documents(folder / "nodes.yaml")),
            "corral plan read (json)": timed(lambda: read_documents(folder / "nodes.json")),
            "corral plan (whole command)": timed(plan),
        }
    baseline = figures["baseline: yaml.safe_load (pure Python)"]
    print(f"{args.nodes} nodes, {megabytes:.1f} MB of YAML (process time, median of 3)")
    for name, seconds in figures.items():
        print(f"  {name:<42} {seconds:7.2f} s   x{baseline / seconds:5.1f} faster than baseline")
    whole = figures["corral plan (whole command)"]
    verdict = "met" if whole <= TARGET_SECONDS else "MISSED"
    print(f"target: the whole command in at most {TARGET_SECONDS:g} s: {verdict} ({whole:.2f} s)")
    Path(args.out).write_text(
        json.dumps(
            {
                "nodes": args.nodes,
                "megabytes": round(megabytes, 2),
                "seconds": {k: round(v, 3) for k, v in figures.items()},
                "target_seconds": TARGET_SECONDS,
                "target_met": whole <= TARGET_SECONDS,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main_bench()
