"""Digits typed or posted as text, read the one way int() agrees with."""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """Whether text is a non-empty run of the digits 0-9.

    str.isdigit also accepts superscripts ("¹"), which int() refuses, and other scripts'
    digits ("٣"), which int() reads: neither is an id or a count a card ever sent.
    """
    return text.isascii() and text.isdigit()
