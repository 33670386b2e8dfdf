"""Answers kept on the immutable object they were computed from.

A scheduling pass asks the same questions of every waiting job on every pass (its demand, its
candidate pools, its admission); the objects asked about are frozen, so an answer can live on
the object itself, outside its dataclass fields (equality and hashing do not see it), for as
long as what else it read (`key`: a snapshot epoch, a tenancy) stays the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")


def kept(obj: object, name: str, key: object, compute: Callable[[], T]) -> T:
    """`compute()`, kept on `obj` under `name` while `key` is (or equals) the one it was
    computed with."""
    slot = obj.__dict__.get(name)
    if slot is not None and (slot[0] is key or slot[0] == key):
        return cast(T, slot[1])
    value = compute()
    object.__setattr__(obj, name, (key, value))
    return value
