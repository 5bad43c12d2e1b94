"""The splice between two texts, in UTF-16 code units, as a browser applies it."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from motia_sse.streams.delta import Splice, splice


def apply_utf16(old: str, change: Splice) -> str:
    """Apply a splice as JavaScript string indices do: in UTF-16 code units."""
    units = old.encode("utf-16-le")
    head = units[:2 * change.prefix]
    tail = units[len(units) - 2 * change.suffix:]
    return head.decode("utf-16-le") + change.insert + tail.decode("utf-16-le")


def check(old: str, new: str) -> Splice:
    change = splice(old.encode(), new.encode())
    assert apply_utf16(old, change) == new
    return change


def test_growing_json_keeps_both_ends() -> None:
    """A message that grows inside its JSON keeps the head and the `"id"` tail."""
    old = orjson.dumps({"message": "Hello", "id": "m"}).decode()
    new = orjson.dumps({"message": "Hello, world", "id": "m"}).decode()
    assert check(old, new) == Splice(len('{"message":"Hello'), len('","id":"m"}'), ", world")


def test_same_text_inserts_nothing() -> None:
    """Equal texts: everything kept, nothing inserted."""
    assert check("abc", "abc") == Splice(3, 0, "")


def test_repeats_do_not_overlap() -> None:
    """Prefix and suffix never count the same unit twice."""
    assert check("aa", "aaa") == Splice(2, 0, "a")
    assert check("aaa", "aa") == Splice(2, 0, "")


def test_astral_characters_count_two_units() -> None:
    """An emoji is two UTF-16 units, in the prefix and in the suffix."""
    assert check("😀a😀", "😀ab😀") == Splice(3, 2, "b")


def test_never_cuts_a_character() -> None:
    """Characters sharing leading UTF-8 bytes (or a surrogate) are replaced whole."""
    # U+1F600 and U+1F601 share three of four bytes and their high surrogate.
    assert check("x😀", "x😁") == Splice(1, 0, "😁")
    # é (C3 A9) and ã (C3 A3) share a lead byte; 中 and 丰 share two.
    assert check("é", "ã") == Splice(0, 0, "ã")
    assert check("a中b", "a丰b") == Splice(1, 1, "丰")
    # The same trailing bytes: the tail moves to the next whole character.
    assert check("\u00e9z", "\u01e9z") == Splice(0, 1, "\u01e9")


def test_combining_marks_and_cjk_grow() -> None:
    """Text growing inside and around combining marks and CJK."""
    steps = ["", "e", "e\u0301", "e\u0301\u0302", "日e\u0301\u0302", "日本e\u0301x\u0302👍🏽",
             "日本e\u0301x\u0302👍🏽語", "日本\u0301x\u0302👍🏽語"]
    for old, new in itertools.pairwise(steps):
        check(old, new)
        check(new, old)


@given(st.text(), st.text())
def test_any_two_texts(old: str, new: str) -> None:
    """Applying the splice to the old text gives the new one, in UTF-16 units."""
    check(old, new)


@given(st.text(), st.text(), st.text(), st.text())
def test_an_insert_in_the_middle(head: str, tail: str, middle: str, inserted: str) -> None:
    """Text growing in the middle: the splice inserts no more than what changed."""
    old, new = head + middle + tail, head + middle + inserted + tail
    change = check(old, new)
    assert len(change.insert) <= len(inserted)


@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), min_size=1), max_size=20))
def test_growing_json_texts(tokens: list[str]) -> None:
    """A JSON item growing token by token: each step's splice rebuilds the next text."""
    text, message = orjson.dumps({"message": "", "id": "x"}).decode(), ""
    for token in tokens:
        message += token
        new = orjson.dumps({"message": message, "id": "x"}).decode()
        check(text, new)
        text = new
