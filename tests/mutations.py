"""Hostile variations of valid objects, for property tests: what a careless or malicious author
could write into a field (the wrong type, a huge or non-finite number, a quantity with a
9-digit exponent, a deep nest, a long name), one or a few fields at a time."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

HOSTILE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**300, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, float("nan"), float("inf")]),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "1e999999999",
            "1e5000",
            "9223372036854775808",
            "10E",
            "-1",
            "NaN",
            "a" * 300,
            "x" * 64,
            "true",
            "corral.dev/implicit-pool",
            "\n\t",
            "Ready",
        ]
    ),
)


def _deep(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


HOSTILE_VALUES = st.recursive(
    HOSTILE_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=8,
) | st.sampled_from([_deep(70), _deep(200), [{}] * 50, {"key": "x"}, {"a": 1}, [1, "a", None]])


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a field or item of a document (the document itself excluded)."""
    found: list[Path] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found += paths(child, (*prefix, index))
    return found


def _set(document: Any, path: Path, value: Any, delete: bool) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any], max_changes: int = 3) -> dict[str, Any]:
    """`document` with 1..max_changes fields replaced by hostile values, deleted, or added."""
    out = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=1, max_value=max_changes))):
        candidates = paths(out)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add":
            parent: Any = out
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=12))] = copy.deepcopy(draw(HOSTILE_VALUES))
            continue
        # A copy: sampled values are shared constants, and a later change may reach inside.
        _set(out, path, copy.deepcopy(draw(HOSTILE_VALUES)), delete=action == "delete")
    return out
