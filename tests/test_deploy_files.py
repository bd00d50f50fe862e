"""app.yaml and cron.yaml name only settings the service reads and the real entry point."""

from __future__ import annotations

import multiprocessing
import re
import runpy
from pathlib import Path

import pytest

from addon.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def test_app_yaml_runs_the_production_entry_point_with_known_settings() -> None:
    text = (ROOT / "app.yaml").read_text()
    assert re.search(r"^runtime: python3\d+$", text, re.M)
    assert re.search(r"^entrypoint: gunicorn --bind :\$PORT (.* )?addon\.wsgi:app$", text, re.M)
    assert (ROOT / "addon" / "wsgi.py").exists()
    names = re.findall(r"^\s+(ADDON_[A-Z_]+):", text, re.M)
    assert {"ADDON_BASE_URL", "ADDON_SERVICE_ACCOUNT_EMAIL", "ADDON_OAUTH_CLIENT_ID"} <= set(names)
    assert {"ADDON_DATABASE_URL", "ADDON_SECRET_KEY"} <= set(names)
    unknown = [n for n in names if n.removeprefix("ADDON_") not in DEFAULTS]
    assert unknown == []
    # Development mode must never be switched on by the deployment.
    assert "ADDON_DEV" not in names
    assert "secure: always" in text


def test_gunicorn_settings_are_sync_workers_two_per_core_unless_the_platform_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Gunicorn loads gunicorn.conf.py from the working directory (App Engine's is the root).
    cpus = multiprocessing.cpu_count()
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync"
    assert settings["workers"] == 2 * cpus
    assert settings["timeout"] == 30
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] == 3


def test_cron_yaml_is_a_cron_file() -> None:
    text = (ROOT / "cron.yaml").read_text()
    assert re.search(r"^cron:", text, re.M)
