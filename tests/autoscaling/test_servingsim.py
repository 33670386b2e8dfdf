"""The discrete-event model: queueing theory where it has answers, and graceful scale-down."""

from __future__ import annotations

import random
import statistics

import pytest

from corral.autoscaling.servingsim import Request, ServingSim


def poisson(rate: float, mean_service: float, duration: float, seed: int = 1) -> list[Request]:
    rng = random.Random(seed)
    t, out = 0.0, []
    while t < duration:
        t += rng.expovariate(rate)
        out.append(Request(t, 0.0, rng.expovariate(1 / mean_service), 2))
    return out


def test_mm1_mean_wait_matches_theory() -> None:
    # M/M/1 at rho = 0.7: E[W] = rho / (mu - lambda) = 0.7 / 0.3
    sim = ServingSim(poisson(0.7, 1.0, 60_000), concurrency=1, startup=0.0, replicas=1)
    sim.advance(70_000)
    assert statistics.fmean(sim.waits.values) == pytest.approx(0.7 / 0.3, rel=0.1)


def test_every_request_is_served_once() -> None:
    requests = poisson(5.0, 1.0, 600)
    sim = ServingSim(requests, concurrency=2, startup=0.0, replicas=4)
    sim.advance(5000)
    assert len(sim.served) == len(requests)
    assert sim.finished


def test_scale_down_drains_without_dropping_a_request() -> None:
    requests = [Request(float(t), 0.1, 30.0, 10) for t in range(8)]
    sim = ServingSim(requests, concurrency=1, startup=0.0, replicas=8)
    sim.advance(10.0)
    assert sim.busy == 8
    sim.resize(2)
    assert sim.size == 2 and sim.existing == 8  # six draining, still billed
    sim.advance(100.0)
    assert len(sim.served) == 8
    assert sim.existing == 2


def test_new_replicas_serve_after_their_start_up_and_cost_from_creation() -> None:
    sim = ServingSim([Request(1.0, 0.1, 1.0, 2)], concurrency=1, startup=60.0, replicas=0)
    sim.resize(1)
    sim.advance(30.0)
    assert sim.starting == 1 and sim.ready == 0 and sim.queued == 1
    sim.advance(120.0)
    assert sim.served[0][1] == pytest.approx(59.1)  # waited for the replica, then 0.1 s prefill
    assert sim.replica_seconds == pytest.approx(120.0)


def test_ready_since_moves_only_when_the_ready_count_changes() -> None:
    sim = ServingSim([], concurrency=1, startup=10.0, replicas=2)
    sim.advance(50.0)
    assert sim.ready_since == 0.0
    sim.resize(3)
    sim.advance(100.0)
    assert sim.ready_since == 60.0
