"""Session messages as Markdown blocks: parse, render, merge (docs/format.md).

A message is a `### role · date time` heading a person reads in Obsidian,
followed by an HTML comment carrying the truth as JSON (id, role, time,
instance, metadata), a blank line and the content. Parsing keys on the
heading + comment pair, so headings inside message content are harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

from mirrorfs.errors import InvalidValueError

ROLES = ("user", "assistant", "system", "tool")
COMMENT_PREFIX = "<!-- mirrorfs:message "
_COMMENT = re.compile(r"^<!-- mirrorfs:message (\{.*\}) -->[ \t]*\r?$")


@dataclass
class Message:
    """One message of a session."""

    id: str
    role: str
    time: dt.datetime
    instance: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "time": format_time(self.time),
            "instance": self.instance,
            "content": self.content,
            **({"meta": self.meta} if self.meta else {}),
        }


def now() -> dt.datetime:
    """The current time, aware, in the local zone, to the millisecond."""
    t = dt.datetime.now().astimezone()
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def format_time(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def isoformat(value: Any) -> Any:
    """A front-matter value for JSON: dates and times as ISO text, anything else as is."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def parse_time(value: Any) -> dt.datetime:
    """An aware datetime from an ISO string, datetime or date (naive means UTC)."""
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    else:
        t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def new_id(t: dt.datetime) -> str:
    """A message id that sorts by time and is unique across instances."""
    utc = t.astimezone(dt.timezone.utc)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}-" + secrets.token_hex(3)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def make(role: str, content: str, instance: str, time: dt.datetime | None = None, **meta: Any) -> Message:
    """A new message with a fresh id."""
    check_role(role)
    t = time or now()
    return Message(id=new_id(t), role=role, time=t, instance=instance, content=content, meta=meta)


def _json(obj: dict) -> str:
    # Escaped so that metadata can never close the HTML comment early.
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(msg: Message, newline: str = "\n") -> str:
    """The Markdown block of one message, starting with a blank line."""
    header = {"id": msg.id, "role": msg.role, "time": format_time(msg.time), "instance": msg.instance}
    header.update({k: v for k, v in msg.meta.items() if k not in header})
    content = msg.content.replace("\r\n", "\n").strip("\n")
    lines = [
        "",
        f"### {msg.role} · {msg.time.strftime('%Y-%m-%d %H:%M')}",
        COMMENT_PREFIX + _json(header) + " -->",
        "",
        *content.split("\n"),
    ]
    return newline.join(lines) + newline


def _header(line: str, next_line: str) -> dict | None:
    """The JSON of a message that starts at *line*, or None if none starts there."""
    if not line.startswith("### ") or not next_line.startswith(COMMENT_PREFIX):
        return None
    m = _COMMENT.match(next_line.rstrip("\n"))
    if not m:
        return None
    try:
        header = json.loads(m.group(1))
    except ValueError:
        return None
    return header if isinstance(header, dict) and "id" in header else None


def parse(body: str) -> tuple[str, list[Message]]:
    """Split a session body into its preamble and its messages, in file order."""
    lines = body.splitlines(keepends=True)
    starts: list[int] = []
    headers: list[dict] = []
    for i in range(len(lines) - 1):
        header = _header(lines[i], lines[i + 1])
        if header is not None:
            starts.append(i)
            headers.append(header)
    if not starts:
        return body, []
    preamble = "".join(lines[: starts[0]])
    messages = []
    for n, (start, header) in enumerate(zip(starts, headers)):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        content = "".join(lines[start + 2 : end]).replace("\r\n", "\n").strip("\n")
        meta = {k: v for k, v in header.items() if k not in ("id", "role", "time", "instance")}
        messages.append(
            Message(
                id=str(header.get("id", "")),
                role=str(header.get("role", "")),
                time=parse_time(header["time"]) if header.get("time") else parse_time("1970-01-01"),
                instance=str(header.get("instance", "")),
                content=content,
                meta=meta,
            )
        )
    return preamble, messages


def merge(*sides: Iterable[Message]) -> list[Message]:
    """Union of messages by id, ordered by time (then id, for a stable order)."""
    seen: dict[str, Message] = {}
    for side in sides:
        for msg in side:
            seen.setdefault(msg.id, msg)
    return sorted(seen.values(), key=lambda m: (m.time, m.id))


def find(text: str, msg_id: str) -> Message | None:
    """The message *msg_id* of a session's text, found by its id without parsing the rest."""
    key = COMMENT_PREFIX + '{"id": ' + json.dumps(msg_id, ensure_ascii=False)
    at = text.find(key)
    if at < 0:  # written by another tool with other JSON spacing: parse it all
        return next((m for m in parse(text)[1] if m.id == msg_id), None)
    start = text.rfind("\n", 0, max(0, text.rfind("\n", 0, at))) + 1
    nxt = text.find("\n" + COMMENT_PREFIX, at + len(key))
    end = text.rfind("\n", 0, nxt) + 1 if nxt >= 0 else len(text)
    return next((m for m in parse(text[start:end])[1] if m.id == msg_id), None)
