"""Inbox CRM: a Google Workspace add-on backend that puts a CRM in the Gmail sidebar."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application; nothing is global at import time."""
    from addon import cli, db, logs
    from addon.config import load_settings
    from addon.mailing import identity as mailing_identity
    from addon.web import (  # noqa: F401 (registers)
        actions,
        admin_actions,
        admin_downloads,
        delete_actions,
        dev,
        export_actions,
        forms,
        gmail_access_actions,
        health,
        hygiene_actions,
        ledger_actions,
        mailing_actions,
        mailing_campaign_actions,
        mailing_tasks,
        massupdate_actions,
        oauth,
        registry,
        settings_actions,
        triggers,
        unsubscribe,
        view_actions,
        webform_actions,
    )

    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(config)
    app.config.update(settings)
    app.config["SECRET_KEY"] = settings["SECRET_KEY"] or None
    # Tests hand over a session factory bound to their rolled-back transaction.
    if config and "SESSIONMAKER" in config:
        app.extensions["addon.sessionmaker"] = config["SESSIONMAKER"]
    # Registered before the database's commit hook, so its line is written after the commit.
    logs.init_app(app)
    db.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(triggers.bp)
    app.register_blueprint(registry.bp)
    app.register_blueprint(forms.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(mailing_tasks.bp)
    dev.init_app(app, config or {})
    oauth.init_app(app)
    mailing_identity.init_app(app)
    cli.register(app)
    return app
