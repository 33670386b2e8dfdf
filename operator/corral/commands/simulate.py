"""`corral simulate`: a workload replayed on a fleet by Corral's own scheduling code, no cluster.

    corral simulate --fleet FLEET --workload WORKLOAD [--pools POOLS.yaml] [--spot TRACE]
                    [--inference SERVICES.yaml]
                    [--policy corral|first-fit|spread|kueue-bestfit | --compare a,b,c]
                    [--seed N] [--load L --hours H] [--max-hours H] --out DIR

Writes DIR/summary.json, DIR/report.html (self-contained, figures embedded) and
DIR/decisions.csv (every placement in order). Exit status 0, or 2 with one line for bad input.
docs/simulate.md describes the inputs, the model and the report.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from corral.api.errors import InvalidObject
from corral.api.gpupool import GPUPool
from corral.commands.common import UsageError, read_documents
from corral.commands.plan import read_pools
from corral.fleet import NodeRecord, default_pool
from corral.placement.baselines import POLICIES
from corral.sim import openb
from corral.sim.engine import Options, simulate
from corral.sim.inference import ServiceLoad
from corral.sim.inference import services as inference_services
from corral.sim.report import INSTALL_HINT, MissingMatplotlib, render
from corral.sim.results import RunResult, comparison, comparison_table, summary
from corral.sim.spot import load as load_spot
from corral.sim.workload import WorkloadError, WorkloadJob
from corral.sim.workload import load as load_workload


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay a workload on a fleet with Corral's own scheduling code (no cluster)",
        description="Replay a training workload on a simulated fleet through the operator's own "
        "scheduling pass and job lifecycle, and report queueing, utilisation, fragmentation, "
        "cost, energy and carbon. Writes summary.json, report.html and decisions.csv to --out.",
    )
    parser.add_argument(
        "--fleet",
        required=True,
        metavar="FLEET",
        help="a fleet file (docs/fleet-files.md) or an openb node list (openb_node_list_*.csv)",
    )
    parser.add_argument(
        "--workload",
        metavar="WORKLOAD",
        help="jobs as CSV or JSON Lines (docs/simulate.md), or an openb pod list (CSV); "
        "optional with --inference",
    )
    parser.add_argument(
        "--pools",
        metavar="POOLS.yaml",
        help="GPUPool objects: prices, carbon, topology (default: one pool of every node with "
        "devices, as `corral plan` assumes; an openb fleet has one pool per GPU model)",
    )
    parser.add_argument(
        "--spot", metavar="TRACE", help="SkyPilot spot trace: one JSON file or a folder of them"
    )
    parser.add_argument(
        "--inference",
        metavar="SERVICES.yaml",
        help="InferenceService objects, each naming the request trace it serves (Azure LLM "
        "inference trace format) in its sim.corral.dev/trace annotation (docs/simulate.md)",
    )
    parser.add_argument(
        "--policy", choices=sorted(POLICIES), default="corral", help="placement policy"
    )
    parser.add_argument(
        "--compare",
        metavar="A,B,...",
        help="run several policies on the same input and table the ratios to the first",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (spot reclaims, openb)")
    parser.add_argument(
        "--load", type=float, default=0.85, help="openb workloads: offered load (default 0.85)"
    )
    parser.add_argument(
        "--hours", type=float, default=6.0, help="openb workloads: arrival window (default 6)"
    )
    parser.add_argument(
        "--max-hours", type=float, help="stop the simulation here (default: when all jobs ended)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="where the report goes")
    parser.set_defaults(handler=handle)


def _ready(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes of a fleet file are simulated machines: Ready unless they say otherwise."""
    for node in nodes:
        status = node.setdefault("status", {})
        status.setdefault("conditions", [{"type": "Ready", "status": "True"}])
    return nodes


def _fleet(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[GPUPool]]:
    if openb.is_node_list(args.fleet):
        nodes, pools = openb.fleet(args.fleet)
    else:
        try:  # the operator image has no local-fleet tooling
            from corral.localfleet.fleetfile import FleetFileError
            from corral.localfleet.fleetfile import load as load_fleet_file
            from corral.localfleet.nodes import fleet_nodes
        except ImportError:
            raise UsageError(
                f"--fleet {args.fleet}: reading a fleet file needs the local-fleet tooling "
                "(corral.localfleet), which is not installed here"
            ) from None
        try:
            nodes = _ready(fleet_nodes(load_fleet_file(args.fleet)))
        except FleetFileError as exc:
            raise UsageError(str(exc)) from None
        pools = []
    if args.pools:
        pools = read_pools(args.pools)
        if not pools:
            raise UsageError(f"{args.pools}: no GPUPool in the file")
    elif not pools:
        pool, members = default_pool([NodeRecord.from_dict(n) for n in nodes])
        pools = [pool]
        names = {m.name for m in members}
        nodes = [n for n in nodes if n["metadata"]["name"] in names]
    return nodes, pools


