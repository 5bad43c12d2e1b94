"""The splice that turns one text into another, counted in UTF-16 code units.

A delta frame tells a client: keep the first `prefix` and the last `suffix` code units
of the text you hold, and put `insert` between them. Browsers index strings in UTF-16
code units, so that is what the counts are; the texts here are the UTF-8 bytes that
went (or go) on the wire, compared without decoding them whole.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Splice:
    """`new = old[:prefix] + insert + old[len(old) - suffix:]`, indices in UTF-16 units."""

    prefix: int
    suffix: int
    insert: str


def splice(old: bytes, new: bytes) -> Splice:
    """The splice from `old` to `new` (both UTF-8): the longest common prefix, then the
    longest common suffix of what is left, never cutting a character in two (so never a
    surrogate pair either)."""
    limit = min(len(old), len(new))
    head = _char_start(old, _common_prefix(old, new, limit))
    tail = _common_suffix(old, new, limit - head)
    # The suffix must start on a character, in `old` (and so in `new`: same bytes).
    while tail and _continues(old[len(old) - tail]):
        tail -= 1
    insert = new[head:len(new) - tail]
    return Splice(_utf16_length(old[:head]), _utf16_length(old[len(old) - tail:]),
                  insert.decode())


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    """How many leading bytes `a` and `b` share (at most `limit`).

    Halves the window still in doubt, comparing slices in C: the bytes compared add up
    to about `limit`, whatever the answer, in ~log2(limit) steps of Python."""
    low, high = 0, limit  # a[:low] == b[:low]; the answer is in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """How many trailing bytes `a` and `b` share (at most `limit`)."""
    low, high = 0, limit
    end_a, end_b = len(a), len(b)
    while low < high:
        middle = (low + high + 1) // 2
        if a[end_a - middle:end_a - low] == b[end_b - middle:end_b - low]:
            low = middle
        else:
            high = middle - 1
    return low


def _continues(byte: int) -> bool:
    """Whether a UTF-8 byte continues a character rather than starting one."""
    return byte & 0xC0 == 0x80


def _char_start(text: bytes, index: int) -> int:
    """`index`, moved back to the start of the character it falls in."""
    while 0 < index < len(text) and _continues(text[index]):
        index -= 1
    return index


def _utf16_length(text: bytes) -> int:
    """UTF-16 code units in UTF-8 `text`: one per character, two beyond U+FFFF."""
    if text.isascii():
        return len(text)
    return len(text.decode().encode("utf-16-le")) // 2
