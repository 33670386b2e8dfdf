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

    fleet = _load_fleet(args.fleet)
    counts = nodes.summary(fleet)
    _stderr(
        f"fleet {args.name or fleet.name}: {counts['hosts']} hosts, {counts['gpus']} GPUs "
        f"({counts['spot']} spot hosts) in {counts['zones']} zones, {counts['blocks']} blocks, "
        f"{counts['racks']} racks"
    )
    try:
        result = cluster.up(args.fleet, args.name, log=_stderr, ready_timeout=args.timeout)
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
