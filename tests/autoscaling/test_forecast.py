"""The arrival forecast looks ahead on a rising load and never below the rate of now."""

from __future__ import annotations

import random

import pytest

from corral.autoscaling.forecast import RateHistory, forecast


def history(rates: list[float], step: float = 15.0) -> RateHistory:
    out = RateHistory()
    for i, rate in enumerate(rates):
        out = out.remember(i * step, rate, span=600)
    return out


def test_a_steady_rise_is_extrapolated_over_the_horizon() -> None:
    rates = [10 + i for i in range(12)]  # +1 req/s every 15 s
    now = 11 * 15.0
    assert forecast(history(rates), now, horizon=60, span=600) == pytest.approx(21 + 4, rel=0.05)


def test_a_falling_or_flat_load_forecasts_the_rate_of_now() -> None:
    assert forecast(history([20 - i for i in range(12)]), 165, 60, 600) == 9
    assert forecast(history([10.0] * 12), 165, 60, 600) == 10


def test_noise_alone_is_not_a_trend() -> None:
    rng = random.Random(5)
    lifted = 0
    for _ in range(200):
        rates = [10 + rng.gauss(0, 0.5) for _ in range(12)]
        if forecast(history(rates), 165, 60, 600) > rates[-1]:
            lifted += 1
    assert lifted < 20


def test_the_forecast_at_most_doubles_the_rate() -> None:
    rates = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert forecast(history(rates), 75, 600, 600) == 64.0
