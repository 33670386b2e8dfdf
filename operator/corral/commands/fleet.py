"""`corral fleet up|down|status|binaries|nodes`: a local control plane with a simulated GPU fleet.

`up` starts kube-apiserver (with etcd), kube-controller-manager, kube-scheduler and kwok on
127.0.0.1 through kwokctl, turns a fleet file into Ready GPU nodes and prints the kubeconfig
(`.corral/<name>/kubeconfig`). See docs/local-fleet.md and docs/fleet-files.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import yaml

from corral.commands.common import UsageError

DEFAULT_FLEET = "e2e/fleets/demo.yaml"
NOTICE_SOURCES = ("aws", "karpenter", "gke", "aks", "kubelet", "corral")
"""Whose termination signal `interrupt` and `replay-spot` set (corral.localfleet.interrupt)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fleet",
        help="run a local control plane with a simulated GPU fleet (kwok)",
        description="A real control plane on 127.0.0.1 with fake GPU nodes from a fleet file.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=type(parser))

    up = verbs.add_parser("up", help="start the fleet (idempotent) and print its kubeconfig")
    up.add_argument(
        "--fleet",
        "-f",
        default=DEFAULT_FLEET,
        metavar="FILE",
        help=f"fleet file (default {DEFAULT_FLEET})",
    )
    up.add_argument("--name", help="cluster name (default: the fleet file's name)")
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for Ready nodes")
    up.add_argument(
        "--feature-gates",
        default="",
        metavar="K=V,...",
        help="feature gates of kube-apiserver, kube-controller-manager and kube-scheduler, fixed "
        "when the fleet is created (e.g. GenericWorkload=true,GangScheduling=true)",
    )
    up.add_argument(
        "--runtime-config",
        default="",
        metavar="K=V,...",
        help="API groups kube-apiserver serves, fixed when the fleet is created "
        "(e.g. scheduling.k8s.io/v1alpha2=true)",
    )
    up.set_defaults(handler=_needs_localfleet(handle_up))

    down = verbs.add_parser("down", help="stop every process of the fleet and delete its state")
    down.add_argument("--name", help="fleet name (default: the only fleet that is up)")
    down.add_argument("--all", action="store_true", help="every fleet of this checkout")
    down.set_defaults(handler=_needs_localfleet(handle_down))

    status = verbs.add_parser("status", help="components, API and nodes of the fleet")
    status.add_argument("--name", help="fleet name (default: every fleet of this checkout)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_needs_localfleet(handle_status))

    binaries = verbs.add_parser(
        "binaries", help="find or build the control-plane binaries (cached per version)"
    )
    binaries.add_argument("--json", action="store_true", help="machine-readable output")
    binaries.add_argument(
        "--which", metavar="NAME", help="print only this binary's path (e.g. kubectl)"
    )
    binaries.set_defaults(handler=_needs_localfleet(handle_binaries))

    interrupt = verbs.add_parser(
        "interrupt",
        help="give a node a cloud's termination notice, then reclaim it",
        description="Set a source's real termination signal on NODE (the keys docs/disruption.md "
        "lists), wait out the notice, then delete the node's pods and the node (the reclaim). "
        "`corral fleet up` brings the node back.",
    )
    interrupt.add_argument("node", metavar="NODE")
    interrupt.add_argument(
        "--source",
        choices=NOTICE_SOURCES,
        default="aws",
        help="whose signal to set (default aws: the AWS Node Termination Handler's)",
    )
    interrupt.add_argument(
        "--notice", default="120s", metavar="DURATION", help="notice before the reclaim (120s)"
    )
    interrupt.add_argument("--name", help="fleet name (default: the only fleet that is up)")
    interrupt.set_defaults(handler=handle_interrupt)

    replay = verbs.add_parser(
        "replay-spot",
        help="play a spot availability trace onto the fleet's spot nodes",
        description="Replay a SkyPilot-format spot trace: at each tick the trace's share of the "
        "fleet's spot nodes is up; nodes that go get a notice and are reclaimed, nodes that come "
        "back are created again.",
    )
    replay.add_argument("--trace", required=True, metavar="FILE", help="trace file (JSON)")
    replay.add_argument(
        "--speed", type=float, default=60.0, help="trace seconds per real second (default 60)"
    )
    replay.add_argument("--source", choices=NOTICE_SOURCES, default="aws", help="whose signal")
    replay.add_argument(
        "--notice", default="5s", metavar="DURATION", help="real notice before each reclaim (5s)"
    )
    replay.add_argument("--ticks", type=int, help="stop after this many ticks")
    replay.add_argument(
        "--capacity",
        type=int,
        help="trace value meaning every spot node is up (default: N of "
        "an N-node folder, else the largest value)",
    )
    replay.add_argument("--nodes", help="comma-separated nodes to drive (default: the spot hosts)")
    replay.add_argument("--name", help="fleet name (default: the only fleet that is up)")
    replay.set_defaults(handler=handle_replay_spot)

    nodes = verbs.add_parser("nodes", help="print the Node objects a fleet file makes (YAML)")
    nodes.add_argument("--fleet", "-f", default=DEFAULT_FLEET, metavar="FILE")
    nodes.set_defaults(handler=_needs_localfleet(handle_nodes))


def _needs_localfleet(handler: Callable[[argparse.Namespace], int]) -> Any:
    """The operator image leaves the local-fleet tooling out: say so in one line there."""

    def run(args: argparse.Namespace) -> int:
        try:
            import corral.localfleet  # noqa: F401
        except ImportError:
            raise UsageError(
                "the local-fleet tooling (corral.localfleet) is not installed here — the operator "
                "image leaves it out; run `corral fleet` from a source checkout"
            ) from None
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            raise UsageError(
                "corral fleet needs the kubernetes package: pip install 'corral[fleet]'"
            ) from None
        return handler(args)

    return run


def _load_fleet(path: str) -> Any:
    from corral.localfleet import fleetfile

    try:
        return fleetfile.load(path)
    except fleetfile.FleetFileError as exc:
        raise UsageError(str(exc)) from None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def handle_up(args: argparse.Namespace) -> int:
    from corral.localfleet import binaries, cluster, nodes
    from corral.localfleet.flags import ControlPlaneFlags, FlagError

    try:
        flags = ControlPlaneFlags.parse(args.feature_gates, args.runtime_config)
    except FlagError as exc:
        raise UsageError(str(exc)) from None
    fleet = _load_fleet(args.fleet)
    counts = nodes.summary(fleet)
    _stderr(
        f"fleet {args.name or fleet.name}: {counts['hosts']} hosts, {counts['gpus']} GPUs "
        f"({counts['spot']} spot hosts) in {counts['zones']} zones, {counts['blocks']} blocks, "
        f"{counts['racks']} racks"
    )
    try:
        result = cluster.up(
            args.fleet, args.name, log=_stderr, ready_timeout=args.timeout, flags=flags
        )
    except (cluster.FleetError, binaries.BinaryError) as exc:
        _stderr(f"corral fleet up: {exc}")
        return 1
    _stderr(f"fleet {result.name}: {result.nodes_ready} nodes Ready in {result.seconds:.1f} s")
    _stderr(f"export KUBECONFIG={result.kubeconfig}")
    print(result.kubeconfig)
    return 0


def _names(args: argparse.Namespace, *, every_by_default: bool) -> list[str]:
    from corral.localfleet import cluster

    if args.name:
        return [args.name]
    existing = cluster.existing_fleets()
    if every_by_default or getattr(args, "all", False) or len(existing) <= 1:
        return existing
    raise UsageError(f"several fleets are up ({', '.join(existing)}): name one with --name")


def handle_down(args: argparse.Namespace) -> int:
    from corral.localfleet import cluster

    names = _names(args, every_by_default=False)
    if not names:
        _stderr("corral fleet down: no fleet is up")
    for name in names:
        cluster.down(name, log=_stderr)
    return 0


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def handle_status(args: argparse.Namespace) -> int:
    from corral.localfleet import cluster

    names = _names(args, every_by_default=True)
    states = [cluster.status(name) for name in names]
    if args.json:
        print(json.dumps([s.to_json() for s in states], indent=2))
    else:
        if not states:
            print("no fleet is up (corral fleet up)")
        for state in states:
            if not state.exists:
                print(f"fleet {state.name}: not up")
                continue
            health = "healthy" if state.healthy else "NOT HEALTHY"
            api = f"API {state.server} ready" if state.api_ready else "API not ready"
            print(f"fleet {state.name}: {health}; {api}; kubeconfig {state.dirs.kubeconfig}")
            print(f"  control plane: {state.flags.describe()}")
            print(f"  {'COMPONENT':<26}{'PID':>8}  {'STATE':<10}{'RSS':>10}")
            for c in state.components:
                print(
                    f"  {c.name:<26}{c.pid or '-':>8}  {'running' if c.running else 'DOWN':<10}"
                    f"{_mib(c.rss_bytes) if c.running else '-':>10}"
                )
            print(f"  {'total':<26}{'':>8}  {'':<10}{_mib(state.rss_bytes):>10}")
            print(
                f"  nodes {state.nodes} ({state.ready_nodes} Ready), GPUs {state.gpus}, pods {state.pods}"
            )
            for c in state.crashed:
                print(
                    f"  {c.name} is down; its log ends with:\n" + _indent(c.log_tail or "(no log)")
                )
            if state.error:
                print(f"  {state.error}")
    if any(s.exists and not s.healthy for s in states):
        return 1
    return 0 if states and all(s.exists for s in states) else 3


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def handle_binaries(args: argparse.Namespace) -> int:
    from corral.localfleet import binaries

    known = [tool.name for tool in binaries.TOOLS]
    if args.which and args.which not in known:
        raise UsageError(f"--which {args.which}: not one of {', '.join(known)}")
    try:
        found = binaries.ensure(only=[args.which] if args.which else None, log=_stderr)
    except binaries.BinaryError as exc:
        _stderr(f"corral fleet binaries: {exc}")
        return 1
    if args.which:
        print(found[args.which])
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "binaries": {
                        k: {"path": str(v.path), "source": v.source} for k, v in found.paths.items()
                    },
                    "buildSeconds": found.build_seconds,
                },
                indent=2,
            )
        )
    else:
        for name, where in found.paths.items():
            print(f"{name:<26}{where.source:<20}{where.path}")
    return 0


