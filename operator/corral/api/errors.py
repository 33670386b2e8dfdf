"""Validation errors in the words a user acts on: `spec.checkpoint.timeoutSeconds: must be >= 1`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_SEGMENT = r"[A-Za-z][A-Za-z0-9_]*(?:\[[^\]\s]+\])*"
_FIELD_PREFIX = re.compile(rf"^({_SEGMENT}(?:\.{_SEGMENT})*): (.*)$", re.S)
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def format_loc(loc: Sequence[int | str], prefix: str = "") -> str:
    """`('spec', 'containers', 0, 'name')` -> `spec.containers[0].name`; a map key that is not
    a plain name is written the way the API server writes it: `requests[nvidia.com/gpu]`."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic's marker of a bad map key; the message names the key
        elif _IDENTIFIER.match(part) or not out:
            out += f".{part}" if out else str(part)
        else:
            out += f"[{part}]"
    return out


def _phrase(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    simple = {
        "missing": "required",
        "extra_forbidden": "unknown field (check its spelling against `kubectl explain`)",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "finite_number": "must be a finite number (not NaN or infinite)",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
        "datetime_type": "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
        "datetime_parsing": "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
        "datetime_from_date_parsing": "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
        "timezone_aware": "must carry a time zone, e.g. 2026-12-01T00:00:00Z",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        symbol, key = bounds[kind]
        return f"must be {symbol} {ctx.get(key)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _camel_loc(loc: Sequence[int | str]) -> list[int | str]:
    # Drop pydantic's internal validator labels, which are not field names.
    return [part for part in loc if isinstance(part, int) or not str(part).startswith("function-")]


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per error, each `field.path: what is wrong`."""
    lines = []
    for error in exc.errors():
        path = format_loc(_camel_loc(error["loc"]), prefix)
        message = _phrase(error)
        # Model-level checks name the field they are about as `field: ...`.
        match = _FIELD_PREFIX.match(message)
        if match and error["type"] == "value_error":
            sub, message = match.groups()
            path = f"{path}.{sub}" if path else sub
        lines.append(f"{path}: {message}" if path else message)
    return lines


def shorten(value: Any, limit: int = 60) -> str:
    """A value quoted in a message: its repr (a string as it is), at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def yaml_problem(exc: Exception) -> str:
    """A YAML parse error in one line: `line 3: mapping values are not allowed here`."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"{where}{problem}"


class InvalidObject(ValueError):
    """A user object that failed validation; `str()` is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))
