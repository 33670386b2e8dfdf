"""Quantities parse exactly, round-trip through their canonical text, and order like numbers."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.api.duration import format_duration, parse_duration
from corral.api.quantity import MAX_QUANTITY, QuantityError, format_quantity, parse_quantity

SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", 8),
        ("500m", Fraction(1, 2)),
        ("80Gi", 80 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1k", 1000),
        ("1e3", 1000),
        ("2E-3", Fraction(2, 1000)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("+3", 3),
        ("-2Mi", -2 * 2**20),
        (7, 7),
        (0.25, Fraction(1, 4)),
    ],
)
def test_known_values(text: str | int | float, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "1 Gi", "one", "1.2.3", "1e", "--1", "1Ki2"])
def test_not_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_bool_is_not_a_quantity() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)


@pytest.mark.parametrize(
    "value",
    [
        "1e5000",  # a 4-digit exponent: refused before any arithmetic
        "1e999999999",  # would compute 10^999999999 holding the GIL for minutes
        "9223372036854775808",  # 2^63: beyond what Kubernetes represents
        "10E",
        "1" * 65,  # longer than any quantity
        2**63,
        float("inf"),
        float("nan"),
        1e300,
        [1],
        {"a": 1},
        None,
    ],
    ids=repr,
)
def test_hostile_quantities_are_refused_cheaply(value: object) -> None:
    started = time.perf_counter()
    with pytest.raises(QuantityError):
        parse_quantity(value)
    assert time.perf_counter() - started < 0.05


def test_the_largest_quantity_parses() -> None:
    assert parse_quantity(str(MAX_QUANTITY)) == MAX_QUANTITY
    assert parse_quantity("7Ei") == 7 * 2**60
    assert parse_quantity("9e18") == 9 * 10**18


def exact(text: str) -> Fraction:
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, factor = text[: -len(suffix)], suffix
            break
    else:
        number, factor = text, ""
    scale = {
        "n": Fraction(1, 10**9),
        "u": Fraction(1, 10**6),
        "m": Fraction(1, 1000),
        "": 1,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "P": 10**15,
        "E": 10**18,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
    }[factor]
    return Fraction(number) * scale


quantity_texts = st.builds(
    lambda whole, frac, suffix: f"{whole}{'.' + frac if frac else ''}{suffix}",
    st.integers(min_value=0, max_value=10**6),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
    st.sampled_from(SUFFIXES),
).filter(lambda text: exact(text) <= MAX_QUANTITY)


@given(quantity_texts)
def test_canonical_text_round_trips(text: str) -> None:
    value = parse_quantity(text)
    if value * 10**9 % 1 == 0:  # representable in nano-units, as Kubernetes requires
        assert parse_quantity(format_quantity(value)) == value


@given(st.integers(min_value=0, max_value=MAX_QUANTITY))
def test_whole_numbers_round_trip(number: int) -> None:
    assert parse_quantity(format_quantity(number)) == number


@given(quantity_texts, quantity_texts)
def test_order_is_numeric(a: str, b: str) -> None:
    # The order of parsed values agrees with the order of exact decimal arithmetic.
    assert (parse_quantity(a) < parse_quantity(b)) == (exact(a) < exact(b))
    assert (parse_quantity(a) == parse_quantity(b)) == (exact(a) == exact(b))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("2d", 172800), ("45", 45)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "1h-3m", "m", "-5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
