"""Whole numbers read from a request: ASCII digits only, and not too many of them."""

from __future__ import annotations

import pytest

from motia_sse.http.numbers import parse_count


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("42", 42), ("007", 7), ("9" * 19, int("9" * 19)),
])
def test_ascii_digits_are_a_count(text: str, expected: int) -> None:
    """Plain decimal digits, leading zeros and all, are the number they spell."""
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", [
    "", "\u00b2", "\u0663", "\uff11", "1\u00b2", "-1", "+1", " 1", "1 ", "1_000", "1.0",
    "0x10", "9" * 20, "9" * 5000,
], ids=["empty", "superscript", "arabic-indic", "fullwidth", "digit-superscript", "minus",
        "plus", "space-before", "space-after", "underscore", "decimal", "hex", "20-digits",
        "5000-digits"])
def test_anything_else_is_none(text: str) -> None:
    """What int() would take or choke on, but a request's count never is: None, no raise."""
    assert parse_count(text) is None


def test_max_digits_bounds_the_length() -> None:
    """The caller says how many digits it accepts."""
    assert parse_count("12345", max_digits=5) == 12345
    assert parse_count("123456", max_digits=5) is None
