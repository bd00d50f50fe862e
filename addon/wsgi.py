"""The WSGI entry point for gunicorn and App Engine: `addon.wsgi:app`."""

from addon import create_app

app = create_app()
