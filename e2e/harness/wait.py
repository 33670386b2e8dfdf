"""`wait_for`: poll a condition until a deadline; on timeout say what was last seen."""

from __future__ import annotations

import subprocess
import time
import urllib.error
from collections.abc import Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    ApiException,  # the API said no (404: not there yet; 5xx, 429: busy)
    OSError,  # connection refused or reset, timeouts (urllib.error.URLError is an OSError)
    urllib.error.URLError,
    subprocess.CalledProcessError,  # kubectl exited non-zero talking to the API
)
"""What a predicate may raise while the cluster is getting there. Anything else (a KeyError, an
AssertionError, a TypeError) is a bug in the test and fails at once instead of as a timeout."""


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so pytest shows it as a failure)."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    An error from the cluster (`TRANSIENT`) counts as "not yet" (the API may be briefly
    unavailable, an object not created yet); any other exception is raised at once. At the
    deadline, raise `WaitTimeout` naming `message`, the timeout and the last value or exception
    observed, so a failing test says what state it was stuck in.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except TRANSIENT as exc:  # the last error is reported at the deadline
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
