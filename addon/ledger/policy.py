"""Who is inside a workspace, and which addresses and domains automatic linking never uses.

Workspace settings read here (Workspace.settings, set by admins):
  excluded_addresses  addresses never linked (a partner's shared inbox, a personal friend)
  excluded_domains    domains (and their subdomains) never linked
  free_mail_domains   extra consumer-mail domains, never matched to a company
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import Member, Workspace
from addon.gmail.addresses import (
    canonical_email,
    email_domain,
    is_automated_sender,
    is_free_mail,
    registrable_domain,
)

EXCLUDED_ADDRESSES = "excluded_addresses"
EXCLUDED_DOMAINS = "excluded_domains"
FREE_MAIL_DOMAINS = "free_mail_domains"
MAX_LIST_ENTRIES = 1000


class SettingsError(ValueError):
    """An exclusion list entry that is not an address or a domain; the message names it."""


def _domain_of(text: str) -> str | None:
    """A bare lowercase domain from user input, or None."""
    host = text.strip().lower().removeprefix("@").rstrip(".")
    email = canonical_email(f"x@{host}") if host and "." in host else None
    return email.split("@", 1)[1] if email else None


def _entries(raw: Iterable[str] | str) -> list[str]:
    if isinstance(raw, str):
        raw = raw.replace(",", "\n").splitlines()
    return [line.strip() for line in raw if line and line.strip()]


def parse_exclusions(
    addresses: Iterable[str] | str, domains: Iterable[str] | str
) -> tuple[list[str], list[str]]:
    """Canonical addresses and domains from admin input; SettingsError names a bad entry."""
    clean_addresses: list[str] = []
    for entry in _entries(addresses):
        canonical = canonical_email(entry)
        if canonical is None:
            raise SettingsError(f"“{entry[:80]}” is not an email address")
        clean_addresses.append(canonical)
    clean_domains: list[str] = []
    for entry in _entries(domains):
        domain = _domain_of(entry)
        if domain is None:
            raise SettingsError(f"“{entry[:80]}” is not a domain")
        clean_domains.append(domain)
    for kind, values in (("addresses", clean_addresses), ("domains", clean_domains)):
        if len(values) > MAX_LIST_ENTRIES:
            raise SettingsError(f"at most {MAX_LIST_ENTRIES} excluded {kind}")
    return list(dict.fromkeys(clean_addresses)), list(dict.fromkeys(clean_domains))


def set_exclusions(
    workspace: Workspace, addresses: Iterable[str] | str, domains: Iterable[str] | str
) -> None:
    """Store the workspace's exclusion lists; nothing changes when any entry is refused."""
    clean_addresses, clean_domains = parse_exclusions(addresses, domains)
    # A new dict: the JSON column notices reassignment, not in-place changes.
    workspace.settings = {
        **(workspace.settings or {}),
        EXCLUDED_ADDRESSES: clean_addresses,
        EXCLUDED_DOMAINS: clean_domains,
    }


def _setting_list(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key) or []
    return (
        [str(v).strip().lower() for v in value if str(v).strip()] if isinstance(value, list) else []
    )


@dataclass(frozen=True)
class LinkPolicy:
    """A workspace's view of addresses: inside or outside, linkable or not."""

    own_domain: str
    member_emails: frozenset[str]
    excluded_addresses: frozenset[str]
    excluded_domains: frozenset[str]
    free_mail_extra: frozenset[str]
    # Answers per address: a mailbox repeats the same few hundred addresses endlessly.
    _internal: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    _linkable: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    _companies: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_workspace(cls, session: Session, workspace: Workspace) -> LinkPolicy:
        """The policy of a workspace: its domain, members and settings (one statement)."""
        members = session.execute(
            select(Member.email).where(Member.workspace_id == workspace.id)
        ).scalars()
        settings = workspace.settings or {}
        return cls(
            # A consumer workspace's "domain" is its owner's address: gmail.com is not ours.
            own_domain="" if workspace.is_consumer else workspace.domain.lower(),
            member_emails=frozenset(members),
            excluded_addresses=frozenset(
                e
                for e in (canonical_email(a) for a in _setting_list(settings, EXCLUDED_ADDRESSES))
                if e
            ),
            excluded_domains=frozenset(_setting_list(settings, EXCLUDED_DOMAINS)),
            free_mail_extra=frozenset(_setting_list(settings, FREE_MAIL_DOMAINS)),
        )

    def is_internal(self, email: str) -> bool:
        """Whether the address is a member's or on the workspace's domain (or a subdomain)."""
        known = self._internal.get(email)
        if known is None:
            known = self._internal[email] = self._is_internal(email)
        return known

    def _is_internal(self, email: str) -> bool:
        if email in self.member_emails:
            return True
        if not self.own_domain:
            return False
        domain = email_domain(email)
        return domain == self.own_domain or domain.endswith("." + self.own_domain)

    def is_excluded(self, email: str) -> bool:
        """Whether an admin excluded the address or its domain (or a parent domain)."""
        if email in self.excluded_addresses:
            return True
        if not self.excluded_domains:
            return False
        labels = email_domain(email).split(".")
        return any(".".join(labels[i:]) in self.excluded_domains for i in range(len(labels) - 1))

    def linkable_person(self, email: str) -> bool:
        """Whether a participant may be matched to contacts: outside, not excluded, human."""
        known = self._linkable.get(email)
        if known is None:
            known = self._linkable[email] = bool(email) and not (
                self.is_internal(email) or self.is_excluded(email) or is_automated_sender(email)
            )
        return known

    def company_domain(self, email: str) -> str | None:
        """The registrable domain a linkable participant's company is matched by, or None.

        Never a free-mail provider's, the workspace's own, or an excluded domain.
        """
        if email not in self._companies:
            self._companies[email] = self._company_domain(email)
        return self._companies[email]

    def _company_domain(self, email: str) -> str | None:
        domain = email_domain(email)
        registrable = registrable_domain(domain)
        if registrable is None or is_free_mail(domain, self.free_mail_extra):
            return None
        if is_free_mail(registrable, self.free_mail_extra):
            return None
        own = registrable_domain(self.own_domain) if self.own_domain else None
        if registrable == own or registrable in self.excluded_domains:
            return None
        return registrable
