"""Demo CRM data for local runs: a workspace with companies, contacts, deals and views."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import Workspace
from addon.crm.records import link_thread, save_record
from addon.crm.views import save_view
from addon.crm.workspaces import folders_by_key, resolve_member

COMPANIES = [
    ("Acme Corporation", "acme.com", "Manufacturing", "201-1000"),
    ("Globex", "globex.io", "Software", "51-200"),
    ("Initech", "initech.de", "Consulting", "11-50"),
    ("Umbrella Health", "umbrella-health.fr", "Healthcare", "1001+"),
]
CONTACTS = [
    ("Alice", "Martin", "alice.martin@acme.com", "VP Purchasing", "Acme Corporation", "customer"),
    ("Bob", "Nguyen", "bob@globex.io", "CTO", "Globex", "qualified"),
    ("Jürgen", "Weiß", "juergen.weiss@initech.de", "Geschäftsführer", "Initech", "lead"),
    (
        "Chloé",
        "Dubois",
        "chloe.dubois@umbrella-health.fr",
        "Responsable achats",
        "Umbrella Health",
        "lead",
    ),
    ("Dana", "Kim", "dana.kim@gmail.com", "Consultant", "", "subscriber"),
]
DEALS = [
    ("Acme renewal 2027", "negotiation", "48000 USD", "Acme Corporation", "alice.martin@acme.com"),
    ("Globex pilot", "proposal", "12500 EUR", "Globex", "bob@globex.io"),
    ("Initech onboarding", "new", "6000 EUR", "Initech", "juergen.weiss@initech.de"),
]


def seed_demo(session: Session, domain: str) -> bool:
    """Create the demo records once; False when the workspace already exists."""
    if session.execute(select(Workspace).where(Workspace.domain == domain)).scalar_one_or_none():
        return False
    member = resolve_member(session, domain, f"rep@{domain}", is_consumer=False)
    folders = folders_by_key(session, member.workspace_id)
    for name, company_domain, industry, size in COMPANIES:
        save_record(
            session,
            member,
            folders["companies"],
            {"name": [name], "domain": [company_domain], "industry": [industry], "size": [size]},
        )
    contacts = {}
    for first, last, email, title, company, stage in CONTACTS:
        form = {
            "first_name": [first],
            "last_name": [last],
            "emails": [email],
            "job_title": [title],
            "lifecycle_stage": [stage],
        }
        if company:
            form["company"] = [company]
        contacts[email] = save_record(session, member, folders["contacts"], form)
    for name, stage, amount, company, contact in DEALS:
        save_record(
            session,
            member,
            folders["deals"],
            {
                "name": [name],
                "stage": [stage],
                "amount": [amount],
                "company": [company],
                "contacts": [f"#{contacts[contact].id}"],
            },
        )
    link_thread(
        session,
        member,
        contacts["alice.martin@acme.com"],
        "thread-acme-renewal",
        "Renewal terms for 2027",
    )
    # Views as a team would keep them: one shared segment, one personal list.
    save_view(
        session,
        member,
        folders["contacts"],
        "Customers",
        {
            "match": "all",
            "conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "customer"}],
        },
        shared=True,
    )
    save_view(
        session,
        member,
        folders["contacts"],
        "Open leads",
        {
            "match": "any",
            "conditions": [
                {"field": "lifecycle_stage", "op": "equals", "value": "lead"},
                {"field": "lifecycle_stage", "op": "equals", "value": "qualified"},
            ],
            "sort": {"field": "_title", "desc": False},
        },
        shared=False,
    )
    return True
