"""Digits typed or posted as text, read the one way int() agrees with."""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """Whether text is a non-empty run of the digits 0-9.

    str.isdigit also accepts superscripts ("¹"), which int() refuses, and other scripts'
    digits ("٣"), which int() reads: neither is an id or a count a card ever sent.
    """
    return text.isascii() and text.isdigit()


def bounded_int(text: str, max_digits: int) -> int | None:
    """The number `text` spells in 1 to `max_digits` digits 0-9, else None.

    Ids, pages and counts posted as text: the bound keeps an absurdly long one out of int()
    and out of the database's integer range.
    """
    return int(text) if ascii_digits(text) and len(text) <= max_digits else None
