"""Carbon-aware deferral: wait for a cleaner window, never past the latest start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.api.gpupool import Carbon
from corral.api.trainingjob import TrainingJobSpec
from corral.cost.deferral import decide, for_job, latest_start

DAY = datetime(2026, 12, 1, tzinfo=UTC)
NIGHT_CLEAN = Carbon(hourly=[100.0] * 6 + [400.0] * 12 + [100.0] * 6)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def spec(**fields: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(
        {
            "workers": 1,
            "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("now", "latest", "run", "until"),
    [
        (9, 30, 2, 18),  # by day with a whole night ahead: wait for 18:00
        (9, 17, 2, 17),  # must start by 17:00: 17:00-19:00 averages 250, 37.5 % cleaner
        (9, 17.5, 2, 17),
        (9, 16, 2, None),  # must start by 16:00: 16:00-18:00 is all dirty, go now
        (20, 30, 2, None),  # already in the clean night
        (16.5, 30, 2, 18),  # 16:30 + 2 h = 16:30-18:30 mostly dirty; 18:00 is clean
        (9, 9, 2, None),  # latest start has come
        (9, 8, 2, None),  # and passed
    ],
)
def test_a_flexible_job_waits_for_the_clean_window_in_reach(
    now: float, latest: float, run: float, until: float | None
) -> None:
    got = decide(at(now), at(latest), timedelta(hours=run), {"p": NIGHT_CLEAN}, 10.0)
    if until is None:
        assert got is None
    else:
        assert got is not None and got.until == at(until)
        assert f"pool p from 2026-12-01T{until:02.0f}:00Z averages" in got.reason


def test_a_window_not_clean_enough_is_not_worth_waiting_for() -> None:
    slightly = Carbon(hourly=[380.0] * 6 + [400.0] * 12 + [380.0] * 6)
    assert decide(at(9), at(30), timedelta(hours=2), {"p": slightly}, 10.0) is None
    assert decide(at(9), at(30), timedelta(hours=2), {"p": slightly}, 4.0) is not None


def test_static_carbon_never_defers() -> None:
    static = {"p": Carbon(grams_per_kwh=400.0), "q": None}
    assert decide(at(9), at(30), timedelta(hours=2), static, 0.0) is None


def test_the_cleanest_pool_the_job_may_use_counts() -> None:
    always_clean = Carbon(hourly=[50.0] * 24)
    got = decide(at(9), at(30), timedelta(hours=2), {"p": NIGHT_CLEAN, "q": always_clean}, 10.0)
    assert got is None  # q is clean now


def test_latest_start_is_the_earlier_of_start_by_and_deadline_minus_run() -> None:
    job = spec(
        deadline="2026-12-02T12:00:00Z",
        carbonDeferral={"expectedDurationSeconds": 7200, "startBy": "2026-12-02T11:00:00Z"},
    )
    assert latest_start(job) == at(24 + 10)
    assert latest_start(spec()) is None
    assert for_job(spec(), at(9), {"p": NIGHT_CLEAN}) is None


def test_for_job_reads_the_spec() -> None:
    job = spec(deadline="2026-12-02T12:00:00Z", carbonDeferral={"expectedDurationSeconds": 7200})
    got = for_job(job, at(9), {"p": NIGHT_CLEAN})
    assert got is not None and got.until == at(18)


@given(now=st.floats(0, 48), slack=st.floats(0, 48), run=st.floats(0.25, 30))
def test_a_deferral_never_passes_the_latest_start(now: float, slack: float, run: float) -> None:
    latest = at(now + slack)
    got = decide(at(now), latest, timedelta(hours=run), {"p": NIGHT_CLEAN}, 10.0)
    if got is not None:
        assert at(now) < got.until <= latest
        again = decide(got.until, latest, timedelta(hours=run), {"p": NIGHT_CLEAN}, 10.0)
        assert again is None  # once the window opens the job goes
