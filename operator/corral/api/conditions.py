"""Setting a condition the Kubernetes way: lastTransitionTime moves only when status changes."""

from __future__ import annotations

from datetime import datetime

from corral.api.meta import Condition, ConditionStatus


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """A new list with the condition of `type_` replaced (or added), order kept."""
    previous = get_condition(conditions, type_)
    unchanged = previous is not None and previous.status == status
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time if unchanged and previous else now,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if c.type == type_ else c for c in conditions]


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((condition for condition in conditions if condition.type == type_), None)
