"""The WSGI entry point for gunicorn and App Engine: `addon.wsgi:app`."""

from addon import create_app

app = create_app()
if app.config["DEV"]:
    # Production servers bind wherever they are told; development mode's trusted
    # local key must never be served by them.
    raise RuntimeError("ADDON_DEV must not be set for the production WSGI entry point")
