"""The smallest replica count: monotone in load, within bounds, and right on known cases."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.autoscaling.builders import E2E, ITL, TTFT, learned, policy, prefill

from corral.autoscaling.model import ObjectiveModel, ServiceModel
from corral.autoscaling.recommend import predicted_latency, recommend, window_allowance


def test_no_load_needs_no_replica() -> None:
    assert recommend(learned(), 0.0, policy()).replicas == 0


@pytest.mark.parametrize(
    ("rate", "low", "high"),
    [
        # 2 s per request: 5 req/s is 10 busy slots; p99 TTFT <= 2 s needs some headroom.
        (5.0, 11, 16),
        (20.0, 41, 52),
        (0.5, 1, 5),
    ],
)
def test_sizes_with_headroom_above_the_busy_slots(rate: float, low: int, high: int) -> None:
    found = recommend(learned(mean_service=2.0), rate, policy()).replicas
    assert low <= found <= high


def test_the_chosen_count_meets_the_objective_and_one_fewer_does_not() -> None:
    model, rules = learned(), policy()
    found = recommend(model, 8.0, rules).replicas
    at = predicted_latency(model, TTFT, 8.0, found, rules)
    below = predicted_latency(model, TTFT, 8.0, found - 1, rules)
    assert at is not None and below is not None
    # Sized for the window's p99 with 95 % confidence: at least the plain p99 is met.
    assert at <= TTFT.target
    assert below > at


@given(st.floats(0.05, 60.0), st.floats(1.01, 3.0))
def test_more_load_never_asks_for_fewer_replicas(rate: float, factor: float) -> None:
    model, rules = learned(), policy(max_replicas=1000)
    assert recommend(model, rate * factor, rules).replicas >= recommend(model, rate, rules).replicas


@given(st.floats(0.05, 30.0), st.lists(st.floats(0.2, 3.0), min_size=2, max_size=6))
def test_bursts_inside_the_window_never_ask_for_fewer_than_their_average(
    rate: float, shares: list[float]
) -> None:
    mean = sum(shares) / len(shares)
    profile = tuple(s / mean for s in shares)
    model, rules = learned(), policy(max_replicas=1000)
    flat = recommend(model, rate, rules).replicas
    assert recommend(model, rate, rules, profile).replicas >= flat


def test_a_correction_above_one_asks_for_more() -> None:
    model = learned()
    corrected = replace(model, objectives={"ttft": ObjectiveModel(own=prefill(), correction=2.0)})
    assert recommend(corrected, 10.0, policy()).replicas > recommend(model, 10.0, policy()).replicas


def test_an_objective_the_requests_own_time_breaks_is_set_aside_and_named() -> None:
    slow_prefill = learned(own=prefill(mean=3.0))  # prefill alone is over the 2 s target
    found = recommend(slow_prefill, 5.0, policy(TTFT))
    assert found.unattainable == ("ttft",)
    assert found.binding is None


def test_objectives_not_learned_yet_are_reported_unknown() -> None:
    assert recommend(ServiceModel(), 5.0, policy()).unknown == ("ttft",)
    half = learned()
    assert recommend(half, 5.0, policy(TTFT, E2E)).unknown == ("e2e",)


def test_the_binding_objective_is_the_one_needing_most() -> None:
    model = replace(
        learned(),
        objectives={
            "ttft": ObjectiveModel(own=prefill()),
            # 120 ms between tokens at no load, +20 ms per request a replica serves: at most
            # 0.05 / 0.02 = ... the line binds only once a replica serves more than a few.
            "itl": ObjectiveModel(points=((1.0, 0.06), (4.0, 0.12), (2.0, 0.08))),
        },
    )
    rules = policy(TTFT, ITL, concurrency=8)
    found = recommend(model, 20.0, rules)
    assert found.binding == "itl"
    per_replica = 20.0 * 2.0 / found.replicas
    assert 0.04 + 0.02 * per_replica <= ITL.target + 1e-9


@pytest.mark.parametrize(
    ("requests", "at_most", "at_least"),
    [(10_000, 0.0101, 0.008), (300, 0.006, 0.002), (20, 0.003, 0.002), (0, 0.0101, 0.0099)],
)
def test_window_allowance_tightens_with_few_requests(
    requests: float, at_most: float, at_least: float
) -> None:
    assert at_least <= window_allowance(0.99, requests) <= at_most


def test_saturated_rates_are_never_predicted_to_meet() -> None:
    model, rules = learned(mean_service=2.0), policy()
    assert predicted_latency(model, TTFT, 10.0, 5, rules) == math.inf