def handle_nodes(args: argparse.Namespace) -> int:
    from corral.localfleet import nodes

    fleet = _load_fleet(args.fleet)
    sys.stdout.write(yaml.safe_dump_all(nodes.fleet_nodes(fleet), sort_keys=False))
    return 0


def _one_fleet(args: argparse.Namespace) -> Any:
    from corral.localfleet import cluster

    names = _names(args, every_by_default=False)
    if not names:
        raise UsageError("no fleet is up (corral fleet up)")
    dirs = cluster.FleetDirs.of(names[0])
    if not dirs.kubeconfig.exists():
        raise UsageError(f"fleet {names[0]} is not up (corral fleet up)")
    return dirs


def _seconds(flag: str, text: str) -> float:
    from corral.api.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def handle_interrupt(args: argparse.Namespace) -> int:
    from corral.localfleet import cluster, interrupt

    dirs = _one_fleet(args)
    notice = _seconds("--notice", args.notice)
    with cluster.api_client(dirs.kubeconfig, pool=4) as api:
        try:
            interrupt.interrupt(api, args.node, args.source, notice, log=_stderr)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
    return 0


def handle_replay_spot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from corral.localfleet import cluster, interrupt

    dirs = _one_fleet(args)
    notice = _seconds("--notice", args.notice)
    if args.speed <= 0:
        raise UsageError("--speed must be > 0")
    try:
        trace = interrupt.load_trace(Path(args.trace), args.capacity)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--trace {args.trace}: not a spot trace ({exc})") from None
    bodies = interrupt.spot_hosts(_load_fleet(str(dirs.fleet_file)))
    if args.nodes:
        from corral.localfleet import fleetfile, nodes

        fleet = _load_fleet(str(dirs.fleet_file))
        every = {h.name: nodes.node(fleet, h) for h in fleetfile.hosts(fleet)}
        wanted = [n for n in args.nodes.split(",") if n]
        unknown = [n for n in wanted if n not in every]
        if unknown:
            raise UsageError(f"--nodes: not hosts of fleet {dirs.name}: {', '.join(unknown)}")
        bodies = {n: every[n] for n in wanted}
    if not bodies:
        raise UsageError(f"fleet {dirs.name} has no spot hosts; name some with --nodes")
    _stderr(
        f"replaying {args.trace} ({len(trace.values)} ticks of {trace.gap_seconds:g}s, "
        f"x{args.speed:g}) onto {len(bodies)} node(s) of fleet {dirs.name}"
    )
    with cluster.api_client(dirs.kubeconfig, pool=8) as api:
        changes = interrupt.replay(
            api,
            trace,
            bodies,
            speed=args.speed,
            source=args.source,
            notice=notice,
            ticks=args.ticks,
            log=_stderr,
        )
    _stderr(f"done: {len(changes)} tick(s) changed the fleet")
    return 0
