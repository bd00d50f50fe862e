"""Domain settings an admin sets for the whole workspace, stored in Workspace.settings.

Keys (read by other modules; the two sending keys are the mail merge quota's own,
addon.mailing.quota, which turns them into a cap with `policy_for`):
  gmail_plan           "workspace" (paid Google Workspace) or "trial"; consumer accounts
                       are known from Workspace.is_consumer and have no plan to choose
  daily_send_cap       recipients one member may send to in a rolling 24 hours through mail
                       merge; never above Google's limit of the plan (GOOGLE_LIMITS)
  excluded_addresses   addresses never linked (addon.ledger.policy)
  excluded_domains     domains never linked (addon.ledger.policy)
  free_mail_domains    extra consumer-mail domains, never matched to a company
  default_region       ISO 3166 region for phone numbers typed without a country code
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from addon.crm.audit import changed_values, record_audit
from addon.crm.models import Member, Workspace
from addon.digits import bounded_int
from addon.ledger.policy import (
    EXCLUDED_ADDRESSES,
    EXCLUDED_DOMAINS,
    FREE_MAIL_DOMAINS,
    SettingsError,
    parse_exclusions,
)
from addon.mailing.quota import (
    ACCOUNT_TYPE_SETTING,
    CAP_SETTING,
    GOOGLE_LIMITS,
    policy_for,
)

DEFAULT_REGION = "default_region"
PLAN_LABELS = {"workspace": "Google Workspace", "trial": "Google Workspace trial"}


@dataclass(frozen=True)
class DomainSettings:
    """The settings as an admin edits them."""

    plan: str
    daily_send_cap: int
    excluded_addresses: list[str]
    excluded_domains: list[str]
    free_mail_domains: list[str]
    default_region: str


def sending_cap(settings: Mapping[str, Any] | None, is_consumer: bool) -> int:
    """Recipients one member may mail per rolling 24 hours; never above Google's limit."""
    return policy_for(is_consumer, settings).cap


def _list(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def current(settings: Mapping[str, Any] | None, is_consumer: bool) -> DomainSettings:
    """The settings with defaults filled in."""
    settings = settings or {}
    policy = policy_for(is_consumer, settings)
    return DomainSettings(
        plan=policy.account_type,
        daily_send_cap=policy.cap,
        excluded_addresses=_list(settings, EXCLUDED_ADDRESSES),
        excluded_domains=_list(settings, EXCLUDED_DOMAINS),
        free_mail_domains=_list(settings, FREE_MAIL_DOMAINS),
        default_region=str(settings.get(DEFAULT_REGION) or "US"),
    )


def parse_settings(form: Mapping[str, str], is_consumer: bool) -> dict[str, Any]:
    """Validated settings from the admin form; SettingsError names the first bad entry."""
    plan = "consumer" if is_consumer else form.get("plan", "workspace").strip()
    if plan not in GOOGLE_LIMITS:
        raise SettingsError(f"“{plan[:40]}” is not a Gmail plan")
    cap_text = form.get("daily_send_cap", "").strip().replace(",", "")
    limit = GOOGLE_LIMITS[plan]
    cap = bounded_int(cap_text, 7)
    if cap is None or cap < 1:
        raise SettingsError(f"the daily sending cap “{cap_text[:20]}” must be a whole number")
    if cap > limit:
        label = PLAN_LABELS.get(plan, "a personal Gmail account")
        raise SettingsError(
            f"the daily sending cap {cap:,} is above Google's limit of {limit:,} for {label}"
        )
    addresses, domains = parse_exclusions(
        form.get("excluded_addresses", ""), form.get("excluded_domains", "")
    )
    try:
        _, free_mail = parse_exclusions("", form.get("free_mail_domains", ""))
    except SettingsError as exc:
        raise SettingsError(f"free-mail list: {exc}") from None
    region = form.get("default_region", "").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingsError(f"“{region[:20]}” is not a region code (two letters, e.g. US, DE)")
    parsed: dict[str, Any] = {
        CAP_SETTING: cap,
        EXCLUDED_ADDRESSES: addresses,
        EXCLUDED_DOMAINS: domains,
        FREE_MAIL_DOMAINS: free_mail,
        DEFAULT_REGION: region,
    }
    if not is_consumer:
        parsed[ACCOUNT_TYPE_SETTING] = plan
    return parsed


def save_settings(session: Session, actor: Member, form: Mapping[str, str]) -> list[str]:
    """Validate and store the domain settings; the keys changed. Nothing is stored on error."""
    workspace = session.get(Workspace, actor.workspace_id)
    assert workspace is not None
    parsed = parse_settings(form, workspace.is_consumer)
    old = dict(workspace.settings or {})
    before, after = changed_values({k: old.get(k) for k in parsed}, parsed)
    if not after:
        return []
    # A new dict: the JSON column notices reassignment, not in-place changes.
    workspace.settings = {**old, **parsed}
    session.flush()
    record_audit(
        session,
        actor,
        "settings_change",
        workspace_id=workspace.id,
        summary="Domain settings: " + ", ".join(sorted(after)),
        before=before,
        after=after,
    )
    return sorted(after)
