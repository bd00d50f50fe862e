"""`flask --app addon gmail ...`: mailbox sync, and re-encrypting grants after a key change."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from google.oauth2.credentials import Credentials

from addon.auth.grants import SYNC, OAuthSettings, allows, reencrypt_all, unusable_reason
from addon.auth.token_keys import UnreadableToken
from addon.db import session_scope
from addon.gmail.sync_client import GoogleSyncMailbox, SyncMailbox
from addon.ledger.mailbox_sync import SyncFailed, plan_sync, run_sync, sync_targets


@click.group("gmail", cls=AppGroup)
def gmail_group() -> None:
    """Gmail commands: mailbox sync and the members' offline grants."""


@gmail_group.command("rotate-token-keys")
def rotate_token_keys() -> None:
    """Re-encrypt every stored refresh token with the first key of ADDON_TOKEN_KEYS.

    Put the new key first (keeping the old ones after it), run this, then drop the old keys.
    """
    settings = OAuthSettings.from_config(current_app.config)
    try:
        with session_scope(current_app) as session:
            count = reencrypt_all(session, settings.cipher)
    except UnreadableToken as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from None
    click.echo(f"{count} token(s) re-encrypted with the first key")


def _open_mailbox(credentials: Credentials) -> SyncMailbox:
    return GoogleSyncMailbox(
        current_app.config["GMAIL_API_URL"],
        credentials,
        timeout=current_app.config["GMAIL_TIMEOUT_SECONDS"],
    )


@gmail_group.command("sync")
@click.option("--member", "email", default="", help="Only this member (their email).")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3650),
    help="How far back the first import (or a re-import) reaches.",
)
def sync_command(email: str, days: int) -> None:
    """Import members' Gmail into the email ledger (first the last N days, then new mail)."""
    settings = OAuthSettings.from_config(current_app.config)
    failures = 0
    with session_scope(current_app) as session:
        targets = sync_targets(session, email or None)
        if email and not targets:
            raise click.UsageError(f"{email} has not granted Gmail access")
        for member, grant in targets:
            if not allows(grant, SYNC):
                # Reported when it failed; only reconnecting makes it usable again.
                click.echo(f"{member.email}: skipped: {unusable_reason(grant, SYNC)}")
                continue
            try:
                plan = plan_sync(session, member, settings, _open_mailbox, days=days)
            except SyncFailed as exc:
                session.commit()
                failures += 1
                click.echo(f"{member.email}: not synced: {exc}")
                continue
            label = f"{member.email} ({plan.mode})"
            with click.progressbar(length=len(plan.message_ids), label=label) as bar:
                report = run_sync(session, plan, checkpoint=session.commit, progress=bar.update)
            summary = (
                f"{member.email}: {report.listed} message(s) read, {report.recorded} new, "
                f"{report.duplicates} already known, {report.skipped} skipped"
            )
            if report.error:
                failures += 1
                click.echo(f"{summary}; stopped: {report.error}")
            else:
                click.echo(summary)
    if failures:
        raise SystemExit(1)
