"""Kubernetes resource quantities (`80Gi`, `500m`, `1.5e3`) parsed exactly.

Values are held as `fractions.Fraction` so that `0.1 + 0.2` style float drift never makes a node
look one byte short of a request. The grammar follows k8s.io/apimachinery/pkg/api/resource:
a signed decimal number, then a binary suffix (Ki..Ei), a decimal suffix (n, u, m, "", k, M, G, T,
P, E) or a decimal exponent (e3, E-2).

Parsing cost is bounded whatever the input: the text is at most `MAX_QUANTITY_LENGTH` characters
and the exponent at most two digits, both checked before any arithmetic, so `1e999999999` is
refused in microseconds instead of computing 10^999999999. Values beyond Kubernetes' own ceiling
(2^63 - 1, which the API server caps quantities to) are refused rather than carried as giant
integers that no message or metric could print.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exponent>[eE][+-]?[0-9]{1,2})|(?P<decimal>[numkMGTPE]?))$"
)
MAX_QUANTITY_LENGTH = 64
"""Longest quantity text accepted (the CRDs say the same with maxLength)."""
MAX_QUANTITY = 2**63 - 1
"""The largest magnitude Kubernetes represents (apimachinery caps quantities there)."""
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
"""The same grammar for the API server (an OpenAPI `pattern`), exponent bounded alike."""


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(text: object) -> Fraction:
    """Return the exact value of a Kubernetes quantity; QuantityError for anything else.

    >>> parse_quantity("80Gi") == 80 * 2**30
    True
    >>> parse_quantity("500m")
    Fraction(1, 2)
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise QuantityError(f"a {type(text).__name__} is not a quantity (expected e.g. 8, 500m)")
    if isinstance(text, int):
        return _bounded(Fraction(text), "the number")
    if isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(f"{text!r} is not a quantity (it must be a finite number)")
        return _bounded(Fraction(str(text)), "the number")
    if len(text) > MAX_QUANTITY_LENGTH:
        raise QuantityError(
            f"{_clip(text)} is not a quantity (longer than {MAX_QUANTITY_LENGTH} characters)"
        )
    return _parse_text(text)


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Fraction:
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise QuantityError(
            f"{_clip(text)} is not a quantity (expected e.g. 8, 500m, 80Gi, 1.5e3; "
            "an exponent has at most two digits)"
        )
    number = Fraction(match["number"])
    if match["binary"]:
        value = number * _BINARY[match["binary"]]
    elif match["exponent"]:
        value = number * Fraction(10) ** int(match["exponent"][1:])
    else:
        value = number * _DECIMAL[match["decimal"] or ""]
    return _bounded(value, repr(text))


def _bounded(value: Fraction, what: str) -> Fraction:
    if abs(value) > MAX_QUANTITY:
        raise QuantityError(
            f"{what} is too large for a quantity (at most 2^63-1 = {MAX_QUANTITY} in magnitude)"
        )
    return value


def _clip(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:20] + "...")


def format_quantity(number: Fraction | int) -> str:
    """Canonical text for a value: the largest exact binary suffix for whole values of at least
    1Ki, else the largest exact decimal suffix. `parse_quantity(format_quantity(v)) == v` for
    any value with a finite representation in nano-units."""
    value = Fraction(number)
    if value.denominator == 1 and value != 0:
        for suffix, power in reversed(_BINARY.items()):
            if value % power == 0:
                return f"{value // power}{suffix}"
    for suffix, factor in sorted(_DECIMAL.items(), key=lambda kv: kv[1], reverse=True):
        scaled = value / factor
        if scaled.denominator == 1 and (scaled != 0 or suffix == ""):
            return f"{scaled.numerator}{suffix}"
    raise QuantityError(f"{value} cannot be written exactly as a quantity (finer than 1n)")


def _validate(value: Any) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("must be a quantity such as 8, 500m or 80Gi")
    try:
        return parse_quantity(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None


QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": QUANTITY_PATTERN,
    "maxLength": MAX_QUANTITY_LENGTH,
}
"""The OpenAPI schema of a quantity (int-or-string, bounded like `parse_quantity`)."""


Quantity = Annotated[
    Fraction,
    BeforeValidator(_validate),
    PlainSerializer(format_quantity, return_type=str),
    WithJsonSchema(QUANTITY_SCHEMA),
]
"""A pydantic field type for a Kubernetes quantity; serialised in canonical form."""
