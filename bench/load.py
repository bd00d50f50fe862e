"""Load test: the service under gunicorn on loopback, mixed sidebar traffic from many clients.

It builds a SQLite database seeded like `make run` (migrations, then addon.demo's
workspace example.com), starts the fake Gmail server with the demo mailbox and a freshly
generated signing key whose certificate it serves, and runs the production entry point
`addon.wsgi:app` under gunicorn pointed at both. Then `--clients` threads, each with its
own keep-alive connection, send for `--seconds` a mix of sidebar requests with valid
signed ID tokens (the service verifies every one, as for Google's):

    homepage      POST /homepage                                    25 %
    contextual    POST /gmail/message (a demo message, Gmail read)  35 %
    record        POST /actions/open_record (a demo record)         25 %
    search        POST /actions/search (a name prefix)              15 %

It prints throughput, p50/p99 latency (measured by the client, queueing included) per
kind and overall, and the errors (any answer but 200 with a JSON body, or a failed
connection). Targets: zero errors and p99 under 250 ms; the exit status is 1 when missed.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/load.py --seconds 60 --clients 32
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from addon import create_app, migrations
from addon.auth.devkeys import TokenMinter
from addon.crm.models import Record
from addon.db import session_scope
from addon.demo import seed_demo
from addon.web.dev import DEV_CLIENT_ID, DEV_DOMAIN, DEV_SERVICE_ACCOUNT, start_dev_environment

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 250.0
MIX = [("homepage", 25), ("contextual", 35), ("record", 25), ("search", 15)]
SEARCHES = ["a", "al", "bob", "glo", "acme", "in", "umb", "j", "dana", "chl"]
USER = f"rep@{DEV_DOMAIN}"


@dataclass
class Traffic:
    """What the clients send: pre-minted tokens and the ids the requests name."""

    base_url: str
    minter: TokenMinter
    message_ids: list[tuple[str, str]]
    record_ids: list[int]
    system_tokens: dict[str, str] = field(default_factory=dict)
    user_token: str = ""

    def __post_init__(self) -> None:
        # Minted once: the service still verifies every token on every request.
        for path in ("/homepage", "/gmail/message", "/actions/open_record", "/actions/search"):
            self.system_tokens[path] = self.minter.system_token(self.base_url + path)
        self.user_token = self.minter.user_token(USER, DEV_DOMAIN)

    def request(self, kind: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """The path and event of one request of this kind."""
        common: dict[str, Any] = {
            "hostApp": "GMAIL",
            "platform": "WEB",
            "userLocale": "en",
            "timeZone": {"id": "Europe/Paris", "offset": 3600000},
        }
        event: dict[str, Any] = {
            "commonEventObject": common,
            "authorizationEventObject": {
                "userOAuthToken": "bench-oauth-token",
                "userIdToken": self.user_token,
                "systemIdToken": "unused",
            },
        }
        if kind == "homepage":
            return "/homepage", event
        if kind == "contextual":
            message_id, thread_id = rng.choice(self.message_ids)
            event["gmail"] = {
                "messageId": message_id,
                "threadId": thread_id,
                "accessToken": "bench-access-token",
            }
            return "/gmail/message", event
        if kind == "record":
            common["parameters"] = {"record_id": str(rng.choice(self.record_ids))}
            return "/actions/open_record", event
        common["formInputs"] = {"query": {"stringInputs": {"value": [rng.choice(SEARCHES)]}}}
        return "/actions/search", event


@dataclass
class Results:
    """Latencies by kind and the errors seen, shared by the client threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ms: float, error: str | None) -> None:
        """Record one request."""
        with self.lock:
            self.latencies[kind].append(ms)
            if error is not None:
                self.errors[kind] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{kind}: {error}")


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _client(port: int, traffic: Traffic, results: Results, stop_at: float, seed: int) -> None:
    rng = random.Random(seed)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.perf_counter() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        path, event = traffic.request(kind, rng)
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {traffic.system_tokens[path]}",
        }
        started = time.perf_counter()
        error: str | None = None
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                error = f"HTTP {response.status}: {data[:200]!r}"
            else:
                json.loads(data)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        results.add(kind, (time.perf_counter() - started) * 1000, error)
    connection.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(database_url: str) -> list[int]:
    app = create_app({"DATABASE_URL": database_url})
    with app.extensions["addon.engine"].begin() as connection:
        migrations.upgrade(database_url, connection)
    with session_scope(app) as session:
        seed_demo(session, DEV_DOMAIN)
        ids = list(session.execute(select(Record.id)).scalars())
    app.extensions["addon.engine"].dispose()
    return ids


