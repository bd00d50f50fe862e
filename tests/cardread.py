"""Reading responses in tests: the cards they carry, their visible text and their actions."""

from __future__ import annotations

from typing import Any

# Card JSON keys whose string values the user reads.
_VISIBLE = frozenset({"text", "topLabel", "bottomLabel", "title", "label", "value", "header"})


def cards_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every card a trigger or callback response pushes or updates, in navigation order."""
    action = data["renderActions"]["action"] if "renderActions" in data else data["action"]
    return [
        dict(navigation[key])
        for navigation in action.get("navigations", [])
        for key in ("pushCard", "updateCard")
        if key in navigation
    ]


def card_of(data: dict[str, Any]) -> dict[str, Any]:
    """The last card of a response: the one the user ends up looking at."""
    found = cards_of(data)
    assert found, data
    return found[-1]


def navigations(data: dict[str, Any]) -> list[str]:
    """The navigation kinds of a callback response, in order."""
    return [next(iter(n)) for n in data["renderActions"]["action"]["navigations"]]


def texts(card: dict[str, Any]) -> str:
    """All visible text of a card (header, labels, values, item texts, footer), one per line."""
    out: list[str] = [card["header"]["title"], card["header"].get("subtitle", "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _VISIBLE and isinstance(value, str):
                    out.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("sections", []))
    walk(card.get("fixedFooter", {}))
    return "\n".join(out)


def actions_in(card: dict[str, Any]) -> list[dict[str, str]]:
    """Every action on a card as {"name": ..., **parameters}."""
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "function" in node:
                params = {p["key"]: p["value"] for p in node.get("parameters", [])}
                found.append({"name": node["function"].rsplit("/", 1)[-1], **params})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found
