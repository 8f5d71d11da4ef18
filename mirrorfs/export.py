"""Session exports: json, markdown, txt, and MirrorDNA (checksummed Markdown)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from mirrorfs import note as notes
from mirrorfs.errors import InvalidValueError

if TYPE_CHECKING:
    from mirrorfs.session import Session

CHECKSUM_KEY = "checksum_sha256"
EXPORT_FORMATS = ("json", "markdown", "txt", "mirrordna")


def mirrordna_checksum(text: str) -> str:
    """SHA-256 of *text* with every line starting `checksum_sha256:` removed (MirrorDNA rule)."""
    kept = "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith(CHECKSUM_KEY + ":")
    )
    return hashlib.sha256(kept.encode("utf-8")).hexdigest()


def verify_mirrordna(text: str) -> bool:
    """True when the `checksum_sha256` in *text*'s front matter matches its content."""
    meta = notes.parse_text(text).meta
    return meta.get(CHECKSUM_KEY) == mirrordna_checksum(text)


def export_session(session: "Session", format: str) -> str:
    """The session as json, markdown, txt or mirrordna (see docs/format.md)."""
    if format not in EXPORT_FORMATS:
        raise InvalidValueError(f"unknown export format {format!r}: use one of {', '.join(EXPORT_FORMATS)}")
    data = session.to_dict(messages=True)
    if format == "json":
        return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if format == "txt":
        lines = [data["title"], "=" * len(data["title"]), ""]
        for m in data["messages"]:
            lines.append(f"[{m['time']}] {m['role']} ({m['instance']}):")
            lines.extend(m["content"].split("\n"))
            lines.append("")
        return "\n".join(lines)
    body = _markdown_body(data)
    if format == "markdown":
        return body
    return _mirrordna(data, body)


def _markdown_body(data: dict) -> str:
    lines = [f"# {data['title']}", ""]
    for m in data["messages"]:
        lines.append(f"**{m['role']}** · {m['instance']} · {m['time']}")
        lines.append("")
        lines.extend(m["content"].split("\n"))
        lines.append("")
    return "\n".join(lines)


def _mirrordna(data: dict, body: str) -> str:
    meta = {
        "id": data["id"],
        # Not `session`: an export saved inside the vault is a copy, not a second session.
        "type": "export",
        "exported": "session",
        "title": data["title"],
        "instance": data["instance"],
        "created": data["created"],
        "updated": data["updated"],
        "tags": data["tags"] or None,
        "category": data["category"],
        "message_count": data["message_count"],
        "predecessor": f"[[{data['previous']}]]" if data["previous"] else None,
        "successor": f"[[{data['next']}]]" if data["next"] else None,
        "standard": "MirrorDNA",
    }
    unsigned = notes.new(meta, body).render().decode("utf-8")
    checksum = mirrordna_checksum(unsigned)
    signed = notes.parse_text(unsigned).set(CHECKSUM_KEY, checksum)
    return signed.render().decode("utf-8")
