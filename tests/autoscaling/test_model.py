"""What the service model learns from windows of the discrete-event model."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.autoscaling.builders import E2E, TTFT, learned, load, policy

from corral.autoscaling.histogram import Histogram
from corral.autoscaling.model import ServiceModel, inter_token_line, learn, measure_load
from corral.autoscaling.observation import Observation
from corral.autoscaling.queueing import exceedance
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


def _window_with_wait(
    model: ServiceModel, servers: int, rate: float, factor: float, at: float
) -> Observation:
    """One window whose TTFT histogram is exactly the prefill plus the model's wait times
    `factor` (fine buckets: the percentile read is the distribution's, not a bucket's)."""
    own = model.objective("ttft").own
    assert own is not None and model.mean_service is not None
    count = rate * 60.0
    truth = model.wait(servers, rate).scaled(factor)
    bounds = [0.02 * k for k in range(1, 1501)]
    cumulative = [(b, count * (1 - exceedance(own, truth, b))) for b in bounds]
    histogram = Histogram.from_cumulative([*cumulative, (math.inf, count)])
    window = load(rate=rate, mean_service=model.mean_service).replicas(servers).build(at=at)
    return replace(window, histograms={"ttft": histogram})


@settings(max_examples=12, deadline=None)
@given(truth=st.floats(min_value=0.6, max_value=3.5))
def test_a_wait_worse_or_better_than_modelled_is_corrected_without_oscillating(
    truth: float,
) -> None:
    """The real wait is `truth` times the modelled one (a router that is not least-loaded, a
    batch that slows decoding): the correction moves toward it window by window, one way only,
    never past it, and ends near it."""
    rules = policy(TTFT)
    model = learned(mean_service=2.0, scv=1.0)
    servers, rate = 20, 8.6  # 86 % busy: a third of the requests wait
    assert model.wait(servers, rate).probability > 0.3
    corrections = [1.0]
    for step in range(1, 41):
        observation = _window_with_wait(model, servers, rate, truth, at=60.0 * step)
        measured = measure_load(observation, rules)
        assert not isinstance(measured, str)
        model = learn(model, observation, measured, rules)
        corrections.append(model.objective("ttft").correction)
    steps = [b - a for a, b in pairwise(corrections)]
    direction = 1.0 if truth >= 1.0 else -1.0
    assert all(direction * s >= -1e-4 for s in steps), corrections  # one way only
    assert all(direction * (c - truth) <= 0.05 * truth for c in corrections), corrections
    assert corrections[-1] == pytest.approx(truth, rel=0.1), corrections


@pytest.mark.parametrize(
    ("points", "line"),
    [
        pytest.param([(u, 0.04 + 0.02 * u) for u in (1, 2, 3, 4, 6)], (0.04, 0.02), id="exact"),
        pytest.param(
            [(1, 0.06), (2, 0.08), (3, 0.10), (4, 0.50), (5, 0.14), (6, 0.16)],
            (0.04, 0.02),
            id="one wild window (a GC pause) does not bend it",
        ),
        pytest.param([(1, 0.09), (3, 0.08), (5, 0.07)], (0.08, 0.0), id="falling is noise"),
    ],
)
def test_the_inter_token_line_is_a_robust_fit(
    points: list[tuple[float, float]], line: tuple[float, float]
) -> None:
    found = inter_token_line(tuple(points))
    assert found == pytest.approx(line, abs=1e-9)


def test_the_inter_token_line_from_one_load_errs_towards_more_replicas() -> None:
    """Points all at one load say nothing of the slope: the prior is proportional to
    1 + requests per replica, which at that load gives back what was observed."""
    found = inter_token_line(((4.0, 0.10), (4.0, 0.11), (4.0, 0.09)))
    assert found is not None
    intercept, slope = found
    assert intercept + slope * 4.0 == pytest.approx(0.10)
    assert intercept + slope * 8.0 > 0.10  # more load per replica: slower, never faster
