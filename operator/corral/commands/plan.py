"""`corral plan`: where a TrainingJob would be placed on a given fleet, without a cluster.

    corral plan --nodes NODES.yaml --job JOB.yaml [--pools POOLS.yaml] [--pods PODS.yaml]
                [--output json|text]

Exit status: 0 placed, 3 no fit, 2 invalid input (the message names the file and the field).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from corral.api.errors import InvalidObject, shorten
from corral.api.gpupool import GPUPool
from corral.api.objects import parse_object
from corral.api.trainingjob import TrainingJob
from corral.commands.common import UsageError, read_documents
from corral.disruption.notices import node_usability
from corral.fleet import DEFAULT_POOL, FleetSnapshot, NodeRecord, PodRecord, default_pool
from corral.fleet.fields import InvalidFleetObject
from corral.placement import NoFit, Placement, PlacementRequest, place

EXIT_PLACED = 0
EXIT_NO_FIT = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show where a TrainingJob would be placed on a fleet (no cluster needed)",
        description="Place a TrainingJob's gang on the nodes of a fleet described in files, "
        "and explain the choice or the reason it does not fit. Exit status: 0 placed, "
        "3 no fit, 2 invalid input.",
    )
    parser.add_argument(
        "--nodes",
        required=True,
        metavar="NODES.yaml",
        help="Node objects (`kubectl get nodes -o yaml`, or a multi-document YAML)",
    )
    parser.add_argument("--job", required=True, metavar="JOB.yaml", help="one TrainingJob")
    parser.add_argument(
        "--pools",
        metavar="POOLS.yaml",
        help="GPUPool objects (default: one pool `default` of every node with devices, its "
        "levels the network.corral.dev/* labels present and kubernetes.io/hostname)",
    )
    parser.add_argument(
        "--pods",
        metavar="PODS.yaml",
        help="Pods already bound to nodes (`kubectl get pods -A -o yaml`); their requests are "
        "taken from the nodes",
    )
    parser.add_argument("--output", "-o", choices=("json", "text"), default="text")
    parser.set_defaults(handler=handle)


def _objects(
    path: str, kind: str, check: Callable[[dict[str, Any]], object]
) -> list[dict[str, Any]]:
    """The objects of a file, each checked by `check` (which raises InvalidFleetObject naming
    the field); one object of another kind, a nameless one or a name given twice is refused."""
    objects = []
    seen: dict[str, int] = {}
    for number, document in enumerate(read_documents(path), start=1):
        where = f"{path}: document {number}"
        if not isinstance(document, dict):
            raise UsageError(f"{where} is not a {kind} object (a mapping)")
        found = document.get("kind", kind)
        if found != kind:
            raise UsageError(f"{where} is a {shorten(found)}, expected {kind}")
        if not isinstance(document.get("metadata"), dict):
            raise UsageError(f"{where}: metadata: must be an object (with a name)")
        name = _name(document)
        if name is None:
            raise UsageError(f"{path}: {kind} (document {number}): metadata.name: required")
        if kind == "Pod":
            namespace = document["metadata"].get("namespace")
            key = f"{namespace if isinstance(namespace, str) else 'default'}/{name}"
        else:
            key = name
        if key in seen:
            raise UsageError(
                f"{path}: {kind} {key} is given twice (documents {seen[key]} and {number})"
            )
        seen[key] = number
        try:
            check(document)
        except InvalidFleetObject as exc:
            raise UsageError(f"{path}: {kind} {key}: {exc}") from None
        objects.append(document)
    return objects


def _name(document: dict[str, Any]) -> str | None:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else None


def _job(path: str) -> TrainingJob:
    documents = read_documents(path)
    if len(documents) != 1:
        raise UsageError(f"{path}: expected one TrainingJob, found {len(documents)} documents")
    document = documents[0]
    if isinstance(document, dict) and document.get("kind") == "InferenceService":
        raise UsageError(f"{path}: kind: InferenceService cannot be planned yet (TrainingJob only)")
    try:
        job = parse_object(document, expect="TrainingJob")
    except InvalidObject as exc:
        raise UsageError(f"{path}: {exc}") from None
    assert isinstance(job, TrainingJob)
    return job


def read_pools(path: str) -> list[GPUPool]:
    """The GPUPools of a YAML file (`corral plan --pools`, `corral simulate --pools`)."""
    pools: list[GPUPool] = []
    seen: dict[str, int] = {}
    for number, document in enumerate(read_documents(path), start=1):
        name = _name(document) if isinstance(document, dict) else None
        which = f"GPUPool {name}" if name else f"document {number}"
        try:
            pool = parse_object(document, expect="GPUPool")
        except InvalidObject as exc:
            raise UsageError(f"{path}: {which}: {exc}") from None
        assert isinstance(pool, GPUPool)
        if not pool.metadata.name:
            raise UsageError(f"{path}: document {number}: metadata.name: required")
        if pool.metadata.name in seen:
            raise UsageError(
                f"{path}: GPUPool {pool.metadata.name} is given twice "
                f"(documents {seen[pool.metadata.name]} and {number})"
            )
        seen[pool.metadata.name] = number
        pools.append(pool)
    return pools


def build_snapshot(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], pools: list[GPUPool] | None
) -> FleetSnapshot:
    """The snapshot `corral plan` places on: the given pools, or the default one."""
    if pools is None:
        records = [NodeRecord.from_dict(node) for node in nodes]
        pool, members = default_pool(records)
        names = {record.name for record in members}
        return FleetSnapshot.build(
            [node for node in nodes if node["metadata"]["name"] in names],
            pods,
            [pool],
            implicit=[DEFAULT_POOL],
            notices=node_usability,
        )
    return FleetSnapshot.build(nodes, pods, pools, notices=node_usability)


def plan(
    nodes: list[dict[str, Any]],
    job: TrainingJob,
    pools: list[GPUPool] | None = None,
    pods: list[dict[str, Any]] | None = None,
) -> Placement | NoFit:
    request = PlacementRequest.from_training_job(job)
    return place(build_snapshot(nodes, pods or [], pools), request)


def _text(result: Placement | NoFit) -> str:
    if isinstance(result, NoFit):
        kind = "never fits" if result.permanent else "does not fit now"
        return f"not placed ({kind}): {result.reason}\n"
    if result.span_level is None:
        span = "the whole pool"
    else:
        span = f"{result.span_level}={result.span_domain}"
    lines = [f"placed in pool {result.pool}, span {span}"]
    width = len(str(len(result.assignments) - 1))
    lines += [
        f"  worker {index:>{width}} -> {node}" for index, node in enumerate(result.assignments)
    ]
    lines.append(result.explanation)
    return "\n".join(lines) + "\n"


def _assume_ready(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Node with no status conditions at all was written by hand (or by `corral fleet nodes`),
    not read from a cluster: plan as if it were Ready. Nodes that report a Ready condition are
    taken at their word."""
    out = []
    for node in nodes:
        status = node.get("status")
        if isinstance(status, dict) and status.get("conditions"):
            out.append(node)
            continue
        ready = {"type": "Ready", "status": "True", "reason": "AssumedByCorralPlan"}
        out.append(
            {
                **node,
                "status": {**(status if isinstance(status, dict) else {}), "conditions": [ready]},
            }
        )
    return out


def handle(args: argparse.Namespace) -> int:
    nodes = _assume_ready(_objects(args.nodes, "Node", NodeRecord.from_dict))
    job = _job(args.job)
    pools = read_pools(args.pools) if args.pools else None
    pods = _objects(args.pods, "Pod", PodRecord.from_dict) if args.pods else []
    if pools is not None and not pools:
        raise UsageError(f"{args.pools}: no GPUPool in the file")
    result = plan(nodes, job, pools, pods)
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=None))
    else:
        print(_text(result), end="")
    return EXIT_PLACED if isinstance(result, Placement) else EXIT_NO_FIT
