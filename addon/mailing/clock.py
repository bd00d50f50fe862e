"""The worker's clock: real time, or a fake one whose sleep only moves the time forward."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time and waits."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """Virtual time for tests and simulations: sleeping advances it at once."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept = timedelta(0)

    def now(self) -> datetime:
        """The virtual time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time."""
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))

    def advance(self, delta: timedelta) -> None:
        """Move the time forward."""
        with self._lock:
            self._now += delta
            self.slept += delta
