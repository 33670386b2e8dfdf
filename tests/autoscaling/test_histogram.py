"""Histogram arithmetic matches what PromQL's histogram_quantile computes."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.autoscaling.histogram import Histogram, MalformedHistogram

INF = math.inf


def test_from_cumulative_takes_prometheus_buckets_in_any_order() -> None:
    h = Histogram.from_cumulative([(INF, 10), (0.1, 2), (0.5, 7)], total_sum=2.5)
    assert h.bounds == (0.1, 0.5)
    assert h.counts == (2, 5, 3)
    assert h.total == 10
    assert h.mean() == 0.25


@pytest.mark.parametrize(
    ("buckets", "problem"),
    [
        ([(0.1, 1), (0.5, 2)], "no +Inf bucket"),
        ([(0.1, math.nan), (INF, 2)], "NaN"),
        ([(0.1, 5), (0.5, 2), (INF, 6)], "decrease"),
        ([], "no +Inf bucket"),
    ],
)
def test_malformed_buckets_are_refused_with_the_reason(
    buckets: list[tuple[float, float]], problem: str
) -> None:
    with pytest.raises(MalformedHistogram, match=re.escape(problem)):
        Histogram.from_cumulative(buckets)


def test_tiny_dips_from_rate_extrapolation_are_clamped() -> None:
    h = Histogram.from_cumulative([(0.1, 100.2), (0.5, 100.0), (INF, 1000.0)])
    assert h.counts[1] == 0
    assert h.total == pytest.approx(1000.0)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # histogram_quantile(0.5, ...) on le=0.1:2, 0.5:7, +Inf:10 -> rank 5 in (0.1, 0.5]:
        # 0.1 + 0.4 * (5 - 2) / 5
        (0.5, 0.34),
        (0.2, 0.1),
        (0.1, 0.05),
        # rank 9.5 falls in the +Inf bucket: PromQL answers the last finite bound.
        (0.95, 0.5),
    ],
)
def test_quantile_matches_histogram_quantile(q: float, expected: float) -> None:
    h = Histogram.from_cumulative([(0.1, 2), (0.5, 7), (INF, 10)])
    assert h.quantile(q) == pytest.approx(expected)


def test_a_quantile_in_the_inf_bucket_is_flagged_as_a_floor() -> None:
    h = Histogram.from_cumulative([(0.1, 2), (0.5, 7), (INF, 10)])
    assert h.quantile_in_inf_bucket(0.95)
    assert not h.quantile_in_inf_bucket(0.5)


def test_cdf_interpolates_inside_a_bucket_and_counts_inf_as_above() -> None:
    h = Histogram.from_cumulative([(1.0, 4), (2.0, 8), (INF, 10)])
    assert h.cdf(0.5) == pytest.approx(0.2)
    assert h.cdf(1.5) == pytest.approx(0.6)
    assert h.cdf(100.0) == pytest.approx(0.8)
    assert h.survival(2.0) == pytest.approx(0.2)


@given(st.lists(st.floats(min_value=0.0, max_value=50.0), min_size=1, max_size=200))
def test_from_samples_counts_every_sample_once(samples: list[float]) -> None:
    h = Histogram.from_samples(samples, (0.1, 1.0, 10.0))
    assert h.total == len(samples)
    assert h.sum == pytest.approx(sum(samples))
    assert h.cdf(10.0) == pytest.approx(sum(1 for s in samples if s <= 10.0) / len(samples))


@given(
    st.lists(st.floats(min_value=0.0, max_value=50.0), min_size=5, max_size=200),
    st.floats(min_value=0.01, max_value=0.99),
    st.floats(min_value=0.01, max_value=0.99),
)
def test_quantile_is_monotone(samples: list[float], a: float, b: float) -> None:
    h = Histogram.from_samples(samples, (0.1, 0.5, 1.0, 5.0, 10.0, 20.0))
    low, high = sorted((a, b))
    assert h.quantile(low) <= h.quantile(high) + 1e-12


def test_scv_of_a_point_mass_is_small_and_of_a_spread_is_not() -> None:
    bounds = tuple(0.1 * i for i in range(1, 200))
    point = Histogram.from_samples([5.0] * 100, bounds)
    spread = Histogram.from_samples([0.5, 1.0, 2.0, 4.0, 8.0, 16.0], bounds)
    assert point.scv() < 0.01
    assert spread.scv() > 0.5
