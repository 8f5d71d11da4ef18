"""Server-Sent Events, parsed as the WHATWG HTML standard says (§9.2.6).

Fed the lines of a response (httpx's ``Response.iter_lines()`` already splits
on CRLF, LF and a lone CR, across chunk boundaries). We parse ourselves rather
than use ``httpx-sse`` because that package refuses any response whose
Content-Type is not exactly ``text/event-stream``, and OpenAI-compatible local
servers and proxies are not all that careful; the algorithm itself is twenty
lines.

An event still open when the stream ends (no blank line after it) is dropped,
as the standard says: a stream cut in the middle of an event must not look
complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = ["SSEEvent", "parse", "iter_ndjson"]

_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its type (``message`` unless named), data, last id and retry hint."""

    event: str
    data: str
    id: str = ""
    retry: int | None = None

    def json(self):
        """The data parsed as JSON (raises ValueError when it is not)."""
        return json.loads(self.data)


def parse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """The events in a stream of lines (without their line terminators)."""
    event = ""
    data: list[str] = []
    last_id = ""
    retry: int | None = None
    first = True
    for line in lines:
        if first:
            first = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            if data:
                yield SSEEvent(event or "message", "\n".join(data), last_id, retry)
            event, data = "", []
            continue
        if line[0] == ":":
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                retry = int(value)


def iter_ndjson(lines: Iterable[str]) -> Iterator[object]:
    """The JSON values of newline-delimited JSON, skipping blank lines.

    Raises ValueError on a line that is not JSON (a cut line, usually).
    """
    for line in lines:
        if line.strip():
            yield json.loads(line)
