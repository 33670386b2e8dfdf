"""What the service model learns from windows of the discrete-event model."""

from __future__ import annotations

import random

import pytest
from tests.autoscaling.builders import E2E, TTFT, load, policy

from corral.autoscaling.model import ServiceModel, learn, measure_load
from corral.autoscaling.servingsim import Request, ServingSim, observe


def requests(rate: float, duration: float, seed: int = 2) -> list[Request]:
    rng = random.Random(seed)
    t, out = 0.0, []
    while t < duration:
        t += rng.expovariate(rate)
        out.append(Request(t, rng.uniform(0.1, 0.3), rng.expovariate(1 / 2.0), 20))
    return out


def trained(rate: float, replicas: int, minutes: int = 20, **fields: object) -> ServiceModel:
    rules = policy(TTFT, E2E, **fields)
    sim = ServingSim(requests(rate, minutes * 60.0), 1, 0.0, replicas)
    model = ServiceModel()
    for step in range(4, minutes * 4):
        sim.advance(step * 15.0)
        observation = observe(sim, rules)
        load = measure_load(observation, rules)
        assert not isinstance(load, str)
        model = learn(model, observation, load, rules)
    return model


def test_learns_the_mean_service_time_from_the_in_flight_gauge() -> None:
    model = trained(rate=4.0, replicas=14)
    assert model.mean_service == pytest.approx(2.2, rel=0.15)  # 0.2 s prefill + 2 s decode


@pytest.mark.parametrize(
    ("ready_since", "learned"),
    [
        (0.0, 2.0),  # ready for a whole window: Little's law
        (90.0, None),  # ready 30 s of a 60 s window: a new replica's counts come up short
        (None, None),
    ],
)
def test_littles_law_only_over_a_window_at_a_steady_replica_count(
    ready_since: float | None, learned: float | None
) -> None:
    rules = policy(TTFT)
    seen = load(rate=5.0, mean_service=2.0)
    seen.ready_since = ready_since
    observation = seen.build(at=120.0)
    measured = measure_load(observation, rules)
    assert not isinstance(measured, str)
    model = learn(ServiceModel(), observation, measured, rules)
    assert model.mean_service == (pytest.approx(learned) if learned else None)


def test_learns_the_prefill_as_the_ttft_objectives_own_time() -> None:
    own = trained(rate=4.0, replicas=14).objective("ttft").own
    assert own is not None
    # 0.3 s at most: vLLM's buckets around it are (0.25, 0.5] and (0.5, 0.75].
    assert 0.25 <= own.quantile(0.99) <= 0.75
    assert own.quantile(0.5) <= 0.25


def test_a_right_model_keeps_its_correction_near_one() -> None:
    model = trained(rate=5.0, replicas=13, minutes=30)
    assert 0.6 <= model.objective("ttft").correction <= 1.6


def test_without_an_in_flight_gauge_the_latency_objective_gives_the_service_time() -> None:
    rules = policy(TTFT, E2E)
    sim = ServingSim(requests(4.0, 1200.0), 1, 0.0, 14)
    model = ServiceModel()
    for step in range(4, 80):
        sim.advance(step * 15.0)
        observation = observe(sim, rules)
        observation = type(observation)(**{**observation.__dict__, "in_flight": None})
        load = measure_load(observation, rules)
        assert not isinstance(load, str)
        model = learn(model, observation, load, rules)
    assert model.mean_service == pytest.approx(2.2, rel=0.25)


def test_the_load_is_the_served_rate_plus_the_growth_and_drain_of_the_queue() -> None:
    rules = policy(TTFT)
    sim = ServingSim(requests(10.0, 300.0), 1, 0.0, 5)  # 22 busy slots' worth on 5 replicas
    for step in range(1, 9):
        sim.advance(step * 15.0)
    load = measure_load(observe(sim, rules), rules)
    assert not isinstance(load, str)
    assert load.throughput < 3.0
    assert load.arrival == pytest.approx(10.0, rel=0.25)
    assert load.demand > load.arrival
