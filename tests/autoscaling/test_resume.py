"""A restarted operator's autoscaler state, rebuilt from what status remembered."""

from __future__ import annotations

import math

import pytest
from tests.autoscaling.builders import E2E, ITL, TTFT, load, policy, prefill

from corral.autoscaling.autoscaler import AutoscalerState, tick
from corral.autoscaling.resume import Remembered, resume


@pytest.mark.parametrize(
    "remembered",
    [
        Remembered(),
        Remembered(service_time=math.nan),
        Remembered(service_time=0.0),
        Remembered(service_time=-1.0, corrections={"ttft": 2.0}),
    ],
)
def test_nothing_usable_remembered_is_a_cold_start(remembered: Remembered) -> None:
    assert resume(remembered, policy(), now=100.0) == AutoscalerState()


@pytest.mark.parametrize(
    ("remembered_correction", "resumed"),
    [(1.7, 1.7), (None, 1.0), (math.inf, 1.0), (9.0, 4.0), (0.1, 0.5)],
)
def test_corrections_come_back_within_their_bounds(
    remembered_correction: float | None, resumed: float
) -> None:
    corrections = {} if remembered_correction is None else {"ttft": remembered_correction}
    state = resume(Remembered(2.0, 0.6, 5.0, corrections), policy(TTFT, E2E, ITL), now=100.0)
    assert state.model.objective("ttft").correction == resumed
    assert set(state.model.objectives) == {"ttft", "e2e"}  # inter-token lines are relearned
    assert state.model.mean_service == 2.0 and state.model.service_scv == 0.6


def test_a_resumed_model_sizes_at_once_and_never_scales_down_before_a_window() -> None:
    remembered = Remembered(2.0, 1.0, 5.0, {"ttft": 1.0}, {"ttft": prefill()})
    state = resume(remembered, policy(), now=0.0)
    decision, state = tick(state, load(rate=5.0).replicas(30).build(at=15), policy(), 30)
    assert decision.active.reason == "ValidMetrics"
    assert decision.replicas == 30  # 15 would do, but the window starts with this process
    assert "scale-down needs 300s" in decision.reason
