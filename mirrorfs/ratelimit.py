"""A requests-per-minute limit shared by every mirrorfs process on this device.

``rate_limit_rpm: 50`` in a profile means: requests to that profile start at
least 60/50 = 1.2 s apart, whether they come from one chat, three scripts and
the MCP server at once. Vendors enforce their per-minute limits over short
windows too (OpenAI: "60,000 RPM may be enforced as 1,000 per second"), so an
even spacing avoids 429s where a per-minute budget spent in a burst would not.
``burst`` lets that many requests through back to back before spacing starts.

The schedule is one float per limit key — the earliest time the next request
may start (the "theoretical arrival time" of the generic cell rate
algorithm) — in ``provider_rate.json`` in the per-device state folder. Each
request reserves its slot under the file lock and then sleeps outside it, so
waiting processes never hold the lock. The file is rewritten in place without
fsync (every reader holds the lock; a crash costs at most one early request).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from mirrorfs import state, statefile
from mirrorfs.errors import InvalidValueError

__all__ = ["RATE_FILE", "RateLimiter"]

RATE_FILE = "provider_rate.json"
_MAX_AHEAD = 3600.0


class RateLimiter:
    """Spaces requests under ``key`` to at most ``rpm`` per minute across processes."""

    def __init__(self, key: str, rpm: float, *, burst: int = 1, path: str | Path | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        if not rpm or rpm <= 0:
            raise InvalidValueError(f"rate_limit_rpm must be a positive number, not {rpm!r}")
        if burst < 1:
            raise InvalidValueError(f"burst must be at least 1, not {burst!r}")
        self.key = key
        self.rpm = float(rpm)
        self.burst = int(burst)
        self.interval = 60.0 / self.rpm
        self.path = Path(path) if path is not None else state.base_dir() / RATE_FILE
        self._sleep = sleep
        self._clock = clock

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds from now it starts (0 when free)."""
        tolerance = (self.burst - 1) * self.interval
        with statefile.update(self.path, durable=False) as data:
            now = self._clock()
            try:
                tat = float(data.get(self.key, 0.0))
            except (TypeError, ValueError):
                tat = 0.0
            # A schedule more than an hour ahead means the clock went back: start afresh.
            if tat > now + _MAX_AHEAD:
                tat = now
            tat = max(tat, now)
            start = max(now, tat - tolerance)
            data[self.key] = tat + self.interval
        return start - now

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
