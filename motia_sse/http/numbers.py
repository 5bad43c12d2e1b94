"""Whole numbers read from a request: ASCII digits only, and not too many of them.

`str.isdigit()` takes "²" and "٣", which `int()` refuses, and `int()` refuses more than
4,300 digits: checked that way, a bad count is a 500 or a cut connection, not a 400."""

from __future__ import annotations


def parse_count(text: str, max_digits: int = 19) -> int | None:
    """`text` as a whole number, or None unless it is 1 to `max_digits` ASCII digits."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
