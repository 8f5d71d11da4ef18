"""How search hits and the watcher's status read: text for people, JSON for scripts.

The standard library only, on plain dicts (what `SearchHit.to_dict` gives and
the watcher sends): the full CLI (cli_search, cli_watch) and the lean console
(mirrorfs.console) print through these functions, so their outputs cannot drift.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import Any, Iterable

# click.style(text, bold=True), without importing click.
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


def json_default(value: Any) -> Any:
    """What --json prints for a value JSON has no type for: times as ISO, objects as their to_dict."""
    if hasattr(value, "isoformat"):  # date, datetime (the datetime module loads only when used)
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def json_text(data: Any) -> str:
    """*data* as the CLI prints it with --json."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=json_default)


def bold(snippet: str, tty: bool) -> str:
    """`**term**` marks as bold on a terminal, left as they are otherwise."""
    if not tty:
        return snippet
    return re.sub(r"\*\*(.+?)\*\*", lambda m: f"{_BOLD}{m.group(1)}{_RESET}", snippet)


def _minute(iso: str | None) -> str:
    import datetime as dt  # only message hits need it: a lean search of notes does without

    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else "?"


def hits_text(hits: Iterable[dict], tty: bool = False) -> str:
    """Search, recall and similar hits (dicts of SearchHit.to_dict) as lines for people."""
    lines = []
    for h in hits:
        flags = h.get("flags") or ()
        if h.get("doc") == "message":
            session = h.get("session_title") or h.get("session")
            head = f"{h['path']}  [{h.get('role')} · {_minute(h.get('time'))} · session: {session}]"
        else:
            head = f"{h['path']}  [{h['type']}] {h['title']}"
            if "unparseable" in flags:
                head += "  (front matter unparseable)"
        if "secret" in flags:
            head += "  (secret)"
        lines.append(f"{h['score']:>7.3f}  {head}")
        if h.get("snippet"):
            lines.append(f"         {bold(h['snippet'], tty)}")
    return "\n".join(lines) if lines else "no results"


def hits_paths(hits: Iterable[dict]) -> str:
    """The files the hits are in, once each, best first (as `rg -l` lists them); empty for none."""
    return "\n".join(dict.fromkeys(h["path"] for h in hits))


def reflections_text(items: list[dict], cutoff=None, looked=None, days: float = 7.0) -> str:
    """`mirrorfs reflections` for people: one line each, or what "nothing new" means here.

    *cutoff* (--since) and *looked* (when this instance last marked them read)
    are datetimes or ISO strings (as the watcher sends them).
    """
    if items:
        return "\n".join(r["line"] for r in items)
    if cutoff is not None:
        return f"nothing new since {_time(cutoff):%Y-%m-%d %H:%M}"
    if looked is not None:
        return f"nothing new since you last looked ({_time(looked).astimezone():%Y-%m-%d %H:%M})"
    return f"nothing new in the last {days:g} days"


def _time(value):
    if isinstance(value, str):
        import datetime as dt  # as in _minute

        return dt.datetime.fromisoformat(value)
    return value


def status_text(d: dict) -> str:
    """`mirrorfs status` for people: whether a watcher runs here and how it is doing."""
    if not d.get("running"):
        return "no watcher is running for this vault on this device"
    lines = [
        f"watcher running: pid {d['pid']} as {d['instance']} since {d['started']}",
        *([f"  paused: {d['paused']}"] if d.get("paused") else []),
        f"  indexing: {'first index in progress' if d.get('indexing') else 'up to date'}",
        f"  lag: {d.get('lag_seconds')} s   batches: {d.get('batches')}   errors: {d.get('errors')}",
    ]
    events = d.get("last_events") or []
    if events:
        lines.append("  last events:")
        for e in events[-10:]:
            moved = f" (from {e['old_path']})" if e.get("old_path") else ""
            lines.append(f"    {e['time']}  {e['kind']:<8} {e['path']}{moved}")
    return "\n".join(lines)
