"""The wrappers Google expects around cards: trigger RenderActions and callback responses."""

from __future__ import annotations

from typing import Any

Card = dict[str, Any]


def trigger_card(card: Card) -> dict[str, Any]:
    """A trigger's answer: RenderActions with the card pushed."""
    return {"action": {"navigations": [{"pushCard": card}]}}


def _callback(action: dict[str, Any], state_changed: bool) -> dict[str, Any]:
    return {"renderActions": {"action": action}, "stateChanged": state_changed}


def navigate(
    *navigations: dict[str, Any], state_changed: bool = False, notify: str | None = None
) -> dict[str, Any]:
    """A callback answer with these navigations in order (e.g. popToRoot, then updateCard)."""
    action: dict[str, Any] = {"navigations": list(navigations)}
    if notify:
        action["notification"] = {"text": notify}
    return _callback(action, state_changed)


def push(card: Card, *, state_changed: bool = False, notify: str | None = None) -> dict[str, Any]:
    """A callback answer that pushes a new card."""
    return navigate({"pushCard": card}, state_changed=state_changed, notify=notify)


def update(card: Card, *, state_changed: bool = False, notify: str | None = None) -> dict[str, Any]:
    """A callback answer that replaces the current card (forms shown again with errors)."""
    return navigate({"updateCard": card}, state_changed=state_changed, notify=notify)


def pop_and_update(card: Card, *, notify: str | None = None) -> dict[str, Any]:
    """Leave a form and show the refreshed record card underneath."""
    return navigate({"pop": True}, {"updateCard": card}, state_changed=True, notify=notify)


def notify(text: str, *, state_changed: bool = False) -> dict[str, Any]:
    """A callback answer that only shows a notification."""
    return _callback({"notification": {"text": text}}, state_changed)
