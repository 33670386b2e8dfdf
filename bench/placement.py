"""Placement benchmark: Corral's exact solver against three baselines, in one run.

    .venv/bin/python bench/placement.py [--quick] [--out bench/results/placement.json]

Fleets of 1,000, 5,000 and 10,000 hosts x 8 devices with four topology levels (zone > block >
rack > host: 16 hosts a rack, 8 racks a block, blocks dealt over 4 zones), filled to ~60 % of
their devices by pods of 8, 8, 4, 2 and 1 devices on random hosts. Gangs of 1, 8, 64 and 512
workers of 8 devices, and of 1 device, with no topology constraint: each algorithm does its best.

Algorithms (`corral.placement.baselines.POLICIES`, the ones `corral simulate` compares too):
- corral: `corral.placement.place` on a `FleetSnapshot`. *cold* = first solve of a worker shape
  (its capacity index and memos built in the call; median of 3); *warm* = after one pod changed since the
  previous solve (what the operator pays on every event); the median and p99 are warm.
- first-fit: hosts in name order, as many workers on each as fit.
- spread: kube-scheduler-like LeastAllocated, one worker at a time on the host with the most free
  devices; no topology.
- kueue-bestfit: Kueue TAS-like: phase 1 counts the workers each domain holds up the tree; phase 2
  takes the lowest level whose best-fit domain (least room that still holds the gang) exists,
  then descends, at each level taking children by room, largest first, the last one best-fit.

Quality: the span (lowest common level of the hosts used) and the domains used per level.
Baselines run on the same snapshot and its capacity index (whole workers per node kept current),
after the same pod change as Corral's warm solve.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.fleet import FleetSnapshot
from corral.fleet.testing import BLOCK, HOST, RACK, ZONE, node, pod, pool
from corral.placement import NoFit, Placement, PlacementRequest, place
from corral.placement.baselines import POLICIES

HOSTS_PER_RACK = 16
RACKS_PER_BLOCK = 8
ZONES = 4
DEVICES = 8
OCCUPANCY = 0.6
POD_SIZES = (8, 8, 4, 2, 1)
LEVELS = ("zone", "block", "rack", "host")
TARGETS = [
    # (what, hosts, workers, devices per worker, target ms)
    ("64-worker gang (x 8 devices) on 5,000 hosts, median", 5000, 64, 8, 8.0),
    ("512-device gang (64 x 8) on 10,000 hosts, median", 10000, 64, 8, 100.0),
    ("512-device gang (512 x 1) on 10,000 hosts, median", 10000, 512, 1, 100.0),
]
UPDATE_TARGET_MS = 1.0
COLD_RUNS = 3
"""Cold solves per gang (caches dropped before each); the median is reported."""


@dataclass
class Host:
    name: str
    zone: str
    block: str
    rack: str
    free: int


@dataclass
class Fleet:
    hosts: list[Host]
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]


def generate(count: int, seed: int) -> Fleet:
    rng = random.Random(seed)
    hosts = []
    nodes = []
    for index in range(count):
        rack = index // HOSTS_PER_RACK
        block = rack // RACKS_PER_BLOCK
        zone = block % ZONES
        host = Host(f"h{index:05d}", f"z{zone}", f"b{block:03d}", f"r{rack:04d}", DEVICES)
        hosts.append(host)
        nodes.append(
            node(host.name).zone(host.zone).block(host.block).rack(host.rack).gpus(DEVICES).obj()
        )
    used = 0
    pods = []
    while used < OCCUPANCY * DEVICES * count:
        size = rng.choice(POD_SIZES)
        for _ in range(50):
            host = hosts[rng.randrange(count)]
            if host.free >= size:
                host.free -= size
                used += size
                pods.append(pod(f"p{len(pods)}").on(host.name).gpus(size).obj())
                break
    return Fleet(hosts, nodes, pods)


# -- quality -------------------------------------------------------------------------------------


def quality(result: Placement | NoFit) -> dict[str, Any]:
    if not isinstance(result, Placement):
        return {"placed": False, "span": None, "domains": None}
    counts = result.domains_per_level
    domains = {
        "zone": counts.get(ZONE, 1),
        "block": counts.get(BLOCK, 1),
        "rack": counts.get(RACK, 1),
        "host": counts.get(HOST, result.hosts),
    }
    span = "pool"
    for level in reversed(LEVELS):
        if domains[level] == 1:
            span = level
            break
    return {"placed": True, "span": span, "domains": domains}


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


# -- the run -------------------------------------------------------------------------------------


def run(sizes: list[int], gangs: list[tuple[int, int]], trials: int, seed: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    updates: dict[str, Any] = {}
    for size in sizes:
        fleet = generate(size, seed)
        started = time.perf_counter()
        snapshot = FleetSnapshot.build(
            fleet.nodes, fleet.pods, [pool("fleet").levels(ZONE, BLOCK, RACK).obj()]
        )
        build_s = time.perf_counter() - started
        rng = random.Random(seed + size)
        update_ms: list[float] = []
        print(
            f"\n{size} hosts: {len(fleet.pods)} pods, "
            f"{sum(h.free == DEVICES for h in fleet.hosts)} wholly free hosts, "
            f"snapshot built in {build_s:.2f} s",
            file=sys.stderr,
        )
        for workers, devices in gangs:
            request = PlacementRequest(
                key="bench/gang", workers=workers, devices_per_worker=devices
            )
            colds = []
            for _ in range(COLD_RUNS):
                snapshot.drop_caches()
                spent, _ = timed(lambda: place(snapshot, request))  # noqa: B023
                colds.append(spent)
            cold_ms = statistics.median(colds)
            samples: dict[str, list[float]] = {name: [] for name in POLICIES}
            count = trials if workers * devices < 4096 else max(5, trials // 3)
            for _ in range(count):
                changed = fleet.pods[rng.randrange(len(fleet.pods))]
                finished = {**changed, "status": {"phase": "Succeeded"}}
                spent, _ = timed(lambda: snapshot.upsert_pod(finished))  # noqa: B023
                update_ms.append(spent)
                for name, policy in POLICIES.items():
                    spent, _ = timed(lambda: policy(snapshot, request))  # noqa: B023
                    samples[name].append(spent)
                spent, _ = timed(lambda: snapshot.upsert_pod(changed))  # noqa: B023
                update_ms.append(spent)
            for name, policy in POLICIES.items():
                row: dict[str, Any] = {
                    "hosts": size,
                    "workers": workers,
                    "devices_per_worker": devices,
                    "algorithm": name,
                    "median_ms": statistics.median(samples[name]),
                    "p99_ms": percentile(samples[name], 0.99),
                    "samples": len(samples[name]),
                }
                if name == "corral":
                    row["cold_ms"] = cold_ms
                rows.append({**row, **quality(policy(snapshot, request))})
            print(f"  {workers} x {devices}: done", file=sys.stderr)
        updates[str(size)] = {
            "median_ms": statistics.median(update_ms),
            "p99_ms": percentile(update_ms, 0.99),
            "samples": len(update_ms),
        }
    return {"rows": rows, "updates": updates}


def corral_row(
    rows: list[dict[str, Any]], hosts: int, workers: int, devices: int
) -> dict[str, Any] | None:
    for row in rows:
        if (row["algorithm"], row["hosts"], row["workers"], row["devices_per_worker"]) == (
            "corral",
            hosts,
            workers,
            devices,
        ):
            return row
    return None


def table(results: dict[str, Any]) -> str:
    rows = results["rows"]
    header = (
        f"{'hosts':>6} {'gang':>8} {'algorithm':<14} {'median ms':>10} {'p99 ms':>9} "
        f"{'cold ms':>9} {'vs corral':>10}  {'span':<6} {'zones':>5} {'blocks':>6} "
        f"{'racks':>5} {'hosts':>5}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        corral = corral_row(rows, row["hosts"], row["workers"], row["devices_per_worker"])
        ratio = ""
        if row["algorithm"] != "corral" and corral is not None and row["median_ms"] > 0:
            ratio = f"{corral['median_ms'] / row['median_ms']:.1f}x"
        domains = row["domains"] or {}
        cold = f"{row['cold_ms']:.1f}" if "cold_ms" in row else ""
        lines.append(
            f"{row['hosts']:>6} {str(row['workers']) + 'x' + str(row['devices_per_worker']):>8} "
            f"{row['algorithm']:<14} {row['median_ms']:>10.2f} {row['p99_ms']:>9.2f} {cold:>9} "
            f"{ratio:>10}  {(row['span'] or 'no fit'):<6} {domains.get('zone', ''):>5} "
            f"{domains.get('block', ''):>6} {domains.get('rack', ''):>5} {domains.get('host', ''):>5}"
        )
    lines.append("")
    lines.append(
        "vs corral = Corral's warm median / the baseline's median (how much slower Corral is)."
    )
    lines.append("")
    lines.append("Snapshot update for one pod change (upsert with the capacity indexes kept):")
    for size, update in results["updates"].items():
        lines.append(
            f"  {size:>6} hosts: median {update['median_ms'] * 1000:.0f} us, "
            f"p99 {update['p99_ms'] * 1000:.0f} us (target {UPDATE_TARGET_MS * 1000:.0f} us)"
        )
    lines.append("")
    lines.append("Targets:")
    for target in results["targets"]:
        state = "met" if target["met"] else "MISSED"
        extra = (
            f"warm (cold {target['cold_ms']:.1f} ms)"
            if "cold_ms" in target
            else f"(p99 {target['p99_ms']:.3f} ms)"
        )
        lines.append(
            f"  {target['what']}: {target['measured_ms']:.3f} ms {extra} "
            f"vs {target['target_ms']:g} ms: {state}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 hosts only, few trials")
    parser.add_argument("--trials", type=int, default=101)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "placement.json"))
    args = parser.parse_args(argv)
    sizes = [1000] if args.quick else [1000, 5000, 10000]
    trials = 5 if args.quick else args.trials
    gangs = [(w, d) for d in (8, 1) for w in (1, 8, 64, 512)]
    started = time.perf_counter()
    results = run(sizes, gangs, trials, args.seed)
    results["targets"] = []
    for what, hosts, workers, devices, target in TARGETS:
        row = corral_row(results["rows"], hosts, workers, devices)
        if row is None:
            continue
        results["targets"].append(
            {
                "what": what,
                "target_ms": target,
                "measured_ms": row["median_ms"],
                "cold_ms": row["cold_ms"],
                "met": row["median_ms"] <= target,
            }
        )
    for size, update in results["updates"].items():
        results["targets"].append(
            {
                "what": f"one-pod snapshot update on {size} hosts, median",
                "target_ms": UPDATE_TARGET_MS,
                "measured_ms": update["median_ms"],
                "p99_ms": update["p99_ms"],
                "met": update["median_ms"] <= UPDATE_TARGET_MS,
            }
        )
    results["parameters"] = {
        "sizes": sizes,
        "gangs": [f"{w}x{d}" for w, d in gangs],
        "trials": trials,
        "seed": args.seed,
        "hosts_per_rack": HOSTS_PER_RACK,
        "racks_per_block": RACKS_PER_BLOCK,
        "zones": ZONES,
        "devices_per_host": DEVICES,
        "occupancy": OCCUPANCY,
        "pod_sizes": list(POD_SIZES),
    }
    results["machine"] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
