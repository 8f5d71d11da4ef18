"""Markdown memory folders of other tools, adopted as they are: the folder becomes the vault.

basic-memory projects, OpenClaw workspaces (SOUL.md, MEMORY.md, AGENTS.md,
daily files `memory/YYYY-MM-DD.md`) and the `/memories` folder of Anthropic's
memory tool are already Markdown in a folder a person owns. Nothing is copied
or rewritten: `survey` reports how mirrorfs will read each file (identity,
memory, session, note, not read), and `adopt` makes the folder a vault with
`Vault.init`, which adds `.mirrorfs/config.yaml`, the vault folders and the
files that do not exist yet, and changes no byte of an existing file (checked:
every file's SHA-256 before and after).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mirrorfs import ignore
from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.errors import ImportSourceError, MirrorfsError, UnreadableNoteError
from mirrorfs.memory import MEMORY_DIR
from mirrorfs.session import SESSIONS_DIR
from mirrorfs.vault import CONFIG_FILE, Vault

SOURCE = "markdown"
ROLES = ("identity", "memory", "session", "note", "not_read", "problem")
_DAILY = re.compile(r"^\d{4}-\d{2}-\d{2}\.md$")
_OPENCLAW_FILES = {"AGENTS.md", "IDENTITY.md", "USER.md", "TOOLS.md", "HEARTBEAT.md", "BOOTSTRAP.md"}
_RECALL = "listed by `memory list` and found by `search`; `recall` finds it once it has `type: memory`"


@dataclass
class FolderFile:
    """One file of the folder and how mirrorfs will read it."""

    path: str
    role: str
    remark: str | None = None


@dataclass
class MarkdownReport:
    """What mirrorfs makes of a folder (and, once adopted, what it added)."""

    path: str
    kinds: list[str] = field(default_factory=list)
    files: list[FolderFile] = field(default_factory=list)
    adopted: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # always empty: adoption rewrites nothing

    def of(self, role: str) -> list[FolderFile]:
        return [f for f in self.files if f.role == role]

    def to_dict(self) -> dict[str, Any]:
        return {"source": SOURCE, "path": self.path, "kinds": self.kinds, "adopted": self.adopted,
                "counts": {r: len(self.of(r)) for r in ROLES},
                "files": [asdict(f) for f in self.files], "added": self.added, "changed": self.changed}

    def lines(self) -> list[str]:
        kinds = " and ".join(self.kinds) if self.kinds else "a folder of Markdown notes"
        out = [f"markdown {self.path}: {kinds}"]
        labels = {"identity": "identity", "memory": "memories", "session": "sessions", "note": "notes",
                  "not_read": "not read", "problem": "problems"}
        for role in ROLES:
            found = self.of(role)
            out.append(f"{labels[role]}: {len(found)}")
            out.extend(f"  {f.path}" + (f"  ({f.remark})" if f.remark else "") for f in found)
        if self.adopted:
            out.append(f"adopted: {len(self.added)} file(s) added, {len(self.changed)} existing file(s) changed")
            out.extend(f"  added {a}" for a in self.added)
        else:
            out.append("dry run: nothing was changed. `mirrorfs import markdown PATH --adopt` (or `mirrorfs init "
                       "PATH`) makes this folder a vault: it adds .mirrorfs/config.yaml, the vault folders and "
                       "SOUL.md / README-mirrorfs.md where missing, and changes no existing file.")
        return out


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """(Markdown notes, other files) under *root*, vault-relative, tool folders left out."""
    md = [p.as_posix() for p in ignore.iter_note_paths(root)]
    others = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ignore.IGNORED_DIRS)
        rel_dir = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if not name.endswith(ignore.NOTE_SUFFIX) and not ignore.is_ignored(rel):
                others.append(rel)
    return md, others


def _classify(rel: str, meta: dict, body: str) -> FolderFile:
    kind = str(meta.get("type") or "").strip().lower()
    parts = rel.split("/")
    name = parts[-1]
    if rel == "SOUL.md":
        return FolderFile(rel, "identity", None if kind == "soul" else
                          "no `type: soul` front matter: `mirrorfs soul` and every instance read it as it is")
    if kind == "memory":
        return FolderFile(rel, "memory")
    if kind == "session" or (not kind and len(parts) == 3 and parts[0] == SESSIONS_DIR):
        found = len(msgs.parse(body)[1])
        return FolderFile(rel, "session", None if found else "no mirrorfs message blocks: a session without messages")
    if len(parts) == 2 and parts[0] == MEMORY_DIR:
        daily = "an OpenClaw daily log; " if _DAILY.match(name) else ""
        return FolderFile(rel, "memory", daily + _RECALL)
    remark = None
    if rel == "MEMORY.md":
        remark = "OpenClaw's long-term memory: a note, found by `search`, not by `recall`"
    elif rel in _OPENCLAW_FILES:
        remark = "an OpenClaw workspace file: a note, found by `search`"
    elif meta.get("permalink"):
        remark = "a basic-memory note: read as a note; its observations and relations stay text"
    return FolderFile(rel, "note", remark)


def survey(path: str | os.PathLike) -> MarkdownReport:
    """How mirrorfs will read every file of the folder *path*; changes nothing."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ImportSourceError(f"{root}: not a folder (the markdown source is a folder of notes)")
    root = root.resolve()
    report = MarkdownReport(str(root))
    md, others = _walk(root)
    permalinks = False
    for rel in md:
        try:
            note = notes.read_note(root / rel)
        except UnreadableNoteError as exc:
            report.files.append(FolderFile(rel, "problem", exc.reason))
            continue
        except OSError as exc:
            report.files.append(FolderFile(rel, "problem", f"cannot be read ({exc.strerror or exc})"))
            continue
        entry = _classify(rel, note.meta if not note.error else {}, note.body)
        if note.error:
            entry.remark = "; ".join(x for x in (entry.remark, f"front matter unparseable ({note.error}): read as "
                                                 "plain text, never edited by mirrorfs") if x)
        permalinks = permalinks or bool(note.meta.get("permalink"))
        report.files.append(entry)
    report.files.extend(FolderFile(rel, "not_read", "mirrorfs reads only .md files") for rel in others)
    report.kinds = _kinds(root, md, permalinks)
    return report


