"""The card contract: every card the service returns passes this, in every test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from google.apps.card_v1 import Card

NAVIGATION_KEYS = {"pushCard", "updateCard", "pop", "popToRoot", "popToCard"}
BASE_URL = "https://addon.test"


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a card's JSON, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def check_card(card: dict[str, Any], base_url: str = BASE_URL) -> None:
    """Strict parse plus the limits and conventions the parser does not check."""
    Card.from_json(json.dumps(card), ignore_unknown_fields=False)
    assert card.get("header", {}).get("title"), "a card needs a header title"
    widgets = sum(len(section.get("widgets", [])) for section in card.get("sections", []))
    assert widgets <= 100, f"{widgets} widgets on one card (limit 100)"
    for section in card.get("sections", []):
        assert section.get("widgets"), "empty sections are rejected by Google"
    for key, value in walk(card):
        if key == "parameters":
            for parameter in value:
                assert isinstance(parameter["value"], str), f"parameter {parameter} is not a string"
        if key == "function":
            assert isinstance(value, str) and value.startswith(base_url + "/"), (
                f"action function {value!r}"
            )
        if key == "items":
            assert len(value) <= 100, "a selection input holds at most 100 items"


def _check_action(action: dict[str, Any], base_url: str) -> list[dict[str, Any]]:
    assert set(action) <= {"navigations", "notification", "link"}, (
        f"unknown action keys {set(action)}"
    )
    cards: list[dict[str, Any]] = []
    for navigation in action.get("navigations", []):
        assert len(navigation) == 1 and set(navigation) <= NAVIGATION_KEYS, (
            f"bad navigation {navigation}"
        )
        for key in ("pushCard", "updateCard"):
            if key in navigation:
                check_card(navigation[key], base_url)
                cards.append(navigation[key])
    if "notification" in action:
        assert isinstance(action["notification"].get("text"), str)
    assert action.get("navigations") or action.get("notification") or action.get("link")
    return cards


def check_trigger_response(data: dict[str, Any], base_url: str = BASE_URL) -> list[dict[str, Any]]:
    """A trigger answer: RenderActions at top level. Returns the cards it carries."""
    assert set(data) == {"action"}, f"trigger responses are RenderActions, got keys {set(data)}"
    return _check_action(data["action"], base_url)


def check_callback_response(data: dict[str, Any], base_url: str = BASE_URL) -> list[dict[str, Any]]:
    """A callback answer: {"renderActions": ..., "stateChanged": bool}. Returns its cards."""
    assert set(data) <= {"renderActions", "stateChanged"} and "renderActions" in data, (
        f"callbacks must answer with renderActions, got keys {set(data)}"
    )
    assert isinstance(data.get("stateChanged", False), bool)
    render = data["renderActions"]
    assert set(render) == {"action"}
    return _check_action(render["action"], base_url)


def check_response(
    path: str, data: dict[str, Any], base_url: str = BASE_URL
) -> list[dict[str, Any]]:
    """Check an add-on answer by the kind of endpoint that produced it."""
    # The universal Settings action is invoked like a trigger.
    if path.startswith("/actions/") and path != "/actions/settings":
        return check_callback_response(data, base_url)
    return check_trigger_response(data, base_url)
