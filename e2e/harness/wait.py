"""`wait_for`: poll a condition until a deadline; on timeout say what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so pytest shows it as a failure)."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    An exception from `predicate` counts as "not yet" (the API may be briefly unavailable). At
    the deadline, raise `WaitTimeout` naming `message`, the timeout and the last value or
    exception observed, so a failing test says what state it was stuck in.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the last error is reported at the deadline
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            observed = (
                f"{type(last).__name__}: {last}" if isinstance(last, Exception) else repr(last)
            )
            raise WaitTimeout(f"{message}: not true after {timeout:g} s; last observed: {observed}")
        time.sleep(interval)
