"""Ids and counts posted as text: only the digits 0-9 are read as numbers."""

from __future__ import annotations

import pytest

from addon.digits import ascii_digits, bounded_int
from addon.web.mailing_actions import Refused, parse_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", True),
        ("007", True),
        ("", False),
        ("¹", False),
        ("٣", False),
        ("4²", False),
        ("-1", False),
        ("1 ", False),
    ],
)
def test_only_ascii_digits_count_as_digits(text: str, expected: bool) -> None:
    assert ascii_digits(text) is expected


@pytest.mark.parametrize("raw", ["¹", "٣", "1¹"])
def test_an_id_in_other_digits_is_refused_not_a_crash(raw: str) -> None:
    """str.isdigit accepts these; int() refuses "¹" (a server error before) and reads "٣"."""
    with pytest.raises(Refused, match="does not exist in your workspace"):
        parse_id(raw, "campaign")
    assert parse_id("12", "campaign") == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), ("007", 7), ("999", 999), ("1000", None), ("", None), ("¹", None)],
)
def test_a_bounded_number_has_at_most_its_digits(text: str, expected: int | None) -> None:
    assert bounded_int(text, 3) == expected
