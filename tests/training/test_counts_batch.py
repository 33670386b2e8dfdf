"""Which status writes wait for the worker-count batch period, and for how long."""

from __future__ import annotations

import pytest

from corral.api.trainingjob import TrainingJobStatus, WorkerCounts
from corral.training.step import COUNTS_BATCH_SECONDS, counts_batch_delay

BEFORE = TrainingJobStatus(phase="Placing", workers=WorkerCounts(total=4, bound=1))


def changed(**fields: object) -> TrainingJobStatus:
    return BEFORE.model_copy(update=fields)


@pytest.mark.parametrize(
    ("after", "since", "held"),
    [
        (changed(workers=WorkerCounts(total=4, bound=2)), 0.25, COUNTS_BATCH_SECONDS - 0.25),
        (changed(workers=WorkerCounts(total=4, bound=2)), COUNTS_BATCH_SECONDS, None),
        (changed(workers=WorkerCounts(total=4, bound=2)), None, None),  # never written here
        (changed(workers=WorkerCounts(total=4, bound=4), phase="Running"), 0.25, None),
        (changed(workers=WorkerCounts(total=4, bound=2), restarts=1), 0.25, None),
        (changed(cost=1.0), 0.25, None),
        (BEFORE, 0.25, None),  # nothing to write: nothing to hold
    ],
    ids=["counts", "period-over", "first-write", "phase", "counts-and-more", "usage", "same"],
)
def test_only_counts_alone_are_held_within_the_period(
    after: TrainingJobStatus, since: float | None, held: float | None
) -> None:
    assert counts_batch_delay(BEFORE, after, since) == held
