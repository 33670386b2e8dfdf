"""A pass over a long queue skips the jobs already told exactly why they wait: skipping must never
change what would have been written."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.training.builders import at, job

from corral.training.lifecycle import refusal_unchanged, refuse

REASON = "waiting behind ns/big (priority 0), which is queued for pool(s) p"


@pytest.mark.parametrize("phase", ["Pending", "Queued", "Recovering"])
def test_a_job_told_the_same_reason_again_would_get_its_own_status(phase: str) -> None:
    view = job("j").phase(phase).obj()
    assert not refusal_unchanged(view, REASON)  # never told anything yet
    first, event = refuse(view, REASON, False, at(10))
    assert event is not None
    told = replace(view, status=first)
    assert refusal_unchanged(told, REASON)
    again, event = refuse(told, REASON, False, at(20))
    assert again == first and event is None


def test_a_new_reason_or_generation_is_written() -> None:
    view = job("j").phase("Queued").obj()
    told = replace(view, status=refuse(view, REASON, False, at(10))[0])
    assert not refusal_unchanged(told, "pool p has 3 free devices in 1 host")
    assert not refusal_unchanged(replace(told, generation=told.generation + 1), REASON)
