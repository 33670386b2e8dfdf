"""The queueing formulas against closed forms, and the deconvolution against its own convolution."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.autoscaling.histogram import Histogram
from corral.autoscaling.queueing import (
    Wait,
    deconvolve,
    erlang_c,
    exceedance,
    latency_quantile,
    wait_of,
)


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: P(wait) = rho
        (2, 1.0, 1 / 3),
        (10, 8.0, 0.4092),  # tables of Erlang C
    ],
)
def test_erlang_c_matches_tables(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(("servers", "load"), [(5, 4.5), (50, 45.0), (100, 90.0), (400, 390.0)])
def test_erlang_c_matches_the_sum_formula(servers: int, load: float) -> None:
    # C = (a^c/c! * c/(c-a)) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a)), in logs to stay finite.
    log_terms = [k * math.log(load) - math.lgamma(k + 1) for k in range(servers)]
    top = servers * math.log(load) - math.lgamma(servers + 1) + math.log(servers / (servers - load))
    peak = max([*log_terms, top])
    total = sum(math.exp(x - peak) for x in log_terms) + math.exp(top - peak)
    assert erlang_c(servers, load) == pytest.approx(math.exp(top - peak) / total, rel=1e-9)


def test_wait_tail_is_the_mm_c_closed_form_for_exponential_service() -> None:
    # M/M/c: P(W > t) = C * exp(-(c*mu - lambda) * t)
    wait = wait_of(servers=4, rate=3.0, mean_service=1.0, service_scv=1.0)
    c = erlang_c(4, 3.0)
    for t in (0.0, 0.5, 2.0):
        assert wait.exceeds(t) == pytest.approx(c * math.exp(-(4 - 3.0) * t))


def test_allen_cunneen_scales_the_mean_wait_by_the_variability() -> None:
    exponential = wait_of(8, 6.0, 1.0, 1.0)
    deterministic = wait_of(8, 6.0, 1.0, 0.0)
    assert deterministic.mean() == pytest.approx(exponential.mean() / 2, rel=1e-6)


@pytest.mark.parametrize(("servers", "rate"), [(2, 2.0), (3, 5.0), (0, 1.0)])
def test_saturated_queues_never_meet_anything(servers: int, rate: float) -> None:
    wait = wait_of(servers, rate, mean_service=1.0, service_scv=1.0)
    assert wait.saturated
    own = Histogram.from_samples([0.1], (0.5, 1.0))
    assert exceedance(own, wait, 1e6) == 1.0
    assert latency_quantile(own, wait, 0.99) == math.inf


def test_exceedance_adds_the_wait_to_the_requests_own_time() -> None:
    own = Histogram((1.0,), (1.0, 0.0), 1.0)  # X uniform on [0, 1]
    wait = Wait(probability=0.5, decay=2.0)
    # t = 3: X <= 1 always, P(W + X > 3) = 0.5 * E[exp(-2 (3 - X))] = 0.5 * (e^-4 - e^-6) / 2
    expected = 0.5 * (math.exp(-4) - math.exp(-6)) / 2
    assert exceedance(own, wait, 3.0) == pytest.approx(expected)


@given(st.floats(0.0, 0.45), st.floats(0.5, 20.0))
def test_deconvolution_recovers_what_the_model_convolved(probability: float, decay: float) -> None:
    bounds = tuple(0.05 * i for i in range(1, 200))
    own = Histogram.from_samples([0.3, 0.5, 0.5, 0.8, 1.2, 2.0], bounds).normalized()
    wait = Wait(probability, decay)
    # The observed histogram: S_L(t) at every bound.
    survivals = [exceedance(own, wait, b) for b in bounds]
    counts, before = [], 1.0
    for value in survivals:
        counts.append(before - value)
        before = value
    counts.append(before)
    observed = Histogram(bounds, tuple(counts), 0.0)
    recovered = deconvolve(observed, wait)
    assert recovered is not None
    for t in (0.25, 0.5, 0.75, 1.0, 1.5, 2.5):
        assert recovered.survival(t) == pytest.approx(own.survival(t), abs=0.02)


def test_deconvolution_refuses_when_most_requests_wait() -> None:
    own = Histogram.from_samples([0.3], (0.5, 1.0)).normalized()
    assert deconvolve(own, Wait(0.8, 1.0)) is None
