"""Corral's SLO autoscaler against HPA, Knative's KPA, a queue-depth policy and an offline oracle.

Trace-driven: the Azure LLM inference traces (read in place from ../shared/data/inference, or
any CSV with TIMESTAMP, ContextTokens, GeneratedTokens via --trace) are replayed through a
discrete-event model of replicas with a start-up delay (`corral.autoscaling.servingsim`);
Corral's policy is the operator's own `corral.autoscaling.autoscaler.tick`, fed what Prometheus
would answer (vLLM's histogram buckets). Service-time constants and baselines are described in
`bench/autoscaling_policies.py`.

Per policy: the share of minutes meeting each objective (p99 of the requests arriving in that
minute), replica-hours, their ratio to the oracle's, scale reversals (a change of direction).
Then the stability scenarios with Poisson arrivals and trace-sized requests: constant load
(N <-> N-1 flaps), traffic stopping (time back to min), a 2x step (time until every minute meets
the objectives again), and the model's error against the simulator (predicted vs simulated p99).

    .venv/bin/python bench/autoscaling.py                 # both traces, all scenarios (~1 min)
    .venv/bin/python bench/autoscaling.py --trace my.csv --speed 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoscaling_policies import (
    HPA,
    KPA,
    OracleObjective,
    in_system,
    oracle_plan,
    poisson,
    quantile,
    waiting,
)
from corral.autoscaling.autoscaler import AutoscalerState, tick
from corral.autoscaling.histogram import TTFT_BUCKETS, Histogram
from corral.autoscaling.policy import ObjectiveTarget, Policy
from corral.autoscaling.queueing import latency_quantile, wait_of
from corral.autoscaling.servingsim import Request, ServingSim, observe
from corral.sim.inference import read_trace

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data from the project root; a git worktree further down finds it the same way.
DATA = next(
    (p / "shared" / "data" / "inference" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data" / "inference",
)
TRACES = {
    "conv": DATA / "AzureLLMInferenceTrace_conv.csv",
    "code": DATA / "AzureLLMInferenceTrace_code.csv",
}
MINUTE = 60.0
TICK = 15.0
HPA_TARGETS = (0.4, 0.5, 0.6, 0.7, 0.8)
"""HPA target utilisations tried (in flight per replica / concurrency); 0.7 is the default row."""

POLICY = Policy(
    objectives=(
        ObjectiveTarget("ttft", "TimeToFirstToken", 99, 2.0),
        ObjectiveTarget("e2e", "Latency", 99, 30.0),
    ),
    min_replicas=1,
    max_replicas=400,
    concurrency=1,
    startup=60.0,
    window=60.0,
)
ORACLE_OBJECTIVES = [
    OracleObjective(ttft=o.type == "TimeToFirstToken", quantile=o.quantile, target=o.target)
    for o in POLICY.objectives
]


# --- running a policy ------------------------------------------------------------------------


@dataclass
class Run:
    policy: str
    sim: ServingSim
    sizes: list[tuple[float, int]] = field(default_factory=list)
    """(time, replicas asked for) at every change."""
    oracle_seconds: float | None = None
    ready: list[tuple[float, int]] = field(default_factory=list)
    """(time, replicas ready) at every decision."""

    @property
    def replica_hours(self) -> float:
        if self.oracle_seconds is not None:
            return self.oracle_seconds / 3600
        return self.sim.replica_seconds / 3600

    def reversals(self) -> int:
        steps = [b - a for (_, a), (_, b) in zip(self.sizes, self.sizes[1:], strict=False)]
        signs = [1 if s > 0 else -1 for s in steps if s != 0]
        return sum(1 for a, b in itertools.pairwise(signs) if a != b)

    def flaps(self) -> int:
        """N -> N-1 -> N or N -> N+1 -> N."""
        counts = [n for _, n in self.sizes]
        return sum(
            1
            for a, b, c in zip(counts, counts[1:], counts[2:], strict=False)
            if abs(b - a) == 1 and c == a
        )


Decide = Callable[[ServingSim, int], int]


def run_policy(
    name: str,
    requests: Sequence[Request],
    decide: Decide,
    period: float,
    initial: int,
    end: float,
) -> Run:
    sim = ServingSim(requests, POLICY.concurrency, POLICY.startup, initial)
    run = Run(name, sim, [(0.0, initial)])
    current = initial
    now = 0.0
    while now < end:
        now += period
        sim.advance(now)
        run.ready.append((now, sim.ready))
        wanted = decide(sim, current)
        if wanted != current:
            sim.resize(wanted)
            run.sizes.append((now, wanted))
            current = wanted
    finish(sim)
    return run


def finish(sim: ServingSim) -> None:
    """Stop at the trace's end: every replica drains its last requests and leaves (they cost
    until then), for every policy alike."""
    sim.resize(max(sim.size, 1))
    while sim.queued or sim.pending:
        sim.advance(sim.now + 60)
    sim.resize(0)
    while not sim.finished:
        sim.advance(sim.now + 600)


def corral_decider() -> Decide:
    state = AutoscalerState()

    def decide(sim: ServingSim, current: int) -> int:
        nonlocal state
        decision, state = tick(state, observe(sim, POLICY), POLICY, current)
        return decision.replicas

    return decide


def run_all(requests: Sequence[Request], end: float, initial: int) -> list[Run]:
    target = 0.7 * POLICY.concurrency
    runs = [
        run_policy("corral", requests, corral_decider(), TICK, initial, end),
        run_policy("hpa", requests, HPA(target, in_system, POLICY).decide, TICK, initial, end),
        run_policy("kpa", requests, KPA(target, POLICY).decide, 2.0, initial, end),
        run_policy("queue", requests, HPA(5.0, waiting, POLICY).decide, TICK, initial, end),
    ]
    oracle = run_oracle(requests, end)
    runs.append(oracle)
    runs.append(oracle_held(requests, end, oracle))
    return runs


def hpa_sweep(requests: Sequence[Request], end: float, initial: int) -> list[tuple[float, Run]]:
    """HPA at several targets: the fairest HPA is the cheapest that matches Corral's minutes."""
    out = []
    for utilisation in HPA_TARGETS:
        decide = HPA(utilisation * POLICY.concurrency, in_system, POLICY).decide
        out.append((utilisation, run_policy("hpa", requests, decide, TICK, initial, end)))
    return out


