"""JSON merge patches (RFC 7386) computed from what was observed to what is wanted."""

from __future__ import annotations

from typing import Any


def normalized(value: Any) -> Any:
    """JSON as the API server returns it: whole floats become ints (80.0 and 80 are one value)."""
    if isinstance(value, dict):
        return {key: normalized(child) for key, child in value.items()}
    if isinstance(value, list):
        return [normalized(child) for child in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def merge_patch(old: Any, new: Any) -> Any:
    """The smallest merge patch that turns `old` into `new` (None-valued keys delete)."""
    return _diff(normalized(old), normalized(new))


def _diff(old: Any, new: Any) -> Any:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = _diff(old[key], value)
    return patch