def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def main(argv: list[str] | None = None) -> int:
    """Run the load test; 0 when the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="gthread threads per worker (default: sync)"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="addon-load-"))
    database_url = f"sqlite:///{workdir / 'load.sqlite3'}"
    record_ids = _seed(database_url)
    env = start_dev_environment()
    messages = [(m.id, m.thread_id) for m in env.gmail.state.messages.values()]
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {
        **os.environ,
        "ADDON_DATABASE_URL": database_url,
        "ADDON_BASE_URL": base_url,
        "ADDON_SERVICE_ACCOUNT_EMAIL": DEV_SERVICE_ACCOUNT,
        "ADDON_OAUTH_CLIENT_ID": DEV_CLIENT_ID,
        "ADDON_GOOGLE_CERTS_URL": env.gmail.certs_url,
        "ADDON_GMAIL_API_URL": env.gmail.url,
        "ADDON_SECRET_KEY": "load-test-only",
        "ADDON_DEV": "0",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    # The deployment's own settings (gunicorn.conf.py, as app.yaml uses them), unless the
    # command line asks for others to compare.
    command = [
        gunicorn,
        "addon.wsgi:app",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    if args.threads is not None:
        command += ["--worker-class", "gthread", "--threads", str(args.threads)]
    process = subprocess.Popen(command, env=server_env, cwd=ROOT)
    try:
        _wait_ready(base_url, process)
        traffic = Traffic(base_url, env.minter, messages, record_ids)
        warm = Results()
        _run(port, traffic, warm, args.clients, args.warmup)
        results = Results()
        elapsed = _run(port, traffic, results, args.clients, args.seconds)
    finally:
        process.terminate()
        process.wait(timeout=30)
        env.gmail.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(results, elapsed, args)


def _run(port: int, traffic: Traffic, results: Results, clients: int, seconds: float) -> float:
    started = time.perf_counter()
    stop_at = started + seconds
    threads = [
        threading.Thread(target=_client, args=(port, traffic, results, stop_at, n), daemon=True)
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _serving(args: argparse.Namespace) -> str:
    workers = "gunicorn.conf.py's workers" if args.workers is None else f"{args.workers} workers"
    return workers + (" (sync)" if args.threads is None else f" x {args.threads} threads")


def _report(results: Results, elapsed: float, args: argparse.Namespace) -> int:
    every = [ms for values in results.latencies.values() for ms in values]
    errors = sum(results.errors.values())
    print(
        f"gunicorn {_serving(args)}, {args.clients} clients, "
        f"{elapsed:.1f} s measured on {os.cpu_count()} cores"
    )
    print(f"{'kind':<12}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    rows = [(kind, results.latencies[kind]) for kind, _ in MIX] + [("all", every)]
    for kind, values in rows:
        errs = errors if kind == "all" else results.errors.get(kind, 0)
        print(
            f"{kind:<12}{len(values):>10}{len(values) / elapsed:>9.1f}"
            f"{_percentile(values, 50):>9.1f}{_percentile(values, 99):>9.1f}{errs:>8}"
        )
    for sample in results.samples:
        print(f"  error: {sample}")
    p99 = _percentile(every, 99)
    met = errors == 0 and p99 < P99_TARGET_MS and bool(every)
    verdict = "met" if met else "NOT met"
    print(f"target (zero errors, p99 < {P99_TARGET_MS:.0f} ms): {verdict}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