def oracle_held(requests: Sequence[Request], end: float, oracle: Run) -> Run:
    """The oracle's plan under Corral's scale-down rule (a minute keeps the highest count of the
    last window): the least any policy bound by that rule could use, even knowing the future."""
    per_minute = _per_minute(oracle.sizes, end)
    window = max(1, round(max(POLICY.behavior.scale_down_stabilization, POLICY.startup) / MINUTE))
    held = [max(per_minute[max(0, m - window + 1) : m + 1]) for m in range(len(per_minute))]
    return replay_plan("oracle+hold", requests, held)


def _per_minute(sizes: list[tuple[float, int]], end: float) -> list[int]:
    out = []
    for m in range(int(end // MINUTE) + 1):
        out.append(next(n for t, n in reversed(sizes) if t <= m * MINUTE))
    return out


def run_oracle(requests: Sequence[Request], end: float) -> Run:
    plan = oracle_plan(requests, ORACLE_OBJECTIVES, POLICY.concurrency, MINUTE, POLICY.max_replicas)
    return replay_plan("oracle", requests, [max(POLICY.floor, n) for n in plan])


def replay_plan(name: str, requests: Sequence[Request], plan: Sequence[int]) -> Run:
    """Replay replicas per minute in the same simulator, each minute's replicas asked a start-up
    time ahead (so they serve from the minute's start and cost that start-up time too)."""
    sim = ServingSim(requests, POLICY.concurrency, 0.0, plan[0])
    run = Run(name, sim, [(0.0, plan[0])])
    for m, replicas in enumerate(plan):
        sim.advance(m * MINUTE)
        if replicas != sim.size:
            sim.resize(replicas)
            run.sizes.append((m * MINUTE, replicas))
    finish(sim)
    starts = sum(max(0, b - a) for a, b in itertools.pairwise(plan))
    run.oracle_seconds = sim.replica_seconds + starts * POLICY.startup
    return run


# --- judging ---------------------------------------------------------------------------------


def minutes_meeting(run: Run, end: float, start: float = 0.0) -> dict[str, float]:
    """Share of minutes in [start, end) whose arrivals meet each objective (and all)."""
    by_minute: dict[int, list[tuple[float, float]]] = {}
    for arrival, ttft, latency in run.sim.served:
        if start <= arrival < end:
            by_minute.setdefault(int((arrival - start) // MINUTE), []).append((ttft, latency))
    minutes = max(1, math.ceil((end - start) / MINUTE))
    met = {o.name: 0 for o in POLICY.objectives}
    met_all = 0
    for m in range(minutes):
        values = by_minute.get(m, [])
        ok_all = True
        for objective in POLICY.objectives:
            index = 0 if objective.type == "TimeToFirstToken" else 1
            observed = quantile(sorted(v[index] for v in values), objective.quantile)
            ok = observed <= objective.target
            met[objective.name] += ok
            ok_all &= ok
        met_all += ok_all
    shares = {name: count / minutes for name, count in met.items()}
    shares["all"] = met_all / minutes
    return shares


def minute_failures(run: Run, start: float, end: float) -> list[int]:
    """Indices (from `start`) of the minutes that miss an objective."""
    shares_by_minute = []
    for m in range(math.ceil((end - start) / MINUTE)):
        shares = minutes_meeting(run, start + (m + 1) * MINUTE, start + m * MINUTE)
        shares_by_minute.append(shares["all"])
    return [m for m, share in enumerate(shares_by_minute) if share < 1]


def missed_minutes(
    run: Run, requests: Sequence[Request], end: float, oracle: Sequence[int]
) -> list[dict[str, Any]]:
    """Why each minute missed: its load against the minute before and the most of any earlier
    minute (slot-seconds of work per second), and the replicas ready as it began against what
    the oracle had. A replica asked for once a burst shows serves a start-up time later, so a
    burst shorter than that is met only by capacity already there."""
    work = [0.0] * (int(end // MINUTE) + 1)
    for request in requests:
        work[int(request.arrival // MINUTE)] += request.service / MINUTE
    ready = _per_minute([(0.0, run.sizes[0][1]), *run.ready], end)
    out = []
    for m in minute_failures(run, 0.0, end):
        before = work[m - 1] if m > 0 else 0.0
        earlier = max(work[:m], default=0.0)
        kind = (
            "start (nothing learned)"
            if m == 0
            else "new peak"
            if work[m] > earlier
            else "burst onset"
            if work[m] >= 2 * before
            else "queue spill-over"
            if m > 0 and (m - 1) in {row["minute"] for row in out}
            else "other"
        )
        out.append(
            {
                "minute": m,
                "kind": kind,
                "busy_slots": round(work[m], 1),
                "previous_minute": round(before, 1),
                "most_before": round(earlier, 1),
                "ready_at_start": ready[m],
                "oracle": oracle[m] if m < len(oracle) else None,
            }
        )
    return out


def initial_replicas(requests: Sequence[Request]) -> int:
    """What a running service would have: the first five minutes' load at 70 % utilisation."""
    early = [r for r in requests if r.arrival < 300]
    load = sum(r.service for r in early) / 300
    return max(1, math.ceil(load / (0.7 * POLICY.concurrency)))


def trace_report(name: str, requests: Sequence[Request]) -> dict[str, Any]:
    end = max(r.arrival for r in requests)
    runs = run_all(requests, end, initial_replicas(requests))
    oracle = next(r for r in runs if r.policy == "oracle")
    corral_minutes = minutes_meeting(runs[0], end)["all"]
    sweep = hpa_sweep(requests, end, initial_replicas(requests))
    matching = [
        (run.replica_hours, utilisation, run)
        for utilisation, run in sweep
        if minutes_meeting(run, end)["all"] >= corral_minutes
    ]
    if matching:
        _, utilisation, best = min(matching, key=lambda item: item[0])
        best.policy = f"hpa@{utilisation:g}"
        runs.insert(2, best)
    swept = [
        {
            "target_utilisation": utilisation,
            "minutes_meeting": minutes_meeting(run, end)["all"],
            "replica_hours": round(run.replica_hours, 3),
        }
        for utilisation, run in sweep
    ]
    rows = []
    for run in runs:
        shares = minutes_meeting(run, end)
        rows.append(
            {
                "policy": run.policy,
                "minutes_meeting": shares,
                "replica_hours": round(run.replica_hours, 3),
                "vs_oracle": round(run.replica_hours / oracle.replica_hours, 3),
                "reversals": run.reversals(),
                "flaps": run.flaps(),
                "peak_replicas": max(n for _, n in run.sizes),
            }
        )
    oracle_sizes = _per_minute(oracle.sizes, end)
    return {
        "trace": name,
        "requests": len(requests),
        "minutes": math.ceil(end / 60),
        "rows": rows,
        "hpa_sweep": swept,
        "corral_missed": missed_minutes(runs[0], requests, end, oracle_sizes),
    }


# --- stability scenarios ---------------------------------------------------------------------


def scenario_sizes(sizes_from: Sequence[Request]) -> tuple[float, list[Request]]:
    """A rate giving ~20 busy slots with these request sizes, and the sizes."""
    mean = statistics.fmean(r.service for r in sizes_from)
    return 20 * POLICY.concurrency / mean, list(sizes_from)


def constant_load(sizes: Sequence[Request], seed: int) -> dict[str, Any]:
    rate, pool = scenario_sizes(sizes)
    duration = 3600.0
    requests = poisson(pool, lambda t: rate, duration, seed)
    initial = initial_replicas(requests)
    out = {}
    for name, decide, period in (
        ("corral", corral_decider(), TICK),
        ("hpa", HPA(0.7 * POLICY.concurrency, in_system, POLICY).decide, TICK),
    ):
        run = run_policy(name, requests, decide, period, initial, duration)
        settled = [(t, n) for t, n in run.sizes if t >= 600]  # after the first 10 minutes
        counts = [n for _, n in settled]
        out[name] = {
            "flaps": run.flaps(),
            "changes_after_10min": len(settled),
            "range_after_10min": [min(counts), max(counts)] if counts else None,
            "minutes_meeting": minutes_meeting(run, duration)["all"],
        }
    return {"rate": round(rate, 3), **out}


def traffic_stops(sizes: Sequence[Request], seed: int) -> dict[str, Any]:
    rate, pool = scenario_sizes(sizes)
    stop = 1800.0
    requests = poisson(pool, lambda t: rate if t < stop else 0.0, stop, seed)
    run = run_policy(
        "corral", requests, corral_decider(), TICK, initial_replicas(requests), 3 * stop
    )
    at_min = next((t for t, n in run.sizes if t > stop and n == POLICY.floor), None)
    window = POLICY.behavior.scale_down_stabilization
    seconds = None if at_min is None else at_min - stop
    return {
        "back_to_min_seconds": seconds,
        "limit_seconds": 2 * window,
        "met": seconds is not None and seconds <= 2 * window,
    }


def burst(sizes: Sequence[Request], seed: int) -> dict[str, Any]:
    rate, pool = scenario_sizes(sizes)
    step = 1800.0
    duration = 3600.0
    requests = poisson(pool, lambda t: rate if t < step else 2 * rate, duration, seed)
    run = run_policy(
        "corral", requests, corral_decider(), TICK, initial_replicas(requests), duration
    )
    failures = minute_failures(run, step, duration)
    absorbed = 0.0 if not failures else (max(failures) + 1) * MINUTE
    limit = POLICY.startup + 60
    return {
        "minutes_missed_after_step": len(failures),
        "absorbed_seconds": absorbed,
        "limit_seconds": limit,
        "met": absorbed <= limit,
    }


def new_service(sizes: Sequence[Request], seed: int) -> dict[str, Any]:
    """A service created under a constant load: the most replicas it asked for in its first 15
    minutes against the size it settles at (minutes 30 to 60). Its first windows began before it
    served, so they under-count its requests. Started at a size that carries the load (70 %
    utilisation) the first windows alone are at play; started at minReplicas it is saturated
    at once and the standing queue is drained within a window (sized for on purpose)."""
    rate, pool = scenario_sizes(sizes)
    out = []
    for busy, start in ((6, "carrying"), (20, "carrying"), (6, "min")):
        load = rate * busy / 20
        duration = 3600.0
        requests = poisson(pool, lambda t, r=load: r, duration, seed)
        initial = initial_replicas(requests) if start == "carrying" else POLICY.floor
        run = run_policy("corral", requests, corral_decider(), TICK, initial, duration)
        per_minute = _per_minute(run.sizes, duration)
        early = max(per_minute[:15])
        settled = statistics.median_low(per_minute[30:60])
        out.append(
            {
                "busy_slots": busy,
                "rate": round(load, 3),
                "initial": initial,
                "peak_first_15min": early,
                "settled": settled,
                "overshoot": round(early / settled, 2),
                "minutes_meeting": minutes_meeting(run, duration)["all"],
            }
        )
    return {"rows": out}


def model_error(sizes: Sequence[Request], seed: int) -> dict[str, Any]:
    """The queueing model's p99 time to first token against the simulator's, at fixed replica
    counts and Poisson load from 50 % to 90 % utilisation, the model given the true service-time
    mean and variability and the prefill distribution either finely (the queueing
    approximation's own error) or in vLLM's TTFT buckets (what the operator sees)."""
    rows = []
    mean = statistics.fmean(r.service for r in sizes)
    scv = statistics.pvariance([r.service for r in sizes]) / mean**2
    fine_bounds = tuple(0.005 * 1.05**i for i in range(200))
    fine = Histogram.from_samples((r.prefill for r in sizes), fine_bounds).normalized()
    coarse = Histogram.from_samples((r.prefill for r in sizes), TTFT_BUCKETS).normalized()
    for replicas in (4, 16, 64):
        for utilisation in (0.5, 0.7, 0.8, 0.9):
            rate = utilisation * replicas * POLICY.concurrency / mean
            duration = max(3600.0, 40000 / rate)
            requests = poisson(sizes, lambda t, r=rate: r, duration, seed + replicas)
            sim = ServingSim(requests, POLICY.concurrency, 0.0, replicas)
            sim.advance(duration + 3600)
            ttfts = sorted(t for a, t, _ in sim.served if a > 300)
            simulated = quantile(ttfts, 0.99)
            wait = wait_of(replicas * POLICY.concurrency, rate, mean, scv)
            predicted = latency_quantile(fine, wait, 0.99)
            bucketed = latency_quantile(coarse, wait, 0.99)
            rows.append(
                {
                    "replicas": replicas,
                    "utilisation": utilisation,
                    "simulated_p99": round(simulated, 3),
                    "predicted_p99": round(predicted, 3),
                    "error": round(predicted / simulated - 1, 3),
                    "predicted_p99_vllm_buckets": round(bucketed, 3),
                    "error_vllm_buckets": round(bucketed / simulated - 1, 3),
                }
            )
    errors = [abs(row["error"]) for row in rows]
    return {
        "service_scv": round(scv, 2),
        "rows": rows,
        "median_abs_error": round(statistics.median(errors), 3),
        "max_abs_error": round(max(errors), 3),
    }


# --- report ----------------------------------------------------------------------------------


def print_trace(report: dict[str, Any]) -> None:
    print(f"\n{report['trace']}: {report['requests']} requests over {report['minutes']} min")
    names = [o.name for o in POLICY.objectives]
    header = f"{'policy':<12}" + "".join(f"{n + ' ok':>9}" for n in names)
    print(header + f"{'all ok':>9}{'rep-h':>9}{'x oracle':>9}{'revs':>6}{'flaps':>6}{'peak':>6}")
    for row in report["rows"]:
        shares = row["minutes_meeting"]
        line = f"{row['policy']:<12}" + "".join(f"{shares[n]:>9.1%}" for n in names)
        line += f"{shares['all']:>9.1%}{row['replica_hours']:>9.2f}{row['vs_oracle']:>9.3f}"
        print(line + f"{row['reversals']:>6}{row['flaps']:>6}{row['peak_replicas']:>6}")
    sweep = ", ".join(
        f"{row['target_utilisation']:g}: {row['minutes_meeting']:.1%} / {row['replica_hours']:.1f} rep-h"
        for row in report["hpa_sweep"]
    )
    print(f"HPA by target utilisation (minutes meeting / replica-hours): {sweep}")
    for row in report["corral_missed"]:
        print(
            f"corral missed minute {row['minute']}: {row['kind']} ({row['busy_slots']} busy slots;"
            f" minute before {row['previous_minute']}, most before {row['most_before']});"
            f" {row['ready_at_start']} ready as it began, the oracle had {row['oracle']}"
        )


def verdicts(traces: list[dict[str, Any]], scenarios: dict[str, Any]) -> list[str]:
    lines = []
    for report in traces:
        rows = {row["policy"]: row for row in report["rows"]}
        corral = rows["corral"]
        matched = [row for name, row in rows.items() if name.startswith("hpa@")]
        hpa = matched[0] if matched else rows["hpa"]
        attainment = corral["minutes_meeting"]["all"]
        lines.append(
            _verdict(
                attainment >= 0.99,
                f"{report['trace']}: {attainment:.1%} of minutes meet every objective (target >= 99 %)",
            )
        )
        lines.append(
            _verdict(
                corral["vs_oracle"] <= 1.10,
                f"{report['trace']}: {corral['vs_oracle']:.2f}x the oracle's replica-hours (target <= 1.10x)",
            )
        )
        held = rows["oracle+hold"]
        lines.append(
            f"info   {report['trace']}: {corral['replica_hours'] / held['replica_hours']:.2f}x the "
            f"oracle held by the same {POLICY.behavior.scale_down_stabilization:.0f} s scale-down "
            f"rule ({held['vs_oracle']:.2f}x the oracle: the rule's own cost with perfect foresight)"
        )
        saving = 1 - corral["replica_hours"] / hpa["replica_hours"]
        equal_or_better = attainment >= hpa["minutes_meeting"]["all"]
        lines.append(
            _verdict(
                saving >= 0.25 and equal_or_better,
                f"{report['trace']}: {saving:.0%} fewer replica-hours than {hpa['policy']} "
                f"({'equal or better' if equal_or_better else 'WORSE'} attainment: "
                f"{attainment:.1%} vs {hpa['minutes_meeting']['all']:.1%}; target >= 25 %)",
            )
        )
    flaps = scenarios["constant"]["corral"]["flaps"]
    lines.append(_verdict(flaps == 0, f"constant load: {flaps} N<->N-1 flaps (target 0)"))
    stops = scenarios["stops"]
    lines.append(
        _verdict(
            stops["met"],
            f"traffic stops: back to min in {stops['back_to_min_seconds']} s "
            f"(target <= {stops['limit_seconds']:.0f} s)",
        )
    )
    step = scenarios["burst"]
    lines.append(
        _verdict(
            step["met"],
            f"2x burst absorbed in {step['absorbed_seconds']:.0f} s "
            f"(target <= {step['limit_seconds']:.0f} s; {step['minutes_missed_after_step']} minutes missed)",
        )
    )
    return lines


def _verdict(ok: bool, text: str) -> str:
    return f"{'ok    ' if ok else 'MISSED'} {text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, action="append", help="a trace CSV (repeatable)")
    parser.add_argument("--speed", type=float, default=1.0, help="time compression of traces")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "autoscaling.json")
    args = parser.parse_args(argv)
    traces = {p.stem: p for p in args.trace} if args.trace else TRACES
    started = time.monotonic()
    reports = []
    for name, path in traces.items():
        if not path.exists():
            print(f"bench/autoscaling.py: {path} not found", file=sys.stderr)
            return 2
        reports.append(trace_report(name, read_trace(path, args.speed)))
        print_trace(reports[-1])
    sizes = read_trace(next(iter(traces.values())))
    scenarios = {
        "constant": constant_load(sizes, args.seed),
        "stops": traffic_stops(sizes, args.seed),
        "burst": burst(sizes, args.seed),
        "new_service": new_service(sizes, args.seed),
        "model_error": model_error(sizes, args.seed),
    }
    print(f"\nconstant load ({scenarios['constant']['rate']} req/s, 1 h):")
    for name in ("corral", "hpa"):
        row = scenarios["constant"][name]
        print(
            f"  {name:<7} flaps {row['flaps']}, changes after 10 min {row['changes_after_10min']} "
            f"(range {row['range_after_10min']}), minutes meeting {row['minutes_meeting']:.1%}"
        )
    print("\nnew service under constant load (its first windows partly covered):")
    for row in scenarios["new_service"]["rows"]:
        print(
            f"  {row['rate']:g} req/s ({row['busy_slots']} busy slots) from {row['initial']}: at most "
            f"{row['peak_first_15min']} replicas in the first 15 min, settled at {row['settled']} "
            f"({row['overshoot']:.2f}x), minutes meeting {row['minutes_meeting']:.1%}"
        )
    error = scenarios["model_error"]
    print(
        f"\nmodel error (p99 TTFT, M/G/c model vs simulator; service SCV {error['service_scv']}):"
    )
    for row in error["rows"]:
        print(
            f"  {row['replicas']:>3} replicas at {row['utilisation']:.0%}: simulated "
            f"{row['simulated_p99']:.3f} s, predicted {row['predicted_p99']:.3f} s "
            f"({row['error']:+.1%}); from vLLM's buckets {row['predicted_p99_vllm_buckets']:.3f} s "
            f"({row['error_vllm_buckets']:+.1%})"
        )
    print(f"  median |error| {error['median_abs_error']:.1%}, max {error['max_abs_error']:.1%}")
    print()
    lines = verdicts(reports, scenarios)
    for line in lines:
        print(line)
    result = {
        "policy": {
            "objectives": [o.__dict__ for o in POLICY.objectives],
            "concurrency": POLICY.concurrency,
            "startup": POLICY.startup,
            "tick": TICK,
        },
        "traces": reports,
        "scenarios": scenarios,
        "verdicts": lines,
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
