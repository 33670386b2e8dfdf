"""`StatusModel.__deepcopy__`: every reconcile step deep-copies the status it decides on; the fast
copy must be a true deep copy (equal, and nothing mutable shared with the original)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from corral.api.meta import Condition
from corral.api.trainingjob import PlacementStatus, TrainingJobStatus

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _statuses() -> list[TrainingJobStatus]:
    condition = Condition(
        type="Placed", status="True", reason="Placed", message="m", last_transition_time=T0
    )
    placement = PlacementStatus(pool="h100", nodes=["a", "b"], time=T0, replacements=[1])
    return [
        TrainingJobStatus(),
        TrainingJobStatus(phase="Running", attempt=2, queued_since=T0, conditions=[condition]),
        TrainingJobStatus(placement=placement, conditions=[condition, condition], cost=1.5),
        TrainingJobStatus.model_validate({"phase": "Queued", "unknownField": {"kept": [1]}}),
    ]


def _mutables(value: Any) -> list[Any]:
    """Every list, dict and model reachable from a value."""
    found: list[Any] = []
    if isinstance(value, (list, dict)):
        found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            found += _mutables(item)
    elif hasattr(value, "__pydantic_fields_set__"):
        found.append(value)
        found += _mutables(dict(value.__dict__))
    return found


@pytest.mark.parametrize("status", _statuses())
def test_a_deep_copy_is_equal_and_shares_nothing_mutable(status: TrainingJobStatus) -> None:
    copied = status.model_copy(deep=True)
    assert copied == status
    assert copied.model_dump() == status.model_dump()
    assert copied.model_fields_set == status.model_fields_set
    originals = {id(v) for v in _mutables(status)}
    assert not [v for v in _mutables(copied) if id(v) in originals]


def test_changing_the_copy_leaves_the_original() -> None:
    status = _statuses()[2]
    copied = status.model_copy(deep=True)
    assert copied.placement is not None and status.placement is not None
    copied.placement.nodes.append("c")
    copied.conditions[0].message = "changed"
    assert status.placement.nodes == ["a", "b"]
    assert status.conditions[0].message == "m"
