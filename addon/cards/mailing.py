"""Mail merge in the sidebar: templates, a campaign's set-up and preview, its progress.

Every builder is a pure function of the plain dataclasses below; the actions module
(addon/web/mailing_actions.py) fills them from the services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from addon.cards.widgets import (
    Actions,
    Widget,
    button,
    button_list,
    card,
    checkbox,
    date_time_picker,
    decorated,
    divider,
    dropdown,
    error_line,
    esc,
    paragraph,
    section,
    text_input,
)
from addon.crm.fieldtypes_base import format_date, format_time, locale_style, zone

Card = dict[str, Any]

# How many excluded recipients a preview lists by name (the count covers them all).
EXCLUSIONS_SHOWN = 30
# The recipient picker holds this many names; Next/Previous reach the others.
PICKER_SIZE = 50
# Long bodies are cut in the preview so the card stays small.
PREVIEW_CHARS = 3000

EXCLUSION_REASONS = {
    "no_email": "No email address",
    "suppressed": "Unsubscribed or bounced",
    "duplicate": "Duplicate address",
    "missing_value": "Missing merge value",
    "invalid_email": "Invalid email address",
}

STATUS_LABELS = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "running": "Sending",
    "paused": "Paused",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
_STATUS_ICONS = {
    "draft": "DESCRIPTION",
    "scheduled": "CLOCK",
    "running": "EMAIL",
    "paused": "CLOCK",
    "completed": "STAR",
    "cancelled": "EMAIL",
    "failed": "EMAIL",
}


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class MergeField:
    """A merge field a template may use: `{{name}}`, with what it stands for."""

    name: str
    label: str


@dataclass
class TemplateForm:
    """What the template editor shows: a stored template, or what the user typed."""

    name: str = ""
    subject: str = ""
    body_text: str = ""
    body_html: str = ""


@dataclass(frozen=True)
class TemplateLine:
    """One template in the list."""

    id: int
    name: str
    subject: str


@dataclass(frozen=True)
class Choice:
    """One item of a dropdown: the value sent back and the text shown."""

    value: str
    text: str


@dataclass
class CampaignForm:
    """What the new-campaign form shows: a draft campaign, or what the user typed."""

    name: str = ""
    view_id: str = ""
    template_id: str = ""
    cc: str = ""
    bcc: str = ""
    human_gaps: bool = False
    start_ms: int | None = None  # scheduled start (ms since the epoch); None starts at once


@dataclass(frozen=True)
class Exclusion:
    """A recipient left out of a campaign, and why."""

    label: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    """One recipient's message as it will be sent."""

    to: str
    subject: str
    text: str
    html: str | None = None
    cc: str = ""
    bcc: str = ""


@dataclass
class Preview:
    """A draft campaign before it starts: who gets it, who is left out, and one message."""

    campaign_id: int
    name: str
    view_name: str
    template_name: str
    included: int
    exclusions: list[Exclusion]
    excluded: int
    # Recipients offered in the picker (value = position among the included), and which
    # position is shown.
    picker: list[Choice] = field(default_factory=list)
    position: int = 0
    message: RenderedMessage | None = None
    scheduled_at: datetime | None = None
    human_gaps: bool = False
    quota_left: int | None = None
    error: str | None = None


@dataclass
class Progress:
    """A campaign's state as the progress card shows it."""

    campaign_id: int
    name: str
    status: str
    status_reason: str | None
    sent: int
    queued: int
    failed: int
    skipped: int
    next_send_at: datetime | None
    forecast_finish_at: datetime | None
    quota_used: int
    quota_cap: int
    bounced: int = 0
    scheduled_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class CampaignLine:
    """One campaign in the mail merge list."""

    id: int
    name: str
    status: str
    when: datetime | None = None


@dataclass(frozen=True)
class Display:
    """How times are written: the user's locale and IANA time zone."""

    locale: str = "en"
    tz: str = "UTC"

    def moment(self, when: datetime | None) -> str:
        """A date and time in the user's zone, or a dash."""
        if when is None:
            return "—"
        style = locale_style(self.locale)
        local = when.astimezone(zone(self.tz))
        return f"{format_date(local.date(), style)}, {format_time(local, style)}"


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