def _workload(args: argparse.Namespace, devices: int) -> list[WorkloadJob]:
    if args.workload is None:
        return []
    if openb.is_task_list(args.workload):
        return openb.sample(openb.tasks(args.workload), devices, args.hours, args.load, args.seed)
    return load_workload(args.workload)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str):
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, now: float, end: float) -> None:
        if not self.enabled:
            return
        share = min(1.0, now / end) if end else 1.0
        bar = "#" * round(30 * share)
        sys.stderr.write(
            f"\r{self.label:<14} [{bar:<30}] {share * 100:5.1f} %  sim {now / 3600:7.1f} h  "
            f"wall {time.monotonic() - self.started:6.1f} s"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _decisions_csv(results: list[RunResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["policy", "time_seconds", "job", "pool", "nodes"])
    for result in results:
        writer.writerows(
            [result.policy, f"{d.time:.3f}", d.job, d.pool, " ".join(d.nodes)]
            for d in result.decisions
        )
    return buffer.getvalue()


def _services(args: argparse.Namespace) -> list[ServiceLoad]:
    if not args.inference:
        return []
    documents = read_documents(args.inference)
    return inference_services(documents, args.inference, Path(args.inference).parent)


def _effect(with_services: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """Training's queueing with the inference load and without it (the same run otherwise)."""
    return {
        field: {"with": with_services["queueing"][field], "without": without["queueing"][field]}
        for field in ("meanSeconds", "p95Seconds")
    } | {"utilisation": {"with": with_services["utilisation"], "without": without["utilisation"]}}


def handle(args: argparse.Namespace) -> int:
    if args.workload is None and not args.inference:
        raise UsageError("--workload: required (or --inference, or both)")
    policies = [p.strip() for p in (args.compare or args.policy).split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise UsageError(f"--compare: unknown policy {unknown[0]!r} (one of {', '.join(POLICIES)})")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    try:
        nodes, pools = _fleet(args)
        resources = {pool.spec.resource_name for pool in pools}
        devices = sum(
            NodeRecord.from_dict(node).allocatable.get(resource, 0)
            for node in nodes
            for resource in resources
        )
        jobs = _workload(args, devices)
        spot = load_spot(args.spot) if args.spot else []
        services = _services(args)
    except WorkloadError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror or exc}") from None
    results = []
    effects: list[dict[str, Any] | None] = []
    for policy in policies:
        runs = [services, []] if services and jobs else [services]
        for position, loads in enumerate(runs):
            label = policy if position == 0 else f"{policy} (no inf.)"
            progress = _Progress(label)
            options = Options(
                policy=policy,
                seed=args.seed,
                spot=spot,
                max_seconds=args.max_hours * 3600 if args.max_hours else None,
                progress=progress,
                services=loads,
            )
            try:
                result = simulate(nodes, pools, jobs, options)
            except InvalidObject as exc:
                progress.done()
                raise UsageError(f"{args.workload}: {exc}") from None
            progress.done()
            if position == 0:
                results.append(result)
                effects.append(None)
            else:
                effects[-1] = _effect(summary(results[-1]), summary(result))
    summaries = [summary(r) for r in results]
    for data, effect in zip(summaries, effects, strict=True):
        if effect is not None:
            data["inferenceEffect"] = effect
    table = comparison(summaries) if len(results) > 1 else None
    inputs = {
        "fleet": f"{args.fleet} ({len(nodes)} nodes, {len(pools)} pool(s))",
        "workload": f"{args.workload or 'none'} ({len(jobs)} jobs)",
        "spot": args.spot or "none",
        "inference": f"{args.inference} ({len(services)} service(s))" if services else "none",
        "seed": args.seed,
    }
    try:
        page = render(results, summaries, inputs, table)
    except MissingMatplotlib as exc:
        raise UsageError(str(exc)) from None
    document: Any = summaries[0] if table is None else {"runs": summaries, "comparison": table}
    (out / "summary.json").write_text(json.dumps(document, indent=1) + "\n")
    (out / "report.html").write_text(page)
    (out / "decisions.csv").write_text(_decisions_csv(results))
    for data in summaries:
        q = data["queueing"]
        print(
            f"{data['policy']}: {data['jobs']['finished']}/{data['jobs']['submitted']} jobs "
            f"finished, mean queue {q['meanSeconds']} s, p95 {q['p95Seconds']} s, utilisation "
            f"{data['utilisation'] * 100:.1f} %, cost {data['economics']['cost']} "
            f"{data['economics']['currency']}, {data['economics']['carbonKg']} kg CO2e"
        )
        for key, service in (data["inference"] or {}).items():
            attainment = service["sloAttainment"]
            shown = "-" if attainment is None else f"{attainment * 100:.1f} %"
            print(
                f"  {key}: {shown} of minutes meet the SLO, p95 latency "
                f"{service['p95LatencySeconds']} s, {service['replicaHours']} replica-h "
                f"(peak {service['peakReplicas']}), cost {service['cost']}, scale-ups "
                f"{service['scaleUps']}, downs {service['scaleDowns']}, unplaced "
                f"{service['unplacedScaleUps']} ({service['unplacedReplicaHours']} replica-h)"
            )
        effect = data.get("inferenceEffect")
        if effect is not None:
            mean, p95 = effect["meanSeconds"], effect["p95Seconds"]
            print(
                f"  training queueing with inference: mean {mean['with']} s (without "
                f"{mean['without']} s), p95 {p95['with']} s (without {p95['without']} s)"
            )
    if table is not None:
        print(comparison_table(table))
    print(f"wrote {out / 'summary.json'}, {out / 'report.html'}, {out / 'decisions.csv'}")
    return 0
