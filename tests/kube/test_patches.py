"""Merge patches carry exactly the change, so unchanged status costs no write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.kube.patches import merge_patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, to check the patches against."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1}, {"a": 1.0}, {}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"p": {"pool": "x", "domain": "r1"}}, {"p": {"pool": "x"}}, {"p": {"domain": None}}),
        ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
        ({}, {"p": {"n": ["a"]}}, {"p": {"n": ["a"]}}),
    ],
)
def test_known_patches(old: Any, new: Any, patch: Any) -> None:
    assert merge_patch(old, new) == patch


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    ),
    max_leaves=10,
)
objects = st.dictionaries(
    st.sampled_from("abcd"), json_values.filter(lambda v: v is not None), max_size=4
)


def _no_nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v is not None and _no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    return True


@given(objects, objects)
def test_patch_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    if not (_no_nulls(old) and _no_nulls(new)):
        return  # null values in an object cannot be expressed by a merge patch (RFC 7386)
    assert apply_merge_patch(old, merge_patch(old, new)) == new
