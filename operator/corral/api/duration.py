"""Go-style durations (`90s`, `5m`, `1h30m`) as used by kubectl flags and many CRDs."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `1h30m`, `90s`, `250ms` or a bare number of seconds."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration (expected e.g. 90s, 5m, 1h30m)")
    try:
        seconds = float(stripped)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise ValueError(f"{text!r}: a duration cannot be negative")
        return seconds
    position, total = 0, 0.0
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        position = match.end()
    if position != len(stripped) or position == 0:
        raise ValueError(f"{text!r} is not a duration (expected e.g. 90s, 5m, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest `1h2m3s` form (whole seconds; sub-second values as ms)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"
