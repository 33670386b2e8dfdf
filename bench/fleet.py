"""Local-fleet figures: cold build time of each binary group, warm `fleet up` time for a small
and a 2,000-node fleet, and the control plane's memory (RSS) with 2,000 nodes.

    .venv/bin/python bench/fleet.py              # warm figures only (binaries already cached)
    .venv/bin/python bench/fleet.py --cold       # + cold builds in empty Go/pip caches (~15 min)
    .venv/bin/python bench/fleet.py --out bench/results/fleet.json

A benchmark, not a test: it prints and records numbers, it asserts nothing. The cold builds run
with GOMODCACHE, GOCACHE, the pip cache and the binary cache all pointed at empty temporary
directories, so they include every download, as on a brand-new CI machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.localfleet import binaries, cluster, fleetfile, nodes, versions

REPO = Path(__file__).resolve().parents[1]
FLEETS = REPO / "e2e" / "fleets"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cold_builds() -> dict[str, float]:
    """Seconds per group, each built from empty caches (downloads included)."""
    seconds: dict[str, float] = {}
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="corral-cold-") as scratch:
        root = Path(scratch)
        os.environ.update(
            GOMODCACHE=str(root / "gomod"),
            GOCACHE=str(root / "gocache"),
            PIP_NO_CACHE_DIR="1",
        )
        try:
            for group in binaries.GROUPS:
                _log(f"cold build: {group} ...")
                seconds[group] = round(binaries.build_group(group, root / "bin", _log), 1)
                _log(f"cold build: {group} took {seconds[group]:.0f} s")
        finally:
            go = shutil.which("go")
            if go:  # the module cache is read-only; go knows how to remove it
                subprocess.run([go, "clean", "-modcache"], check=False, capture_output=True)
            os.environ.clear()
            os.environ.update(saved)
    seconds["total"] = round(sum(seconds.values()), 1)
    return seconds


def _timed_up(fleet_file: Path, name: str) -> dict[str, Any]:
    cluster.down(name, log=lambda _: None)
    started = time.monotonic()
    result = cluster.up(fleet_file, name, log=_log, ready_timeout=900)
    seconds = time.monotonic() - started
    state = cluster.status(name)
    figures: dict[str, Any] = {
        "fleet": fleet_file.name,
        "nodes": result.nodes_ready,
        "gpus": nodes.summary(fleetfile.load(fleet_file))["gpus"],
        "upSeconds": round(seconds, 1),
        "rssMiB": {c.name: round(c.rss_bytes / 2**20) for c in state.components},
    }
    again = time.monotonic()
    cluster.up(fleet_file, name, log=lambda _: None)
    figures["secondUpSeconds"] = round(time.monotonic() - again, 1)
    return figures


def scale_rss_settled(name: str, settle: float) -> dict[str, int]:
    """RSS per component after `settle` seconds with the fleet idle (heartbeats running)."""
    time.sleep(settle)
    state = cluster.status(name)
    rss = {c.name: round(c.rss_bytes / 2**20) for c in state.components}
    rss["total"] = sum(rss.values())
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="also time cold builds (~15 min)")
    parser.add_argument(
        "--settle", type=float, default=60, help="seconds before the scale RSS reading"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {
            "kubernetes": versions.KUBERNETES,
            "etcd": versions.ETCD,
            "kwok": versions.KWOK,
        },
    }
    _log("warming the binary cache ...")
    binaries.ensure(log=_log)
    if args.cold:
        results["coldBuildSeconds"] = cold_builds()
    elif args.out and args.out.exists():
        # A warm run (what `make bench` does) keeps the cold figures a --cold run recorded.
        earlier = json.loads(args.out.read_text()).get("coldBuildSeconds")
        if earlier:
            results["coldBuildSeconds"] = earlier

    results["tiny"] = _timed_up(FLEETS / "tiny.yaml", "bench-tiny")
    cluster.down("bench-tiny", log=lambda _: None)
    results["scale"] = _timed_up(FLEETS / "scale.yaml", "bench-scale")
    results["scale"]["rssMiBSettled"] = scale_rss_settled("bench-scale", args.settle)
    cluster.down("bench-scale", log=lambda _: None)

    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
