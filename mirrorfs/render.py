"""How search hits and the watcher's status read: text for people, JSON for scripts.

The standard library only, on plain dicts (what `SearchHit.to_dict` gives and
the watcher sends): the full CLI (cli_search, cli_watch) and the lean console
(mirrorfs.console) print through these functions, so their outputs cannot drift.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable

# click.style(text, bold=True), without importing click.
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


def json_text(data: Any, default: Callable[[Any], Any] | None = None) -> str:
    """*data* as the CLI prints it with --json."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=default)


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
