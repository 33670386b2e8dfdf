"""The deadline-aware capacity policy: table of situations, and the deadline as an invariant."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.disruption.builders import T0, at

from corral.disruption.policy import Capacity, Job, State, StepRate, ahead_of_line, decide

JOB = Job(total_work=10.0, deadline=20.0, restart_overhead=0.25)


@dataclass(frozen=True)
class Case:
    name: str
    state: State
    capacity: Capacity
    committed: bool = False
    reason: str = ""


CASES = [
    Case(
        "spot available at the start", State(0, 0, "none", True), "spot", reason="spot is available"
    ),
    Case("no spot at the start: wait", State(0, 0, "none", False), "none", reason="waiting"),
    Case(
        "no spot, behind by less than half the slack: wait",
        State(4.0, 0.0, "none", False),
        "none",
    ),
    Case(
        "no spot, behind by more than half the slack: on-demand",
        State(6.0, 0.4, "none", False),
        "on-demand",
        reason="behind the line",
    ),
    Case(
        "spot preempted, ahead of the line: wait",
        State(4.0, 3.0, "none", False),
        "none",
    ),
    Case(
        "on on-demand, spot back but not far enough ahead: stay",
        State(8.0, 4.2, "on-demand", True),
        "on-demand",
        reason="needed to switch back",
    ),
    Case(
        "on on-demand, spot back and 2 x overhead ahead: spot",
        State(8.0, 4.5, "on-demand", True),
        "spot",
        reason="hysteresis",
    ),
    Case(
        "on on-demand, no spot: stay",
        State(8.0, 6.0, "on-demand", False),
        "on-demand",
        reason="no spot",
    ),
    Case(
        "safety net: time left < work left + 2 x overhead",
        State(15.0, 5.2, "spot", True),
        "on-demand",
        committed=True,
        reason="safety net",
    ),
    Case(
        "safety net counts the work a reclaim would lose",
        State(14.0, 5.0, "spot", True, at_risk=0.6),
        "on-demand",
        committed=True,
        reason="safety net",
    ),
    Case(
        "committed earlier: on-demand whatever spot does",
        State(10.0, 9.0, "on-demand", True, committed=True),
        "on-demand",
        committed=True,
        reason="committed earlier",
    ),
    Case("job done: stay put on spot", State(12.0, 10.0, "spot", True), "spot"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decisions(case: Case) -> None:
    decision = decide(JOB, case.state)
    assert (decision.capacity, decision.committed) == (case.capacity, case.committed), decision
    assert case.reason in decision.reason
    assert decision.reason  # every decision says why


def test_ahead_of_line_in_hours() -> None:
    assert ahead_of_line(JOB, State(4.0, 3.0, "spot", True)) == pytest.approx(2.0)
    assert ahead_of_line(JOB, State(10.0, 4.0, "spot", True)) == pytest.approx(-2.0)


def test_explicit_tolerance_zero_is_pure_uniform_progress() -> None:
    strict = Job(total_work=10.0, deadline=20.0, restart_overhead=0.25, tolerance=0.0)
    assert decide(strict, State(4.0, 1.9, "none", False)).capacity == "on-demand"


def test_step_rate_learns_online() -> None:
    rate = StepRate()
    assert rate.work_hours(100) is None
    rate = rate.observe(T0, 0).observe(at(3600), 1000)
    assert rate.per_hour == pytest.approx(1000)
    rate = rate.observe(at(7200), 3000)
    assert rate.per_hour == pytest.approx(0.7 * 1000 + 0.3 * 2000)
    restarted = rate.observe(at(7300), 2500)  # resumed from an older checkpoint
    assert restarted.per_hour == rate.per_hour and restarted.last_step == 2500
    assert StepRate(per_hour=500).work_hours(1000) == pytest.approx(2.0)


def run(job: Job, available: list[bool], tick: float) -> float | None:
    """Follow the policy tick by tick (a reclaim at a tick's end loses nothing: checkpoint on
    notice); the hour the work is done, or None."""
    work, warm, running, committed = 0.0, 0.0, "none", False
    for index, spot in enumerate([*available, *[False] * 10_000]):
        now = index * tick
        if work >= job.total_work - 1e-9:
            return now
        decision = decide(job, State(now, work, running, spot, committed))  # type: ignore[arg-type]
        committed = decision.committed
        choice = decision.capacity if decision.capacity != "spot" or spot else "none"
        if choice != running:
            warm = job.restart_overhead if choice != "none" else 0.0
            running = choice
        if running != "none":
            step = tick - min(warm, tick)
            warm = max(0.0, warm - tick)
            work += step
            spot_next = index + 1 < len(available) and available[index + 1]
            if running == "spot" and not spot_next:
                running = "none"
    return None


@given(
    available=st.lists(st.booleans(), min_size=1, max_size=300),
    work_ticks=st.integers(10, 200),
    slack=st.floats(0.0, 1.5),
    overhead=st.sampled_from([0.1, 0.2, 0.5]),
)
def test_the_deadline_is_met_whenever_it_can_be(
    available: list[bool], work_ticks: int, slack: float, overhead: float
) -> None:
    """Whatever spot does, a job whose deadline leaves room for the first start and the reserve
    finishes by it (decisions every tick <= the overhead)."""
    work = work_ticks * 0.1
    deadline = work + 3 * overhead + slack * work
    job = Job(total_work=work, deadline=deadline, restart_overhead=overhead)
    finished = run(job, available, tick=0.1)
    assert finished is not None and finished <= deadline + 1e-6


@given(
    available=st.lists(st.booleans(), min_size=1, max_size=200),
    pace=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
    work_ticks=st.integers(10, 100),
    slack=st.floats(0.0, 1.5),
    overhead=st.sampled_from([0.1, 0.2, 0.5]),
)
def test_a_running_gang_is_moved_by_the_policy_without_flapping(
    available: list[bool], pace: list[float], work_ticks: int, slack: float, overhead: float
) -> None:
    """Whatever spot does and however fast the gang goes (its pace per tick, 0 to 2x), the moves
    the policy makes of a *running* gang (not reclaims) never flap: it leaves spot only by the
    safety net, on-demand for good; it leaves on-demand for spot only ahead of the line by the
    hysteresis; so spot -> on-demand is never followed by a move back."""
    tick = 0.1
    job = Job(
        total_work=work_ticks * tick,
        deadline=(1 + slack) * work_ticks * tick + overhead,
        restart_overhead=overhead,
    )
    work, running, committed = 0.0, "none", False
    moves: list[tuple[str, str]] = []
    for index, spot in enumerate(available):
        now = index * tick
        state = State(now, work, running, spot or running == "spot", committed)  # type: ignore[arg-type]
        decision = decide(job, state)
        committed = decision.committed
        if running != "none" and decision.capacity not in (running, "none"):
            if running == "spot":
                assert decision.committed, decision.reason
            else:
                assert ahead_of_line(job, state) >= job.switch_back_margin
            moves.append((running, decision.capacity))
        running = decision.capacity if decision.capacity != "spot" or spot else "none"
        if running != "none":
            work += tick * pace[index % len(pace)]
        if running == "spot" and not (index + 1 < len(available) and available[index + 1]):
            running = "none"  # reclaimed: not a move of the policy's
    if ("spot", "on-demand") in moves:
        assert moves[moves.index(("spot", "on-demand")) + 1 :] == []
