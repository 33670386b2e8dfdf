"""Recovery from termination notices on the 2,000-node fleet (issue 10): a 64-worker x 8-GPU gang,
with in-place replacement against whole-gang re-placement, in one run.

    .venv/bin/python bench/mttr.py                          # 5 rounds per mode, 2 nodes noticed
    .venv/bin/python bench/mttr.py --rounds 3 --keep        # quicker, fleet kept

On the `scale` fleet (e2e/fleets/scale.yaml; the same pool, namespace and operator process as
bench/operator_scale.py), two gangs of 64 x 8 GPUs, each required to fit in one block:
- `inplace`: spec.rendezvous.replaceInPlace true (the default): only the workers of noticed nodes
  are placed again, inside the block; the other workers keep running;
- `whole`: replaceInPlace false: every notice re-places the whole gang (a new attempt).

Each round (the two modes alternate, so a slow patch of the machine hits both) sets the real
AWS Node Termination Handler signal (`corral fleet interrupt --source aws`: the spot-itn taint and
a cordon) on --nodes nodes of one running gang, with a 120 s notice. The bench is the workload:
it acknowledges the operator's checkpoint request on every worker pod as soon as it sees it
(the annotation hook, as corral.sdk does). Measured per round, by the bench's own clock:
- reaction: notice set -> the checkpoint request on all 64 pods;
- checkpoint round-trip: request seen -> `status.lastCheckpoint` names it (all 64 acknowledgements
  read back by the operator; the bench's 64 acknowledgement patches included);
- MTTR: notice set -> all 64 workers Running again, none on a noticed node (the job Running).
After each round the notice is withdrawn (the node comes back) and old pods are gone.

A benchmark, not a test: it prints p50/p95 per mode and the ratio whole / in-place, and writes
bench/results/mttr.json. Target (issue 10): in-place replacement recovers faster than re-placing
the whole gang; said plainly when it does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "e2e"))

from corral.localfleet import interrupt  # noqa: E402
from corral.sdk import protocol  # noqa: E402
from harness import Cluster  # noqa: E402
from harness.wait import wait_for  # noqa: E402
from operator_scale import NAMESPACE, Operator, close, job, prepare  # noqa: E402

BLOCK = "network.corral.dev/block"
WORKERS, GPUS = 64, 8
NOTICE_SECONDS = 120.0
MODES = {"inplace": True, "whole": False}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return float(statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1])


class Bench:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.core = cluster.core
        self.custom = cluster.custom
        self.threads = ThreadPoolExecutor(max_workers=16)

    def status(self, name: str) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            "corral.dev", "v1alpha1", NAMESPACE, "trainingjobs", name
        )
        return dict(body.get("status") or {})

    def pods(self, name: str) -> list[Any]:
        return [
            p
            for p in self.core.list_namespaced_pod(
                NAMESPACE, label_selector=f"corral.dev/job={name}"
            ).items
            if not p.metadata.deletion_timestamp
        ]

    def all_running(self, name: str, avoid: set[str], interruptions: int) -> bool:
        status = self.status(name)
        if status.get("phase") != "Running" or status.get("interruptions") != interruptions:
            return False
        attempt = str(status.get("attempt"))
        current = [p for p in self.pods(name) if p.metadata.labels["corral.dev/restart"] == attempt]
        running = [
            p for p in current if p.status.phase == "Running" and p.spec.node_name not in avoid
        ]
        return len(running) == WORKERS

    def requested(self, name: str) -> tuple[str, list[str]] | None:
        """The checkpoint request id once every live worker pod carries the same one."""
        status = self.status(name)
        attempt = str(status.get("attempt"))
        pods = [p for p in self.pods(name) if p.metadata.labels["corral.dev/restart"] == attempt]
        ids = {(p.metadata.annotations or {}).get(protocol.REQUESTED) for p in pods}
        if len(pods) != WORKERS or len(ids) != 1 or None in ids:
            return None
        (request,) = ids
        assert request is not None
        return request, [p.metadata.name for p in pods]

    def acknowledge(self, pods: list[str], request: str, step: int) -> None:
        """The workload's side: every worker reports the checkpoint durable (in parallel, as
        64 workers would)."""
        body = {
            "metadata": {
                "annotations": {
                    protocol.COMPLETED: request,
                    protocol.STEP: str(step),
                    protocol.URI: f"s3://bench/{step}",
                }
            }
        }
        calls = [
            self.threads.submit(self.core.patch_namespaced_pod, pod, NAMESPACE, body)
            for pod in pods
        ]
        for call in calls:
            call.result()

    def withdraw(self, nodes: dict[str, Any]) -> None:
        """The notice goes away (the machine came back): taints and cordon as before."""
        for node, taints in nodes.items():
            self.core.patch_node(node, {"spec": {"taints": taints, "unschedulable": None}})


def one_round(bench: Bench, name: str, nodes: int, number: int) -> dict[str, float]:
    status = bench.status(name)
    placement = status["placement"]["nodes"]
    # Spread over the gang (not all in one rack): the in-place solver must find room for each.
    noticed = [placement[(i * len(placement)) // nodes] for i in range(nodes)]
    before = {n: bench.core.read_node(n).spec.taints for n in noticed}
    before_json = {
        n: [bench.cluster.api.sanitize_for_serialization(t) for t in taints] if taints else None
        for n, taints in before.items()
    }
    interruptions = int(status.get("interruptions", 0)) + 1
    # Request ids have whole-second resolution: begin in a second the gang did not start in.
    began = time.time()
    wait_for(lambda: int(time.time()) > int(began), timeout=2, interval=0.05, message="next second")
    started = time.perf_counter()
    now = datetime.now(UTC)
    for node in noticed:
        interrupt.notify(bench.cluster.api, node, "aws", NOTICE_SECONDS, now)
    request, pods = wait_for(
        lambda: bench.requested(name), timeout=120, interval=0.05, message=f"{name}: requested"
    )
    asked = time.perf_counter()
    step = 1000 * number
    bench.acknowledge(pods, request, step)
    wait_for(
        lambda: (bench.status(name).get("lastCheckpoint") or {}).get("id") == request,
        timeout=120,
        interval=0.05,
        message=f"{name}: checkpoint {request} recorded",
    )
    saved = time.perf_counter()
    wait_for(
        lambda: bench.all_running(name, set(noticed), interruptions),
        timeout=300,
        interval=0.1,
        message=f"{name}: all {WORKERS} Running again",
    )
    recovered = time.perf_counter()
    after = bench.status(name)
    assert after["lastRestart"]["lostWorkSeconds"] == 0, after["lastRestart"]
    assert after.get("restarts", 0) == 0, "an interruption never counts as a restart"
    bench.withdraw(before_json)
    # The old workers are gone before the next round (their nodes are usable again).
    wait_for(
        lambda: len(bench.pods(name)) == WORKERS, timeout=120, interval=0.2, message="old pods gone"
    )
    return {
        "reaction_seconds": round(asked - started, 3),
        "checkpoint_seconds": round(saved - asked, 3),
        "mttr_seconds": round(recovered - started, 3),
        "attempt": int(after["attempt"]),
        "in_place": "in place" in after["lastRestart"]["message"],
    }


def summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds}
    for key in ("reaction_seconds", "checkpoint_seconds", "mttr_seconds"):
        values = [r[key] for r in rounds]
        out[key.replace("_seconds", "")] = {
            "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", default=str(REPO / "e2e" / "fleets" / "scale.yaml"))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per mode")
    parser.add_argument("--nodes", type=int, default=2, help="nodes of the gang noticed per round")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "mttr.json"))
    parser.add_argument("--keep", action="store_true", help="leave the fleet up afterwards")
    args = parser.parse_args()

    fleet = Path(args.fleet)
    name = f"mttr-{fleet.stem}"
    log(f"bringing up {fleet.name} as {name} (reused if already up) ...")
    cluster = Cluster.local(fleet, name, ready_timeout=900)
    operator: Operator | None = None
    results: dict[str, Any] = {
        "fleet": fleet.name,
        "gang": f"{WORKERS} x {GPUS} GPUs, block required",
        "nodes_noticed_per_round": args.nodes,
        "source": "aws (NTH spot-itn taint + cordon)",
        "notice_seconds": NOTICE_SECONDS,
    }
    bench = Bench(cluster)
    try:
        prepare(cluster)
        operator = Operator(cluster, Path("/tmp/corral-bench-mttr-operator.log"))
        results["nodes"] = len(cluster.core.list_node().items)
        for mode, in_place in MODES.items():
            cluster.custom.create_namespaced_custom_object(
                "corral.dev",
                "v1alpha1",
                NAMESPACE,
                "trainingjobs",
                job(
                    mode,
                    WORKERS,
                    GPUS,
                    topology={"required": BLOCK},
                    rendezvous={"replaceInPlace": in_place},
                    checkpoint={"intervalSeconds": 0},
                ),
            )
            wait_for(
                lambda mode=mode: bench.all_running(mode, set(), 0),
                timeout=300,
                interval=0.2,
                message=f"{mode}: gang Running",
            )
        rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for number in range(1, args.rounds + 1):
            for mode in MODES:
                figures = one_round(bench, mode, args.nodes, number)
                rounds[mode].append(figures)
                log(f"{mode} round {number}: {json.dumps(figures)}")
        for mode in MODES:
            results[mode] = summary(rounds[mode])
    finally:
        close(cluster, operator, args.keep)
    inplace, whole = results["inplace"]["mttr"], results["whole"]["mttr"]
    results["ratio_whole_to_inplace_p50"] = round(whole["p50"] / inplace["p50"], 2)
    results["target_met"] = inplace["p50"] < whole["p50"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results, args.rounds))
    verdict = "met" if results["target_met"] else "MISSED"
    print(
        f"{verdict} target: in-place replacement recovers faster than whole-gang re-placement "
        f"(p50 {inplace['p50']:.2f} s vs {whole['p50']:.2f} s, "
        f"ratio {results['ratio_whole_to_inplace_p50']:.2f})"
    )
    print(f"written to {out}")
    return 0


def table(results: dict[str, Any], rounds: int) -> str:
    lines = [
        f"\nRecovery of a {results['gang']} gang on {results.get('nodes')} nodes, "
        f"{results['nodes_noticed_per_round']} node(s) noticed per round, {rounds} rounds per mode",
        f"{'figure (seconds)':<44}{'in place p50':>14}{'p95':>8}{'whole p50':>12}{'p95':>8}"
        f"{'ratio':>8}",
    ]
    for key, label in (
        ("reaction", "notice -> checkpoint requested on all pods"),
        ("checkpoint", "checkpoint round-trip (request -> all acks)"),
        ("mttr", "MTTR: notice -> all 64 Running"),
    ):
        a, b = results["inplace"][key], results["whole"][key]
        ratio = f"{b['p50'] / a['p50']:.2f}" if a["p50"] else "-"
        lines.append(
            f"{label:<44}{a['p50']:>14.2f}{a['p95']:>8.2f}{b['p50']:>12.2f}{b['p95']:>8.2f}"
            f"{ratio:>8}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