def _cut(text: str, limit: int = PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _error_head(error: str | None, suffix: str) -> list[Widget]:
    if not error:
        return []
    return [error_line(f"{error[:1].upper()}{error[1:]}. {suffix}".strip())]


# ------------------------------------------------------------------------------ entry points


def mail_merge_home(
    actions: Actions,
    campaigns: Sequence[CampaignLine],
    *,
    display: Display,
    templates: int,
    granted: bool = True,
    connect_url: str | None = None,
) -> Card:
    """The mail merge start card: recent campaigns, and the way to templates and a new one.

    Without the sending grant it first explains what is needed and links to the consent.
    """
    lines: list[Widget] = [
        decorated(
            esc(c.name),
            bottom=f"{STATUS_LABELS.get(c.status, c.status)} · {display.moment(c.when)}",
            icon=_STATUS_ICONS.get(c.status, "EMAIL"),
            on_click=actions.on_click(
                "mailing_preview" if c.status == "draft" else "mailing_progress",
                campaign_id=c.id,
            ),
        )
        for c in campaigns
    ]
    if not lines:
        lines.append(paragraph("No campaigns yet."))
    start: list[Widget] = [
        paragraph(
            "Send one personalised message to each contact of a saved view, from your own "
            "Gmail account, paced under Gmail's daily limits."
        )
    ]
    if templates == 0:
        start.append(
            paragraph("<i>Start with a template: a subject and a body with merge fields.</i>")
        )
    start.append(
        button_list(
            button(
                "New campaign",
                actions.on_click("mailing_new_campaign"),
                filled=True,
                disabled=templates == 0,
            ),
            button(f"Templates ({templates})", actions.on_click("mailing_templates")),
        )
    )
    sections = [section(start), section(lines, "Campaigns", collapsible=True, visible=5)]
    if not granted:
        sections.insert(0, grant_section(connect_url))
    return card("Mail merge", sections, name="mailing")


def grant_section(connect_url: str | None, *, reason: str | None = None) -> dict[str, Any]:
    """Why sending needs the member's permission, with the link that grants it."""
    widgets: list[Widget] = []
    if reason:
        widgets.append(error_line(reason))
    widgets.append(
        paragraph(
            "Mail merge sends from your own Gmail account, so it needs your permission to "
            "<b>send email on your behalf</b> (the Gmail “send” permission only: it cannot "
            "read your mail). You can revoke it at any time."
        )
    )
    if connect_url:
        widgets.append(
            button_list(
                button(
                    "Allow sending",
                    {"openLink": {"url": connect_url, "openAs": "OVERLAY", "onClose": "RELOAD"}},
                    filled=True,
                )
            )
        )
    else:
        widgets.append(
            paragraph("<i>Sending is not set up on this server yet; ask your administrator.</i>")
        )
    return section(widgets, "Allow sending")


def grant_needed_card(connect_url: str | None, *, reason: str | None = None) -> Card:
    """A card saying that this step sends mail and needs the sending permission first."""
    return card("Mail merge", [grant_section(connect_url, reason=reason)], name="mailing-grant")


# ------------------------------------------------------------------------------ templates


def merge_fields_section(fields: Sequence[MergeField]) -> dict[str, Any]:
    """The merge fields a template may use, with the fallback syntax."""
    widgets: list[Widget] = [
        paragraph(
            "Write <b>{{first_name}}</b> where a value goes; "
            "<b>{{first_name|there}}</b> uses “there” when the value is missing."
        )
    ]
    widgets += [decorated(esc("{{" + f.name + "}}"), bottom=esc(f.label)) for f in fields[:60]]
    return section(widgets, "Merge fields", collapsible=True, visible=4)


def templates_card(actions: Actions, templates: Sequence[TemplateLine]) -> Card:
    """Every template of the workspace, each opening its editor."""
    widgets: list[Widget] = [
        decorated(
            esc(t.name),
            bottom=esc(t.subject)[:200],
            icon="DESCRIPTION",
            on_click=actions.on_click("mailing_edit_template", template_id=t.id),
        )
        for t in templates[:90]
    ]
    if not widgets:
        widgets.append(paragraph("No templates yet."))
    return card(
        "Templates",
        [
            section(widgets),
            section(
                [button_list(button("New template", actions.on_click("mailing_new_template")))]
            ),
        ],
        subtitle="Mail merge",
        name="mailing-templates",
    )


def template_editor(
    actions: Actions,
    form: TemplateForm,
    fields: Sequence[MergeField],
    *,
    template_id: int | None = None,
    error: str | None = None,
) -> Card:
    """The create/edit form of a template; a refused save shows it again with the error."""
    head: list[Widget] = _error_head(error, "Nothing was saved.")
    head += [
        text_input("tpl_name", "Template name", form.name),
        text_input("tpl_subject", "Subject", form.subject, hint="e.g. Hello {{first_name|there}}"),
        text_input("tpl_text", "Plain text body", form.body_text, multiline=True),
        text_input(
            "tpl_html",
            "HTML body (optional)",
            form.body_html,
            multiline=True,
            hint="Leave empty to send plain text only",
        ),
    ]
    keep = {"template_id": template_id} if template_id is not None else {}
    return card(
        "New template" if template_id is None else f"Edit {form.name or 'template'}",
        [section(head), merge_fields_section(fields)],
        subtitle="Mail merge",
        name="mailing-template-editor",
        footer=button(
            "Save template", actions.on_click("mailing_save_template", **keep), filled=True
        ),
    )


# ------------------------------------------------------------------------------ campaigns


def campaign_form_card(
    actions: Actions,
    form: CampaignForm,
    views: Sequence[Choice],
    templates: Sequence[Choice],
    *,
    campaign_id: int | None = None,
    error: str | None = None,
    offset_minutes: int | None = None,
) -> Card:
    """Set up a campaign: a view of contacts, a template, cc/bcc, pacing and start time."""
    widgets: list[Widget] = _error_head(error, "Nothing was saved.")
    widgets.append(text_input("cmp_name", "Campaign name", form.name))
    if views:
        widgets.append(
            dropdown(
                "cmp_view",
                "Send to the contacts of the view",
                [(c.value, c.text[:100]) for c in views],
                form.view_id,
            )
        )
    else:
        widgets.append(paragraph("No saved view of contacts yet: save a view first."))
    widgets.append(
        dropdown(
            "cmp_template",
            "Template",
            [(c.value, c.text[:100]) for c in templates],
            form.template_id,
        )
    )
    options: list[Widget] = [
        text_input("cmp_cc", "Cc (optional)", form.cc, hint="Addresses separated by commas"),
        text_input("cmp_bcc", "Bcc (optional)", form.bcc, hint="Each one counts against quota"),
        checkbox("cmp_gaps", "Human-like gaps between messages", form.human_gaps),
        date_time_picker("cmp_start", "Start at (optional)", form.start_ms, offset_minutes),
        paragraph("<i>Leave the start empty to send as soon as you press Start.</i>"),
    ]
    keep = {"campaign_id": campaign_id} if campaign_id is not None else {}
    return card(
        "New campaign" if campaign_id is None else f"Edit {form.name or 'campaign'}",
        [section(widgets, "Who and what"), section(options, "Options")],
        subtitle="Mail merge",
        name="mailing-campaign-form",
        footer=button("Preview", actions.on_click("mailing_save_campaign", **keep), filled=True),
    )


def _message_widgets(message: RenderedMessage) -> list[Widget]:
    widgets: list[Widget] = [decorated(esc(message.to), top="To")]
    if message.cc:
        widgets.append(decorated(esc(message.cc), top="Cc"))
    if message.bcc:
        widgets.append(decorated(esc(message.bcc), top="Bcc"))
    widgets.append(decorated(esc(message.subject) or "—", top="Subject"))
    widgets.append(divider())
    widgets.append(paragraph(esc(_cut(message.text)).replace("\n", "<br>") or "<i>(empty)</i>"))
    if message.html:
        widgets.append(
            decorated(
                f"{len(message.html):,} characters of HTML",
                top="HTML body",
                bottom="Sent alongside the plain text; values are escaped",
            )
        )
    return widgets


def preview_card(
    actions: Actions,
    preview: Preview,
    *,
    display: Display,
    can_start: bool = True,
) -> Card:
    """A draft campaign: recipient count, exclusions with reasons, any recipient's message."""
    cid = preview.campaign_id
    summary: list[Widget] = _error_head(preview.error, "")
    summary.append(
        decorated(
            f"<b>{_plural(preview.included, 'recipient', 'recipients')}</b>",
            top=f"View “{esc(preview.view_name)}” · template “{esc(preview.template_name)}”",
            bottom=(
                f"{_plural(preview.excluded, 'contact', 'contacts')} left out"
                if preview.excluded
                else "Nobody is left out"
            ),
            icon="MULTIPLE_PEOPLE",
        )
    )
    when = (
        f"Starts {display.moment(preview.scheduled_at)}"
        if preview.scheduled_at
        else "Starts when you press Start"
    )
    pacing = "human-like gaps" if preview.human_gaps else "steady pace"
    summary.append(decorated(esc(when), bottom=pacing, icon="CLOCK"))
    if preview.quota_left is not None:
        summary.append(
            decorated(
                f"{preview.quota_left:,} recipients left in your rolling 24-hour quota",
                bottom="What does not fit waits for the window",
                icon="EMAIL",
            )
        )
    sections = [section(summary, preview.name)]

    if preview.exclusions:
        lines: list[Widget] = [
            decorated(
                esc(e.label),
                bottom=esc(
                    EXCLUSION_REASONS.get(e.reason, e.reason)
                    + (f": {e.detail}" if e.detail else "")
                ),
            )
            for e in preview.exclusions[:EXCLUSIONS_SHOWN]
        ]
        if preview.excluded > len(lines):
            lines.append(paragraph(f"<i>… and {preview.excluded - len(lines):,} more.</i>"))
        lines.append(
            paragraph(
                "<i>Contacts missing a merge value are skipped unless you add a fallback "
                "(<b>{{field|fallback}}</b>) or fill in the value.</i>"
            )
        )
        sections.append(section(lines, "Left out", collapsible=True, visible=4))

    if preview.message is not None and preview.included:
        pick: list[Widget] = []
        if preview.picker:
            pick.append(
                dropdown(
                    "recipient",
                    "Preview the message of",
                    [(c.value, c.text[:100]) for c in preview.picker],
                    str(preview.position),
                    on_change=actions.action("mailing_preview", campaign_id=cid, nav="update"),
                    blank=False,
                )
            )
        paging: list[Widget] = []
        if preview.position > 0:
            paging.append(
                button(
                    "Previous",
                    actions.on_click(
                        "mailing_preview",
                        campaign_id=cid,
                        position=preview.position - 1,
                        nav="update",
                    ),
                )
            )
        if preview.position + 1 < preview.included:
            paging.append(
                button(
                    "Next",
                    actions.on_click(
                        "mailing_preview",
                        campaign_id=cid,
                        position=preview.position + 1,
                        nav="update",
                    ),
                )
            )
        if paging:
            pick.append(button_list(*paging))
        pick += _message_widgets(preview.message)
        sections.append(section(pick, f"Message {preview.position + 1:,} of {preview.included:,}"))

    buttons = [
        button(
            "Send test to myself",
            actions.on_click("mailing_send_test", campaign_id=cid, position=preview.position),
        ),
        button("Edit", actions.on_click("mailing_edit_campaign", campaign_id=cid)),
        button("Discard draft", actions.on_click("mailing_cancel", campaign_id=cid)),
    ]
    sections.append(section([button_list(*buttons)], "Actions"))
    start_text = "Schedule" if preview.scheduled_at else "Start sending"
    footer = button(
        start_text,
        actions.on_click("mailing_start", campaign_id=cid),
        filled=True,
        disabled=not can_start or preview.included == 0,
    )
    return card(
        "Preview campaign",
        sections,
        subtitle="Mail merge · draft",
        name="mailing-preview",
        footer=footer,
    )


def progress_card(actions: Actions, progress: Progress, *, display: Display) -> Card:
    """A campaign's counts, next send and forecast finish, quota use, and its controls."""
    cid = progress.campaign_id
    status = STATUS_LABELS.get(progress.status, progress.status)
    head: list[Widget] = [
        decorated(
            f"<b>{esc(status)}</b>", top="Status", icon=_STATUS_ICONS.get(progress.status, "EMAIL")
        )
    ]
    if progress.status_reason:
        reason = esc(progress.status_reason)
        head.append(
            error_line(progress.status_reason)
            if progress.status in ("paused", "failed")
            else paragraph(f"<i>{reason}</i>")
        )
    total = progress.sent + progress.queued + progress.failed + progress.skipped
    counts: list[Widget] = [
        decorated(
            f"{progress.sent:,}",
            top="Sent",
            bottom=f"{progress.bounced:,} bounced since" if progress.bounced else None,
            icon="EMAIL",
        ),
        decorated(f"{progress.queued:,}", top="Queued"),
        decorated(f"{progress.failed:,}", top="Failed"),
        decorated(
            f"{progress.skipped:,}", top="Skipped", bottom="Unsubscribed, bounced or left out"
        ),
        paragraph(f"<i>{_plural(total, 'recipient', 'recipients')} in all.</i>"),
    ]
    timing: list[Widget] = []
    if progress.status == "scheduled":
        timing.append(decorated(display.moment(progress.scheduled_at), top="Starts", icon="CLOCK"))
    if progress.status in ("running", "scheduled", "paused") and progress.queued:
        timing.append(
            decorated(
                display.moment(progress.next_send_at) if progress.status != "paused" else "Paused",
                top="Next send",
                icon="CLOCK",
            )
        )
        timing.append(
            decorated(
                display.moment(progress.forecast_finish_at)
                if progress.status != "paused"
                else "When resumed",
                top="Forecast finish",
            )
        )
    if progress.finished_at is not None:
        timing.append(decorated(display.moment(progress.finished_at), top="Finished", icon="CLOCK"))
    left = max(0, progress.quota_cap - progress.quota_used)
    timing.append(
        decorated(
            f"{progress.quota_used:,} of {progress.quota_cap:,} recipients",
            top="Quota used (rolling 24 hours)",
            bottom=f"{left:,} left in the window",
        )
    )
    buttons: list[Widget] = [
        button("Refresh", actions.on_click("mailing_progress", campaign_id=cid, nav="update"))
    ]
    if progress.status in ("running", "scheduled"):
        buttons.append(button("Pause", actions.on_click("mailing_pause", campaign_id=cid)))
    if progress.status == "paused":
        buttons.append(
            button("Resume", actions.on_click("mailing_resume", campaign_id=cid), filled=True)
        )
    if progress.status in ("running", "scheduled", "paused"):
        buttons.append(
            button("Cancel campaign", actions.on_click("mailing_confirm_cancel", campaign_id=cid))
        )
    return card(
        progress.name,
        [
            section(head),
            section(counts, "Recipients"),
            section(timing, "Timing"),
            section([button_list(*buttons)]),
        ],
        subtitle=f"Mail merge · {status}",
        name=f"mailing-progress-{cid}",
    )


def confirm_cancel_card(actions: Actions, campaign_id: int, name: str, queued: int) -> Card:
    """Ask before cancelling a campaign: queued messages will not be sent."""
    widgets: list[Widget] = [
        paragraph(
            f"Cancel <b>{esc(name)}</b>? "
            f"{_plural(queued, 'queued message is', 'queued messages are')} then never sent. "
            "Messages already sent stay sent."
        ),
        button_list(
            button(
                "Cancel campaign",
                actions.on_click("mailing_cancel", campaign_id=campaign_id),
                filled=True,
            ),
            button(
                "Keep it",
                actions.on_click("mailing_progress", campaign_id=campaign_id, nav="update"),
            ),
        ),
    ]
    return card("Cancel campaign?", [section(widgets)], subtitle=name, name="mailing-cancel")