def _kinds(root: Path, md: list[str], permalinks: bool) -> list[str]:
    kinds = []
    if (root / CONFIG_FILE).is_file():
        kinds.append("a mirrorfs vault already")
    daily = any(_DAILY.match(r.split("/")[-1]) and r.startswith(MEMORY_DIR + "/") for r in md)
    if _OPENCLAW_FILES & set(md) or ("SOUL.md" in md and ("MEMORY.md" in md or daily)):
        kinds.append("an OpenClaw workspace")
    if permalinks:
        kinds.append("a basic-memory project")
    if root.name == "memories":
        kinds.append("an Anthropic memory-tool /memories folder")
    return kinds


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            with open(p, "rb") as f:
                out[p.relative_to(root).as_posix()] = hashlib.sha256(f.read()).hexdigest()
    return out


def adopt(path: str | os.PathLike, instance: str | None = None, name: str | None = None) -> MarkdownReport:
    """Make the folder *path* a vault in place (Vault.init) and report what was added."""
    report = survey(path)
    root = Path(report.path)
    before = _hashes(root)
    Vault.init(root, name=name, instance=instance)
    after = _hashes(root)
    report.adopted = True
    report.added = sorted(p for p in after if p not in before)
    report.changed = sorted(p for p in before if after.get(p) != before[p])
    if report.changed:  # pragma: no cover - Vault.init never rewrites a file; this guards the promise
        raise MirrorfsError(f"adopting {root} changed existing files: {', '.join(report.changed)}")
    return report
