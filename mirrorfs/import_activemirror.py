"""ActiveMirrorOS (the MirrorDNA SDK): its SQLite store, session JSON, Markdown/txt exports, VaultMemory.

Formats, as the SDK writes them (sdk/python/activemirror):

* SQLite (`storage/sqlite.py`): tables `sessions` (id, user_id, title,
  parent_session_id, created_at, updated_at, status, metadata JSON) and
  `messages` (id, session_id, role, content, timestamp, metadata JSON). The
  store runs in WAL mode; it is read from a private copy, never opened in place.
* Session JSON (`Session.to_dict()`): the same fields plus `messages`.
* `Session.export("markdown")` and `("txt")`: title, session id, times, then
  each message with its role and time (no message ids: those messages are
  matched by role, time and text on a later import).
* `VaultMemory`: one `<key>.vault` file per entry, a Fernet token of
  `{"key", "value", "metadata", "created_at", "updated_at"}`, the key being
  PBKDF2-HMAC-SHA256(password, b"activemirror_vault", 100,000 iterations) or a
  raw Fernet key. Entries become sealed memory notes: their text is never
  written in the clear.

Times are naive (`datetime.now()` on the device that ran the SDK): they are
read in this machine's local zone unless the caller names another one.
`parent_session_id` becomes `previous`/`next` links; system (context) messages
stay system messages with their `context_type` in `origin_meta`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterator

from mirrorfs.errors import ImportPasswordError, ImportSourceError
from mirrorfs.importer import (
    Expected,
    ImportedMemory,
    ImportedMessage,
    ImportedSession,
    Item,
    Progress,
    Skipped,
    fenced,
    from_iso,
)
from mirrorfs.messages import ROLES

SOURCE = "activemirror"
VAULT_SALT = b"activemirror_vault"
VAULT_ITERATIONS = 100_000
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MD_ROLE = re.compile(r"^### \S+ (User|Assistant|System|Tool)\s*$")
_MD_TIME = re.compile(r"^\*(\d{4}-\d\d-\d\dT[0-9:.+\-]+)\*\s*$")
_TXT_ROLE = re.compile(r"^\[(USER|ASSISTANT|SYSTEM|TOOL)\] (\d{4}-\d\d-\d\dT\S+)\s*$")
_TXT_RULE = "-" * 60


def read(path, password: str | None = None, progress: Progress | None = None,
         naive_tz: dt.tzinfo | None = None, **_: Any) -> Iterator[Item]:
    """Everything importable under *path* (a store, an export, a vault folder, or a folder of them).

    Checks the vault password before yielding anything, so a wrong one writes nothing.
    """
    files = _files(Path(path))
    entries = [f for f in files if f.suffix == ".vault"]
    memories, problems = _open_vault(entries, password) if entries else ([], [])
    found: list[ImportedSession | Skipped] = []
    others = [f for f in files if f.suffix != ".vault"]
    for n, f in enumerate(others, 1):
        found.extend(_read_file(f, naive_tz))
        if progress:
            progress(n, len(others))
    yield from problems
    yield from memories
    sessions = [s for s in found if isinstance(s, ImportedSession)]
    for s in sessions:
        yield Expected(s.origin_id, s.title, s.created, s.parent)
    yield from (s for s in found if isinstance(s, Skipped))
    yield from sorted(sessions, key=lambda s: (s.created or dt.datetime.min.replace(tzinfo=dt.timezone.utc)))


def _files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix in (".vault", ".json", ".md", ".txt") or _is_sqlite(path):
            return [path]
        raise ImportSourceError(f"{path}: not an ActiveMirrorOS store, session export or vault entry")
    if not path.is_dir():
        raise ImportSourceError(f"{path}: no such file or folder")
    found = [p for p in sorted(path.rglob("*")) if p.is_file() and (
        p.suffix in (".vault", ".json", ".md", ".txt") or (not p.name.endswith(("-wal", "-shm")) and _is_sqlite(p)))]
    if not found:
        raise ImportSourceError(f"{path}: no ActiveMirrorOS store, export or vault entry in this folder")
    return found


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def _read_file(f: Path, naive_tz) -> list[ImportedSession | Skipped]:
    try:
        if _is_sqlite(f):
            return _sqlite(f, naive_tz)
        text = f.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return [Skipped(f.name, "not UTF-8 text")]
    except OSError as exc:
        return [Skipped(f.name, f"cannot be read ({exc.strerror or exc})")]
    if f.suffix == ".json":
        return _json(f, text, naive_tz)
    if f.suffix == ".md":
        return [_markdown(f, text, naive_tz)]
    return [_txt(f, text, naive_tz)]


# -- sessions ------------------------------------------------------------------


def _status(value: Any) -> str:
    return "closed" if value == "completed" else "open"


def _version(updated: Any, messages: list[dict]) -> str:
    # The SDK saves messages without touching the session's updated_at, so the
    # count and the last time are part of what "unchanged" means.
    last = max((str(m.get("timestamp")) for m in messages if isinstance(m, dict) and m.get("timestamp")), default="")
    return f"{updated or ''};{len(messages)};{last}"


def _message(raw: dict, naive_tz, label: str, problems: list[Skipped]) -> ImportedMessage | None:
    role = str(raw.get("role") or "")
    content = raw.get("content")
    if not isinstance(content, str):
        problems.append(Skipped(f"{label}: message {raw.get('id')}", "it has no text content"))
        return None
    meta: dict[str, Any] = {}
    if role not in ROLES:
        meta["origin_role"] = role
        role = "tool"
    metadata = raw.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata or "{}")
        except ValueError:
            metadata = {"raw": metadata}
    if isinstance(metadata, dict):
        metadata = {k: v for k, v in metadata.items() if k != "session_id"}  # the session says that
        if metadata:
            meta["origin_meta"] = metadata
    mid = raw.get("id")
    return ImportedMessage(role, content, from_iso(raw.get("timestamp"), naive_tz),
                           str(mid) if mid is not None else None, meta)


def _session(data: dict, messages: list[dict], naive_tz, where: str) -> ImportedSession | Skipped:
    sid = data.get("id")
    title = str(data.get("title") or "Untitled Conversation")
    label = f"session {json.dumps(title, ensure_ascii=False)} ({sid}) in {where}"
    if not isinstance(sid, str) or not sid:
        return Skipped(f"a session in {where}", 'it has no "id"')
    problems: list[Skipped] = []
    converted = [m for m in (_message(m, naive_tz, label, problems) for m in messages if isinstance(m, dict)) if m]
    preamble = [f"Imported from ActiveMirrorOS (session `{sid}`)."]
    metadata = data.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata or "{}")
        except ValueError:
            pass
    if metadata:
        preamble.append("ActiveMirrorOS metadata: " + json.dumps(metadata, ensure_ascii=False, sort_keys=True))
    if not data.get("created_at") and data.get("_orphan"):
        preamble.append("The store has no session record for these messages (the SDK saves a session only on save()).")
    extra = {"origin_user": str(data["user_id"])} if data.get("user_id") else {}
    session = ImportedSession(
        origin_id=sid, title=title, messages=converted, label=label,
        created=from_iso(data.get("created_at"), naive_tz), updated=from_iso(data.get("updated_at"), naive_tz),
        version=_version(data.get("updated_at"), messages), parent=data.get("parent_session_id") or None,
        status=_status(data.get("status")), preamble=preamble, extra=extra, skipped=problems,
    )
    return session


def _sqlite(path: Path, naive_tz) -> list[ImportedSession | Skipped]:
    # A private copy: reading a WAL store in place would create -shm/-wal files beside it.
    with tempfile.TemporaryDirectory(prefix="mirrorfs-import-") as tmp:
        copy = Path(tmp) / "store.db"
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        con = sqlite3.connect(str(copy))
        con.row_factory = sqlite3.Row
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"sessions", "messages"} <= tables:
                return [Skipped(path.name, "an SQLite file without the ActiveMirrorOS sessions/messages tables")]
            rows = [dict(r) for r in con.execute("SELECT * FROM sessions ORDER BY created_at")]
            by_session: dict[str, list[dict]] = {}
            for r in con.execute("SELECT * FROM messages ORDER BY timestamp, rowid"):
                by_session.setdefault(str(r["session_id"]), []).append(dict(r))
        except sqlite3.DatabaseError as exc:
            return [Skipped(path.name, f"the SQLite store cannot be read ({exc})")]
        finally:
            con.close()
    known = {str(r["id"]) for r in rows}
    orphans = [{"id": sid, "_orphan": True} for sid in by_session if sid not in known]
    return [_session(r, by_session.get(str(r["id"]), []), naive_tz, path.name) for r in rows + orphans]


def _json(f: Path, text: str, naive_tz) -> list[ImportedSession | Skipped]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [Skipped(f.name, f"not valid JSON ({exc})")]
    items = data if isinstance(data, list) else [data]
    out: list[ImportedSession | Skipped] = []
    for n, d in enumerate(items, 1):
        if not isinstance(d, dict) or not isinstance(d.get("messages"), list):
            out.append(Skipped(f"{f.name} item {n}" if len(items) > 1 else f.name,
                               "not an ActiveMirrorOS session (Session.to_dict() with messages)"))
            continue
        out.append(_session(d, d["messages"], naive_tz, f.name))
    return out


def _field(text: str, pattern: str) -> str | None:
    m = re.search(pattern, text, re.M)
    return m.group(1).strip() if m else None


def _markdown(f: Path, text: str, naive_tz) -> ImportedSession | Skipped:
    sid = _field(text, r"^\*\*Session ID\*\*: (.+)$")
    if not sid or "\n## Messages\n" not in text:
        return Skipped(f.name, "not an ActiveMirrorOS Markdown export (no **Session ID** and ## Messages)")
    lines = text.split("## Messages\n", 1)[1].split("\n")
    starts = [i for i, line in enumerate(lines) if _MD_ROLE.match(line) and (i + 1 >= len(lines) or not lines[i + 1].strip())]
    messages: list[dict] = []
    for n, start in enumerate(starts):
        block = lines[start + 2: starts[n + 1] if n + 1 < len(starts) else len(lines)]
        stamp = max((i for i, line in enumerate(block) if _MD_TIME.match(line)), default=None)
        if stamp is None:
            return Skipped(f.name, f"message {n + 1} has no *time* line; the file was changed or cut")
        messages.append({"role": _MD_ROLE.match(lines[start]).group(1).lower(),
                         "content": "\n".join(block[:stamp]).strip("\n"),
                         "timestamp": _MD_TIME.match(block[stamp]).group(1)})
    data = {"id": sid, "title": _field(text, r"^# (.+)$"), "created_at": _field(text, r"^\*\*Created\*\*: (.+)$"),
            "updated_at": _field(text, r"^\*\*Updated\*\*: (.+)$"), "status": _field(text, r"^\*\*Status\*\*: (.+)$")}
    return _session(data, messages, naive_tz, f.name)


def _txt(f: Path, text: str, naive_tz) -> ImportedSession | Skipped:
    sid = _field(text, r"^ID: (.+)$")
    if not sid or not text.startswith("Session: "):
        return Skipped(f.name, "not an ActiveMirrorOS text export (no Session: and ID: lines)")
    body = text.split("=" * 60 + "\n", 1)[1] if "=" * 60 + "\n" in text else ""
    messages: list[dict] = []
    for n, block in enumerate(b for b in body.split("\n" + _TXT_RULE + "\n") if b.strip()):
        lines = block.strip("\n").split("\n")
        m = _TXT_ROLE.match(lines[0])
        if not m:
            return Skipped(f.name, f"block {n + 1} does not start with [ROLE] time; the file was changed or cut")
        messages.append({"role": m.group(1).lower(), "content": "\n".join(lines[1:]).strip("\n"),
                         "timestamp": m.group(2)})
    data = {"id": sid, "title": _field(text, r"^Session: (.+)$"), "created_at": _field(text, r"^Created: (.+)$")}
    return _session(data, messages, naive_tz, f.name)


# -- VaultMemory ---------------------------------------------------------------


def vault_keys(password: str) -> list:
    """The Fernet keys *password* can stand for: itself as a raw key, and the SDK's derived key."""
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    keys = []
    try:
        keys.append(Fernet(password.strip().encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        pass
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=VAULT_SALT, iterations=VAULT_ITERATIONS)
    keys.append(Fernet(base64.urlsafe_b64encode(kdf.derive(password.encode("utf-8")))))
    return keys


def _open_vault(entries: list[Path], password: str | None) -> tuple[list[ImportedMemory], list[Skipped]]:
    from cryptography.fernet import InvalidToken

    folder = entries[0].parent
    if password is None:
        raise ImportPasswordError(
            f"{folder} holds {len(entries)} ActiveMirrorOS vault entr{'y' if len(entries) == 1 else 'ies'} (*.vault): "
            "give --password-file FILE with its password or raw Fernet key; nothing was imported")
    tokens = {}
    for e in entries:
        try:
            tokens[e] = e.read_bytes()
        except OSError:
            tokens[e] = None
    keys = vault_keys(password)
    opened: list[dict] = [{} for _ in keys]
    for i, key in enumerate(keys):
        for e, token in tokens.items():
            try:
                opened[i][e] = key.decrypt(token) if token else None
            except InvalidToken:
                continue
    best = max(range(len(keys)), key=lambda i: sum(v is not None for v in opened[i].values()))
    plain = opened[best]
    if not any(v is not None for v in plain.values()):
        raise ImportPasswordError(
            f"the password does not open the ActiveMirrorOS vault {folder}: none of its {len(entries)} "
            "entries decrypts with it (as a password or as a raw Fernet key); nothing was imported")
    memories: list[ImportedMemory] = []
    problems: list[Skipped] = []
    for e in entries:
        label = f"vault entry {e.stem}"
        data = plain.get(e)
        if data is None:
            problems.append(Skipped(label, "cannot be read or does not decrypt with the key that opens the others "
                                    "(changed, damaged or under another key)"))
            continue
        try:
            entry = json.loads(data.decode("utf-8"))
            key = str(entry["key"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            problems.append(Skipped(label, "decrypts, but is not an ActiveMirrorOS entry (JSON with a key)"))
            continue
        memories.append(_memory(entry, key, label, tokens[e]))
    return memories, problems


def _memory(entry: dict, key: str, label: str, token: bytes) -> ImportedMemory:
    value = entry.get("value")
    text = value if isinstance(value, str) else fenced(json.dumps(value, ensure_ascii=False, indent=2), "json")
    metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
    # Everything that was encrypted stays inside the sealed body: metadata and times too.
    details = {k: v for k, v in (("metadata", metadata), ("created_at", entry.get("created_at")),
                                 ("updated_at", entry.get("updated_at"))) if v}
    if details:
        text += "\n\nActiveMirrorOS entry: " + json.dumps(details, ensure_ascii=False, sort_keys=True)
    # The key is the entry's file name in the vault folder: already in the clear there.
    # The version is a hash of the token (public ciphertext), not a time from inside it.
    return ImportedMemory(origin_id=key, title=key, text=text, label=label, secret=True,
                          version=hashlib.sha256(token).hexdigest()[:16])
