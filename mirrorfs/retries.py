"""When and how long to wait before trying a provider request again.

As the vendors' own SDKs do it: retry request timeouts (408), lock conflicts
(409), rate limits (429), server errors (5xx, Anthropic's 529 "overloaded")
and failed connections; at most ``max_retries`` times; wait what the server
asked for (``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP
date) or else 0.5 s doubling up to 8 s, less up to 25 % jitter so that many
clients do not come back in step. A server's ``x-should-retry: true|false``
overrides the status. One difference: where a server asks for a longer wait
than ``max_retry_after`` (60 s), we do not quietly wait less than it said (as
the SDKs do) — the request fails and the error says how long to wait.

The clock, the sleep and the random source are injectable so tests see the
delays that were chosen without waiting for them.
"""

from __future__ import annotations

import email.utils
import random as _random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

__all__ = ["RetryPolicy", "retry_after", "is_retryable_status"]


def is_retryable_status(status: int, headers: Mapping[str, str] | None = None) -> bool:
    """True for 408, 409, 429 and every 5xx, unless the server said ``x-should-retry``."""
    if headers is not None:
        hint = (headers.get("x-should-retry") or "").strip().lower()
        if hint == "true":
            return True
        if hint == "false":
            return False
    return status in (408, 409, 429) or status >= 500


def retry_after(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say (or said nonsense)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if ms >= 0 and ms == ms and ms != float("inf"):
            return ms / 1000.0
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(email.utils.mktime_tz(parsed) - now(), 0.0)
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return None
    return seconds


@dataclass
class RetryPolicy:
    """How many retries, and the waits between them."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def backoff(self, retries_taken: int) -> float:
        """Exponential backoff with jitter for the retry after ``retries_taken`` earlier retries."""
        base = min(self.initial_delay * 2.0 ** retries_taken, self.max_delay)
        return base * (1.0 - 0.25 * self.random())

    def delay(self, retries_taken: int, headers: Mapping[str, str] | None = None) -> float | None:
        """Seconds to wait before the next try; None when the server asked for more than we wait."""
        asked = retry_after(headers, self.clock)
        if asked is None:
            return self.backoff(retries_taken)
        if asked > self.max_retry_after:
            return None
        return asked
