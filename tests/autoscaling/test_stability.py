"""The stabiliser: up at once within the rate, down only after a covered window, never flapping."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tests.autoscaling.builders import policy

from corral.autoscaling.policy import Behavior
from corral.autoscaling.stability import Stabilizer, stabilize


@dataclass(frozen=True)
class Step:
    at: float
    recommended: int
    complete: bool = True


def replay(current: int, steps: list[Step], **behavior: float) -> list[int]:
    rules = (
        policy(behavior=Behavior(**behavior), max_replicas=50)
        if behavior
        else policy(max_replicas=50)
    )
    state = Stabilizer()
    out = []
    for step in steps:
        result = stabilize(state, step.recommended, current, rules, step.at, step.complete)
        state, current = result.stabilizer, result.replicas
        out.append(current)
    return out


@pytest.mark.parametrize(
    ("name", "current", "steps", "expected"),
    [
        ("up at once", 4, [Step(0, 7)], [7]),
        ("up bounded by x2", 4, [Step(0, 20), Step(15, 20)], [8, 16]),
        ("up by at least one", 1, [Step(0, 2)], [2]),
        ("bounded by max", 40, [Step(0, 90)], [50]),
        (
            "down waits for the window",
            10,
            [Step(t, 5) for t in range(0, 301, 60)],
            [10, 10, 10, 10, 10, 5],
        ),
        (
            "down to the highest of the window",
            10,
            [Step(0, 8), Step(100, 6), Step(200, 5), Step(300, 5), Step(400, 5)],
            [10, 10, 10, 8, 6],
        ),
        (
            "a gap in the data restarts the window",
            10,
            [Step(0, 5), Step(200, 5, complete=False), Step(260, 5), Step(500, 5), Step(560, 5)],
            [10, 10, 10, 10, 5],
        ),
        (
            "down by at most half",
            20,
            [Step(0, 1), Step(300, 1), Step(315, 1), Step(330, 1)],
            [20, 10, 5, 3],
        ),
        ("never below the floor", 3, [Step(0, 0), Step(300, 0), Step(315, 0)], [3, 2, 1]),
    ],
)
def test_stabilizer(name: str, current: int, steps: list[Step], expected: list[int]) -> None:
    assert replay(current, steps) == expected, name


def test_within_the_tolerance_band_nothing_moves() -> None:
    steps = [Step(t, 19) for t in range(0, 601, 60)]
    assert replay(20, steps)[-1] == 20
    assert replay(20, steps, tolerance=0.0)[-1] == 19


def test_the_window_is_at_least_the_start_up_time() -> None:
    rules = policy(startup=600.0, max_replicas=50)
    state, current = Stabilizer(), 10
    for t in range(0, 541, 60):
        result = stabilize(state, 5, current, rules, float(t), True)
        state, current = result.stabilizer, result.replicas
    assert current == 10  # 300 s passed, but a replica takes 600 s to start
    assert stabilize(state, 5, current, rules, 600.0, True).replicas == 5


def test_alternating_recommendations_never_flap() -> None:
    steps = [Step(t, 10 if (t // 15) % 2 else 9) for t in range(0, 3600, 15)]
    sizes = replay(10, steps, tolerance=0.0)
    assert set(sizes) == {10}
