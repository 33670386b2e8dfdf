"""Sim-to-bench: the simulator's autoscaler decisions for a trace equal those of
`bench/autoscaling.py`'s replay of the same trace — the same domain code (`tick` on the serving
model's observations), driven once through the operator's replica lifecycle on a simulated fleet
and once by the benchmark's loop resizing the serving model directly.

One input differs by design: when the ready count changes, the benchmark's serving model knows
the exact moment (`ServingSim.ready_since`), while the operator — and so the simulator — notes it
at its next tick (`Scaling.saw_ready`). Up to the first scale-down the two agree anyway; over a
longer load they agree exactly once the benchmark's loop is given the operator's reading.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.sim.test_engine import h100_pool, hosts

from corral.autoscaling.autoscaler import AutoscalerState, tick
from corral.autoscaling.observation import Replicas
from corral.autoscaling.servingsim import Request, ServingSim, observe
from corral.sim.engine import Options, simulate
from corral.sim.inference import read_trace, services

ROOT = Path(__file__).resolve().parents[2]
EXCERPT = ROOT / "examples" / "sim" / "traces" / "azure-conv-10min.csv"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import autoscaling

    return autoscaling


def as_service(bench: ModuleType, initial: int, repeat: int) -> dict[str, Any]:
    """The benchmark's policy as an InferenceService, running at `initial` when its load
    begins (the benchmark starts from that many ready replicas)."""
    policy = bench.POLICY
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {
            "name": "chat",
            "namespace": "prod",
            "annotations": {"sim.corral.dev/trace": str(EXCERPT), "sim.corral.dev/repeat": str(repeat)},
        },
        "spec": {
            "acceleratorsPerReplica": 1,
            "autoscaling": {
                "minReplicas": policy.min_replicas,
                "maxReplicas": policy.max_replicas,
                "concurrencyPerReplica": policy.concurrency,
                "startupSeconds": int(policy.startup),
                # The benchmark's observations carry the in-flight and queue gauges.
                "metrics": {"prometheus": {"url": "http://prometheus:9090", "windowSeconds": int(policy.window), "inFlight": "vllm:num_requests_running", "queued": "vllm:num_requests_waiting"}},
                "objectives": [
                    {"name": o.name, "histogram": "h", "type": o.type, "percentile": o.percentile, "latencyMs": o.target * 1000}
                    for o in policy.objectives
                ],
            },
            "template": {"spec": {"containers": [{"name": "server", "image": "vllm"}]}},
        },
        "status": {"desiredReplicas": initial},
    }  # fmt: skip


def simulated_sizes(bench: ModuleType, initial: int, repeat: int, end: float) -> list[Any]:
    """(time, replicas) at every change of the simulated service's autoscaler decision."""
    loads = services([as_service(bench, initial, repeat)], "inference.yaml", ROOT)
    result = simulate(hosts(16), [h100_pool()], [], Options(services=loads))
    (outcome,) = result.services
    sizes = [(0.0, initial)]
    for time, desired in zip(outcome.samples_time, outcome.samples_desired, strict=True):
        if desired != sizes[-1][1] and time <= end + 1:
            sizes.append((time, desired))
    return sizes


def repeated(times: int) -> list[Request]:
    once = read_trace(EXCERPT)
    span = once[-1].arrival + once[-1].arrival / (len(once) - 1)
    return [
        Request(r * span + q.arrival, q.prefill, q.decode, q.tokens)
        for r in range(times)
        for q in once
    ]


def test_the_simulator_decides_as_the_benchmark_replays_the_excerpt(bench: ModuleType) -> None:
    requests = read_trace(EXCERPT)
    end = max(r.arrival for r in requests)
    initial = bench.initial_replicas(requests)
    replay = bench.run_policy("corral", requests, bench.corral_decider(), bench.TICK, initial, end)
    assert len(replay.sizes) > 4  # the load moves the size: the comparison can fail
    assert simulated_sizes(bench, initial, 1, end) == replay.sizes


def test_over_a_longer_load_the_two_agree_given_the_operator_s_ready_reading(
    bench: ModuleType,
) -> None:
    requests = repeated(3)
    end = max(r.arrival for r in requests)
    initial = bench.initial_replicas(requests)
    state = AutoscalerState()
    seen: dict[str, Any] = {"ready": None, "since": 0.0}

    def operator_reading(sim: ServingSim, current: int) -> int:
        """The benchmark's decider, with the ready count's change noted at the tick that sees
        it (as the controller does) rather than when it happened."""
        nonlocal state
        if seen["ready"] is not None and seen["ready"] != sim.ready:
            seen["since"] = sim.now
        seen["ready"] = sim.ready
        observation = observe(sim, bench.POLICY)
        replicas = Replicas(sim.ready, sim.starting, seen["since"])
        observation = dataclasses.replace(observation, replicas=replicas)
        decision, state = tick(state, observation, bench.POLICY, current)
        return int(decision.replicas)

    replay = bench.run_policy("corral", requests, operator_reading, bench.TICK, initial, end)
    simulated = simulated_sizes(bench, initial, 3, end)
    downs = sum(1 for a, b in zip(replay.sizes, replay.sizes[1:], strict=False) if b[1] < a[1])
    assert downs >= 1  # a scale-down too, after which the ready reading matters
    assert simulated == replay.sizes
    exact = bench.run_policy("corral", requests, bench.corral_decider(), bench.TICK, initial, end)
    assert exact.sizes != simulated  # the reading does matter: this test can tell
