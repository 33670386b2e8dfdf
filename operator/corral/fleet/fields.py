"""Reading fields of the plain dicts the API returns (Nodes, Pods), defensively.

The API server only ever sends well-typed objects, but `corral plan` reads files people wrote and
a cache may hold whatever a test or a future API version puts there. A field of the wrong type is
an `InvalidFleetObject` naming the field — never a TypeError from deep inside the solver, and
never silently read as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.api.meta import check_label_key, check_label_value


class InvalidFleetObject(ValueError):
    """A Node or Pod dict with a field Corral cannot read: `field: problem`."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


Parts = tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], str]


def object_parts(obj: Any, kind: str) -> Parts:
    """metadata, spec and status of an API object (each {} when absent), and its name."""
    if not isinstance(obj, Mapping):
        raise InvalidFleetObject(kind, "must be an object")
    metadata = mapping(obj.get("metadata"), "metadata")
    name = string(metadata.get("name"), "metadata.name", required=True)
    assert name is not None
    return metadata, mapping(obj.get("spec"), "spec"), mapping(obj.get("status"), "status"), name


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    """An object, or {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidFleetObject(field, f"must be an object, not {_kind(value)}")
    return value


def sequence(value: Any, field: str) -> list[Any]:
    """A list, or [] when absent."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidFleetObject(field, f"must be a list, not {_kind(value)}")
    return value


def string(value: Any, field: str, required: bool = False) -> str | None:
    """A string, or None when absent (an error when required)."""
    if value is None or (required and value == ""):
        if required:
            raise InvalidFleetObject(field, "required (a non-empty string)")
        return None
    if not isinstance(value, str):
        raise InvalidFleetObject(field, f"must be a string, not {_kind(value)}")
    return value


def string_map(value: Any, field: str) -> dict[str, str]:
    """Labels or annotations: string keys to string values."""
    out: dict[str, str] = {}
    for key, item in mapping(value, field).items():
        if not isinstance(key, str):
            raise InvalidFleetObject(field, f"key {key!r} must be a string")
        if not isinstance(item, str):
            raise InvalidFleetObject(
                f"{field}[{key}]", f"must be a string, not {_kind(item)} (quote it in YAML)"
            )
        out[key] = item
    return out


def labels(value: Any, field: str) -> dict[str, str]:
    """Labels: valid label keys to valid label values (as the API server requires)."""
    out = string_map(value, field)
    for key, item in out.items():
        try:
            check_label_key(key)
            check_label_value(item)
        except ValueError as exc:
            raise InvalidFleetObject(f"{field}[{key}]", str(exc)) from None
    return out


def boolean(value: Any, field: str) -> bool:
    """A boolean, False when absent."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidFleetObject(field, f"must be true or false, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__
