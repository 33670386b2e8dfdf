"""Device-hours and their price, from the intervals during which devices were held."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Usage:
    """Devices held from `start` until `end` (None: still held)."""

    devices: int
    start: datetime
    end: datetime | None = None


def device_hours(usages: Iterable[Usage], now: datetime) -> float:
    """Sum of devices x hours; an interval still open is counted up to `now`."""
    total = 0.0
    for usage in usages:
        end = usage.end or now
        if end > usage.start:
            total += usage.devices * (end - usage.start).total_seconds() / 3600.0
    return total
