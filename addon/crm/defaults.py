"""The folders and fields every new workspace starts with."""

from __future__ import annotations

from typing import Any

LIFECYCLE_STAGES = ["subscriber", "lead", "qualified", "customer", "evangelist", "other"]
DEAL_STAGES = ["new", "qualified", "proposal", "negotiation", "won", "lost"]
CLOSED_DEAL_STAGES = frozenset({"won", "lost"})
LEAD_SOURCES = ["email", "web form", "referral", "event", "import", "other"]
PRIORITIES = ["low", "medium", "high"]
COMPANY_SIZES = ["1-10", "11-50", "51-200", "201-1000", "1001+"]

# (folder key, name, singular, [(field key, label, type, options, required)])
FieldSpec = tuple[str, str, str, dict[str, Any], bool]

DEFAULT_FOLDERS: list[tuple[str, str, str, list[FieldSpec]]] = [
    (
        "contacts",
        "Contacts",
        "Contact",
        [
            ("first_name", "First name", "text", {}, False),
            ("last_name", "Last name", "text", {}, False),
            ("emails", "Emails", "email", {}, False),
            ("phones", "Phones", "phone", {}, False),
            ("job_title", "Job title", "text", {}, False),
            ("company", "Company", "link", {"folder": "companies", "many": False}, False),
            (
                "lifecycle_stage",
                "Lifecycle stage",
                "dropdown",
                {"choices": LIFECYCLE_STAGES},
                False,
            ),
            ("owner", "Owner", "user", {}, False),
            ("lead_source", "Lead source", "dropdown", {"choices": LEAD_SOURCES}, False),
        ],
    ),
    (
        "companies",
        "Companies",
        "Company",
        [
            ("name", "Name", "text", {}, True),
            ("domain", "Domain", "text", {}, False),
            ("industry", "Industry", "text", {}, False),
            ("size", "Size", "dropdown", {"choices": COMPANY_SIZES}, False),
            ("owner", "Owner", "user", {}, False),
        ],
    ),
    (
        "deals",
        "Deals",
        "Deal",
        [
            ("name", "Name", "text", {}, True),
            ("stage", "Pipeline stage", "dropdown", {"choices": DEAL_STAGES}, False),
            ("amount", "Amount", "currency", {"default_currency": "USD"}, False),
            ("close_date", "Expected close date", "date", {}, False),
            ("owner", "Owner", "user", {}, False),
            ("company", "Company", "link", {"folder": "companies", "many": False}, False),
            ("contacts", "Contacts", "link", {"folder": "contacts", "many": True}, False),
            ("priority", "Priority", "dropdown", {"choices": PRIORITIES}, False),
        ],
    ),
]
