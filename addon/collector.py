"""Fewer passes of Python's cyclic garbage collector while bulk work runs."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between two young-generation collections while bulk work runs (Python's
# default: 700).
YOUNG_THRESHOLD = 100_000

_lock = threading.Lock()
_active = 0
_saved = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while the block runs (blocks nest).

    Bulk work (a CSV import, a mailbox's messages entering the ledger) allocates millions
    of tuples, dicts and lists, nearly all without cycles: reference counting frees them.
    With the default threshold the collector examines the objects a batch holds over and
    over, and each time enough of them outlive the young generations it runs a full pass
    over the whole heap: a quarter of an import's CPU time, and a fifth of the ledger
    ingest's. It still runs, every 100,000 allocations. Nested and concurrent blocks (other
    threads) keep the raised threshold until the last one ends, which restores the one
    the first found.
    """
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, *_saved[1:])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
