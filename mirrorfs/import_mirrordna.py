"""MirrorDNA files: sessions exported by `mirrorfs session export --format mirrordna`.

A MirrorDNA file is Markdown whose front matter carries `standard: MirrorDNA`
and `checksum_sha256` (see docs/format.md, "Exports"). The checksum is verified
first: a file whose content does not match it was changed or damaged after the
export, and is reported and not imported. The body holds `# title`, then each
message as `**role** · instance · time`, a blank line and its text; messages
carry no ids there, so a later import matches them by role, time and text.
`predecessor` becomes `previous`/`next` links between the imported sessions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from mirrorfs import note as notes
from mirrorfs.clock import isoformat
from mirrorfs.errors import ImportSourceError, UnreadableNoteError
from mirrorfs.export import CHECKSUM_KEY, verify_mirrordna
from mirrorfs.importer import (
    Expected,
    ImportedMessage,
    ImportedSession,
    Item,
    Progress,
    Skipped,
    from_iso,
)
from mirrorfs.memory import normalise_tags
from mirrorfs.messages import ROLES
from mirrorfs.session import link_target

SOURCE = "mirrordna"
_HEADER = re.compile(r"^\*\*(" + "|".join(ROLES) + r")\*\* · (\S*) · (\d{4}-\d\d-\d\dT\S+)$")


def read(path, progress: Progress | None = None, **_: Any) -> Iterator[Item]:
    """Every MirrorDNA file under *path* (a file or a folder) as an ImportedSession (or a Skipped)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.md") if p.is_file())
        if not files:
            raise ImportSourceError(f"{path}: no .md files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise ImportSourceError(f"{path}: no such file or folder")
    found: list[ImportedSession | Skipped] = []
    for n, f in enumerate(files, 1):
        found.append(read_file(f, f.relative_to(path).as_posix() if path.is_dir() else f.name))
        if progress:
            progress(n, len(files))
    sessions = [s for s in found if isinstance(s, ImportedSession)]
    for s in sessions:
        yield Expected(s.origin_id, s.title, s.created, s.parent)
    yield from found


def read_file(f: Path, name: str) -> ImportedSession | Skipped:
    """One MirrorDNA file, checksum verified."""
    try:
        _, text = notes.decode(notes.read_bytes(f), name)
    except UnreadableNoteError as exc:
        return Skipped(name, exc.reason)
    except OSError as exc:
        return Skipped(name, f"cannot be read ({exc.strerror or exc})")
    note = notes.parse_text(text, name)
    if note.error:
        return Skipped(name, f"its front matter cannot be read ({note.error})")
    meta = note.meta
    if meta.get("standard") != "MirrorDNA":
        return Skipped(name, "not a MirrorDNA file (no `standard: MirrorDNA` in its front matter)")
    if not meta.get(CHECKSUM_KEY):
        return Skipped(name, f"it has no {CHECKSUM_KEY}, so its content cannot be verified; not imported")
    if not verify_mirrordna(text):
        return Skipped(name, f"{CHECKSUM_KEY} does not match its content: it was changed or damaged after "
                             "the export; not imported")
    sid = meta.get("id")
    if not sid:
        return Skipped(name, "it has no id")
    title = str(meta.get("title") or sid)
    messages = parse_body(note.body)
    expected = meta.get("message_count")
    if isinstance(expected, int) and expected != len(messages):
        return Skipped(name, f"{len(messages)} messages read where message_count says {expected}; a message "
                             "text holds a line that looks like a message header, so it cannot be split safely")
    label = f"{name} ({sid})"
    return ImportedSession(
        origin_id=str(sid), title=title, messages=messages, label=label,
        created=from_iso(isoformat(meta.get("created"))), updated=from_iso(isoformat(meta.get("updated"))),
        version=str(meta[CHECKSUM_KEY]), parent=link_target(meta.get("predecessor")),
        category=meta.get("category"), tags=normalise_tags(meta.get("tags")),
        preamble=[f"Imported from the MirrorDNA file `{f.name}` (session `{sid}`, checksum verified)."],
        extra={"origin_instance": str(meta["instance"])} if meta.get("instance") else {},
    )


def parse_body(body: str) -> list[ImportedMessage]:
    """The messages of a MirrorDNA body (`**role** · instance · time`, blank line, text)."""
    lines = body.split("\n")
    starts = [i for i, line in enumerate(lines)
              if _HEADER.match(line) and (i == 0 or not lines[i - 1].strip())
              and (i + 1 >= len(lines) or not lines[i + 1].strip())]
    out = []
    for n, start in enumerate(starts):
        m = _HEADER.match(lines[start])
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        content = "\n".join(lines[start + 2: end]).strip("\n")
        meta = {"origin_instance": m.group(2)} if m.group(2) else {}
        out.append(ImportedMessage(role=m.group(1), content=content, time=from_iso(m.group(3)), meta=meta))
    return out
