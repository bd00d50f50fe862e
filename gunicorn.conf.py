"""Gunicorn settings for `addon.wsgi:app`, shared by app.yaml and bench/load.py.

Gunicorn reads this file from the working directory by itself; settings given on the
command line win over it.

Why processes and not threads: a request's work is Python (token checks, ORM, card
building) and holds the GIL; threads in one process take turns on it, and a thread back
from a short database call waits for the running one's switch interval before it goes on.
On the two-core load test (bench/load.py, 32 clients) four gthread workers with four
threads each served 343 req/s with p99 331 ms; four sync workers served 394 req/s with
p99 109 ms. The one outside wait on the sidebar path, Gmail's message read, already runs in
a background thread that overlaps the request's own work (addon.web.triggers), and
after-answer work has its own small pool (addon.deferred), so a sync worker does not sit
idle for either. A sync worker answers with `Connection: close`, so the kernel hands each
new request to a free worker instead of pinning a client's connection to one.
"""

import multiprocessing
import os

# WEB_CONCURRENCY is the convention hosting platforms set; otherwise two per core.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
worker_class = "sync"
timeout = 30
# The add-on runtime gives up after 30 s; a request still running then is abandoned anyway.
graceful_timeout = 30
