"""Times as mirrorfs writes and reads them: one place for "now", ISO text and parsing.

Front matter carries aware local times to the second (`timestamp`); message
headers carry them to the millisecond (`format_time`). Anything a person or
another tool wrote is read with `parse_time` (naive means UTC) or, where a bad
value must not stop the reader, `time_or_none`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from mirrorfs.errors import InvalidValueError

# An age a person types: 7d, 2w, 3m (30 days), 1y (365 days), 12h.
_AGE = re.compile(r"^(\d+)\s*([hdwmy])$", re.I)
AGE_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(days=7),
             "m": dt.timedelta(days=30), "y": dt.timedelta(days=365)}


def now() -> dt.datetime:
    """The current time, aware, in the local zone, to the millisecond."""
    t = dt.datetime.now().astimezone()
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def timestamp(t: dt.datetime | None = None) -> dt.datetime:
    """A front-matter time: aware, local zone, whole seconds."""
    return (t or now()).replace(microsecond=0)


def format_time(t: dt.datetime) -> str:
    """A message header's time: ISO 8601 to the millisecond."""
    return t.isoformat(timespec="milliseconds")


def isoformat(value: Any) -> Any:
    """A front-matter value for JSON: dates and times as ISO text, anything else as is."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def iso_or_none(value: Any) -> str | None:
    """ISO text of a date/time, the text of anything else, None for nothing."""
    if value in (None, ""):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def parse_time(value: Any) -> dt.datetime:
    """An aware datetime from an ISO string, datetime or date (naive means UTC)."""
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    else:
        t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def time_or_none(value: Any) -> dt.datetime | None:
    """`parse_time`, or None for a missing or unreadable value (a reader never stops on one)."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError, OverflowError):
        return None


def naive_utc(value: Any) -> dt.datetime | None:
    """A naive UTC datetime (what Whoosh stores), or None when *value* is not a time."""
    t = time_or_none(value)
    return None if t is None else t.astimezone(dt.timezone.utc).replace(tzinfo=None)


def aware_utc(t: dt.datetime | None) -> dt.datetime | None:
    """A naive UTC datetime (as the index hands them out) made aware."""
    if t is None:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t


def from_unix(ts: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts is not None else None


def local_minute(value: Any) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM` in this device's zone (`?` when unreadable)."""
    t = time_or_none(value)
    if t is None:
        return str(value) if value else "?"
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def age(text: str) -> dt.timedelta | None:
    """`7d` -> 7 days (h, d, w, m = 30 days, y = 365 days); None when *text* is not an age."""
    m = _AGE.match(str(text).strip())
    if not m:
        return None
    return int(m.group(1)) * AGE_UNITS[m.group(2).lower()]


def parse_since(value: Any, reference: dt.datetime | None = None) -> dt.datetime:
    """A cutoff: a datetime, a date, `YYYY-MM-DD` (local midnight), an ISO time, or an age (`7d`, `2w`)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).astimezone()
    text = str(value).strip()
    ago = age(text)
    if ago is not None:
        try:
            return (reference or now()) - ago
        except OverflowError:
            raise InvalidValueError(f"{text!r} reaches back too far") from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.fromisoformat(text).astimezone()
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValueError(
            f"cannot read {text!r} as a date: use YYYY-MM-DD, an ISO 8601 time or an age like 7d, 2w, 3m"
        ) from None
    return t if t.tzinfo else t.astimezone()
