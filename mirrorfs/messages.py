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

from mirrorfs.clock import format_time, now, parse_time
from mirrorfs.errors import InvalidValueError

ROLES = ("user", "assistant", "system", "tool")
COMMENT_PREFIX = "<!-- mirrorfs:message "


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


def new_id(t: dt.datetime) -> str:
    """A message id that sorts by time and is unique across instances."""
    utc = t.astimezone(dt.timezone.utc)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}-" + secrets.token_hex(3)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_content(content: Any, what: str = "a message") -> str:
    """The text of a message or memory as mirrorfs can keep it: non-empty text without NUL bytes."""
    if not isinstance(content, str):
        raise InvalidValueError(f"{what} must be text")
    if "\x00" in content:
        raise InvalidValueError(
            f"{what} contains a NUL byte: notes are Markdown text, so binary data cannot be kept; nothing was written"
        )
    if not content.strip():
        raise InvalidValueError(f"{what} needs some text; nothing was written")
    return content


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


# A message starts at a `### ` heading line followed by its JSON comment line.
# One regex over the whole body: the reader every module uses (index, merges,
# reflections, snippets), so they all agree on where a message starts.
_BLOCK = re.compile(r"^### [^\r\n]*\r?\n<!-- mirrorfs:message (\{.*\}) -->[ \t]*\r?$", re.M)
# How `render` writes the JSON: the id first. Reading it needs no JSON decode,
# which matters for sessions with thousands of messages.
_FIRST_ID = re.compile(r'^\{"id": "([^"\\]*)"')


@dataclass(frozen=True)
class Block:
    """Where one message sits in a session body, and its header JSON undecoded."""

    start: int  # the `### ` heading line
    content_start: int  # just after the comment line
    end: int  # the next message's heading, or the end of the body
    raw: str  # the header JSON text
    id: str

    def header(self) -> dict:
        """The header decoded (just the id when the JSON after it is damaged)."""
        try:
            data = json.loads(self.raw)
        except ValueError:
            return {"id": self.id}
        return data if isinstance(data, dict) else {"id": self.id}


def _block_id(raw: str) -> str | None:
    fast = _FIRST_ID.match(raw)
    if fast:
        return fast.group(1)
    try:
        header = json.loads(raw)
    except ValueError:
        return None
    return str(header["id"]) if isinstance(header, dict) and "id" in header else None


def blocks(body: str) -> list[Block]:
    """Every message block of a session body, in file order."""
    found: list[tuple[int, int, str, str]] = []
    for m in _BLOCK.finditer(body):
        msg_id = _block_id(m.group(1))
        if msg_id is None:
            continue
        content_start = m.end() + 1 if body.startswith("\n", m.end()) else m.end()
        found.append((m.start(), content_start, m.group(1), msg_id))
    out = []
    for n, (start, content_start, raw, msg_id) in enumerate(found):
        end = found[n + 1][0] if n + 1 < len(found) else len(body)
        out.append(Block(start, content_start, end, raw, msg_id))
    return out


def message_of(body: str, block: Block) -> Message:
    """The Message a block holds."""
    header = block.header()
    content = body[block.content_start:block.end].replace("\r\n", "\n").strip("\n")
    meta = {k: v for k, v in header.items() if k not in ("id", "role", "time", "instance")}
    try:
        time = parse_time(header["time"]) if header.get("time") else parse_time("1970-01-01")
    except (TypeError, ValueError):
        time = parse_time("1970-01-01")
    return Message(
        id=block.id,
        role=str(header.get("role", "")),
        time=time,
        instance=str(header.get("instance", "")),
        content=content,
        meta=meta,
    )


def torn_tail(text: str) -> int | None:
    """Where a message block cut short by a crash starts at the end of *text*, or None.

    A flat append writes a whole block in one write and fsyncs it; a crash in
    between can leave its first bytes: a heading and an unfinished comment line,
    with no line ending. Nothing else is taken for one (a person's last line
    without a newline is not).
    """
    if not text or text.endswith("\n"):
        return None
    start = text.rfind("\n### ")
    if start < 0:
        return None
    lines = text[start + 1:].split("\n")
    if len(lines) != 2 or not lines[0].startswith("### "):
        return None
    comment = lines[1]
    partial = COMMENT_PREFIX.startswith(comment) or (comment.startswith(COMMENT_PREFIX) and "-->" not in comment)
    return start + 1 if comment and partial else None


def parse(body: str) -> tuple[str, list[Message]]:
    """Split a session body into its preamble and its messages, in file order."""
    found = blocks(body)
    if not found:
        return body, []
    return body[: found[0].start], [message_of(body, b) for b in found]


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
