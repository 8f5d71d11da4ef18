"""The full-text index of a vault. Every use of Whoosh lives in this module.

Layout, in the per-device state folder (never in the vault)::

    <state>/index/CURRENT          name of the live generation (replaced atomically)
    <state>/index/write.lock       one writer at a time, across processes
    <state>/index/gen-<hex>/       Whoosh segments + catalog.pickle

The *catalog* is a compact table of every note file the index holds: its stat
(mtime, size, inode), SHA-256 and a small summary of its front matter. It is
what makes the index always fresh without a watcher: `reconcile` stats the
vault, compares with the catalog and only opens Whoosh when something changed.
A full rebuild writes a new generation beside the live one and switches
CURRENT when done, so a reader in another process keeps answering from the old
generation meanwhile.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import multiprocessing
import os
import pickle
import re
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import filelock
import whoosh
from whoosh import analysis as wanalysis
from whoosh import fields as wfields
from whoosh import index as windex
from whoosh import qparser
from whoosh import query as wquery
from whoosh import scoring as wscoring
from whoosh.codec.whoosh3 import W3Codec
from whoosh.lang.porter import stem as _porter_stem
from whoosh.system import pack_uint as _pack_uint
from whoosh.writing import SegmentWriter

from mirrorfs import ignore, storage
from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs.clock import naive_utc
from mirrorfs.conflict_markers import indexable  # a note with git conflict markers: each side once
from mirrorfs.conflict_names import (
    conflict_original,  # sync conflict copies are not notes
)
from mirrorfs.crypto import strip_sections  # ciphertext must never become search terms
from mirrorfs.errors import (
    MirrorfsError,
    QueryError,
    SearchIndexError,
    UnreadableNoteError,
)

log = logging.getLogger(__name__)

# Bump when the schema, the analyzer or the catalog change: an index of another
# version is rebuilt on first use.
SCHEMA_VERSION = 4
ENGINE = f"whoosh-{whoosh.versionstring()}"
DEFAULT_MAX_BYTES = note_mod.DEFAULT_MAX_BYTES
# Below this many files a rebuild runs in-process: starting workers costs more.
PARALLEL_MIN_FILES = 400
# How long a query waits for another process's writer before answering from
# the index as it is (a full rebuild can take minutes on a big vault).
QUERY_LOCK_WAIT = 2.0
# How long anything waits for a writer when there is no usable index at all.
REBUILD_LOCK_WAIT = 30 * 60.0

# --------------------------------------------------------------------------
# Analysis: English words stemmed; CJK (and Thai) runs as overlapping bigrams.

# Scripts written without spaces between words. A run of them is indexed as
# overlapping character bigrams, so any substring of two or more characters is
# findable (a query's run becomes a phrase of the same bigrams).
_NOSPACE = (
    "\u0e00-\u0e7f"  # Thai
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035"  # 々〆〇, Hangzhou numerals, kana marks
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compat, Katakana ext
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\ua960-\ua97f\uac00-\ud7af"  # Hangul
    "\uff66-\uff9f"  # halfwidth Katakana
    "\U00020000-\U0003134f"  # Han extensions
)
_TOKEN = re.compile(
    rf"(?P<run>[{_NOSPACE}]+)|(?P<word>[^\W{_NOSPACE}]+(?:\.[^\W{_NOSPACE}]+)*)"
)
_STOP = frozenset(wanalysis.STOP_WORDS)
_STEM_CACHE: dict[str, str] = {}


def _stem(word: str) -> str:
    s = _STEM_CACHE.get(word)
    if s is None:
        s = _porter_stem(word) if word.isascii() and word.isalpha() else word
        if len(_STEM_CACHE) > 200_000:
            _STEM_CACHE.clear()
        _STEM_CACHE[word] = s
    return s


class MirrorAnalyzer(wanalysis.Analyzer):
    """Tokenize, lowercase, drop English stop words, stem; CJK runs as bigrams.

    One fused loop instead of Whoosh's chain of generator filters: indexing
    spends most of its time here.
    """

    def __init__(self, minsize: int = 2, maxsize: int = 40):
        self.minsize = minsize
        self.maxsize = maxsize

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", **kwargs):
        t = wanalysis.Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        t.boost = 1.0
        t.stopped = False
        if not tokenize:
            # Prefix and wildcard queries: lowercase only, never stem a fragment.
            t.original = t.text = value.lower()
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar = start_char
                t.endchar = start_char + len(value)
            yield t
            return
        minsize, maxsize = self.minsize, self.maxsize
        pos = start_pos
        for m in _TOKEN.finditer(value):
            word = m.group("word")
            if word is not None:
                w = word.lower()
                n = len(w)
                if n < minsize or n > maxsize:
                    continue
                if w in _STOP:
                    if removestops:
                        continue
                    t.stopped = True
                    t.text = w
                else:
                    t.stopped = False
                    t.text = _stem(w)
                if keeporiginal:
                    t.original = word
                if positions:
                    t.pos = pos
                    pos += 1
                if chars:
                    t.startchar = start_char + m.start()
                    t.endchar = start_char + m.end()
                yield t
            else:
                run = m.group("run")
                base = start_char + m.start()
                t.stopped = False
                if len(run) == 1:
                    grams = ((run, 0),)
                else:
                    grams = ((run[i:i + 2], i) for i in range(len(run) - 1))
                for gram, i in grams:
                    t.text = gram
                    if keeporiginal:
                        t.original = gram
                    if positions:
                        t.pos = pos
                        pos += 1
                    if chars:
                        t.startchar = base + i
                        t.endchar = base + i + len(gram)
                    yield t


def term_positions(value: str, minsize: int = 2, maxsize: int = 40) -> dict[str, list[int]]:
    """The terms of *value* with their positions, exactly as MirrorAnalyzer
    yields them, in one loop without Token objects (indexing's hot path)."""
    poses: dict[str, list[int]] = {}
    pos = 0
    stop = _STOP
    stem = _STEM_CACHE.get
    for m in _TOKEN.finditer(value):
        run, word = m.groups()
        if word is not None:
            w = word.lower()
            if not minsize <= len(w) <= maxsize or w in stop:
                continue
            w = stem(w) or _stem(w)
            grams = (w,)
        elif len(run) == 1:
            grams = (run,)
        else:
            grams = [run[i:i + 2] for i in range(len(run) - 1)]
        for g in grams:
            lst = poses.get(g)
            if lst is None:
                poses[g] = [pos]
            else:
                lst.append(pos)
            pos += 1
    return poses


# Positions between the weighted parts of a body, so that no phrase spans two.
PART_GAP = 100


class FastText(wfields.TEXT):
    """TEXT indexed through `term_positions` (same terms as its analyzer).

    The value may also be a tuple of (text, weight) parts: a term's posting
    weight is then the weighted sum of its counts in the parts, which is how
    BM25F combines fields before saturating term frequency.
    """

    def index(self, value, **kwargs):
        fb = self.format.field_boost
        encode = self.format.encode
        if isinstance(value, str):
            for w, poslist in term_positions(value).items():
                n = len(poslist)
                yield w.encode("utf-8"), n, n * fb, encode(poslist)
            return
        poses: dict[str, list[int]] = {}
        weights: dict[str, float] = {}
        start = 0
        for text, weight in value:
            last = start
            for w, poslist in term_positions(text).items():
                shifted = [p + start for p in poslist]
                poses.setdefault(w, []).extend(shifted)
                weights[w] = weights.get(w, 0.0) + weight * len(poslist)
                last = max(last, shifted[-1])
            start = last + PART_GAP
        for w, poslist in poses.items():
            yield w.encode("utf-8"), len(poslist), weights[w] * fb, encode(poslist)


class FastID(wfields.ID):
    """An ID whose value is its one term, without Whoosh's analyzer chain."""

    def index(self, value, **kwargs):
        yield value.encode("utf-8"), 1, self.format.field_boost, b""


class FastTags(wfields.KEYWORD):
    """Comma-separated lowercase keywords, without Whoosh's analyzer chain."""

    def index(self, value, **kwargs):
        fb = self.format.field_boost
        counts: dict[str, int] = {}
        for w in value.split(","):
            w = w.strip().lower()
            if w:
                counts[w] = counts.get(w, 0) + 1
        for w, n in counts.items():
            yield w.encode("utf-8"), n, n * fb, _pack_uint(n)


_ANALYZER = MirrorAnalyzer()


def make_schema() -> wfields.Schema:
    """One document per note file and one per session message (type "message").

    Message documents are kept lean (they are most of the documents): no
    `updated`, no title, and only what a hit needs is stored; the session's
    title comes from the catalog. Keyword fields hold lowercase values (the
    query side lowercases too) so they need no analyzer chain. Dates are
    indexed as one `YYYYMMDD` term (UTC day): a range is a term range, and a
    message costs one date posting instead of Whoosh's eight numeric ones.
    """
    text = MirrorAnalyzer()
    return wfields.Schema(
        path=FastID(stored=True),  # vault-relative, POSIX separators
        id=FastID(stored=True),
        type=FastID(stored=True),
        title=FastText(analyzer=text, stored=True, field_boost=3.0, multitoken_query="phrase"),
        aliases=FastText(analyzer=text, field_boost=2.0, multitoken_query="phrase"),
        # `tags` filters (`tag:x`, also on a session's messages); `keywords`
        # holds a note's own tags for ranking words that are tags.
        tags=FastTags(stored=True, commas=True, lowercase=True),
        keywords=FastTags(commas=True, lowercase=True, scorable=True, field_boost=2.0),
        kind=FastID(stored=True),
        tier=FastID(stored=True),
        category=FastID(stored=True),
        instance=FastID(stored=True),
        updated_by=FastID,
        role=FastID(stored=True),
        created=FastID,  # YYYYMMDD, UTC
        updated=FastID,
        created_at=wfields.STORED,  # the exact times, for results
        updated_at=wfields.STORED,
        body=FastText(analyzer=text, multitoken_query="phrase"),
        msg=wfields.STORED,  # message id
        flags=wfields.KEYWORD(stored=True),
    )


# Keyword fields whose values are compared lowercase.
LOWER_FIELDS = ("type", "kind", "tier", "category", "instance", "updated_by", "role")


def _ts(t: dt.datetime | None) -> float | None:
    """A naive-UTC datetime as a POSIX timestamp (the catalog pickles floats
    several times faster than datetimes)."""
    return t.replace(tzinfo=dt.timezone.utc).timestamp() if t is not None else None


def _day(t: dt.datetime | None) -> str | None:
    return t.strftime("%Y%m%d") if t is not None else None


# Names a query may use, mapped to schema fields.
QUERY_FIELDS = {
    "title": "title", "body": "body", "tag": "tags", "tags": "tags", "alias": "aliases",
    "aliases": "aliases", "type": "type", "kind": "kind", "tier": "tier",
    "category": "category", "instance": "instance", "updated_by": "updated_by",
    "role": "role", "created": "created", "updated": "updated", "date": "created",
    "time": "created", "path": "path", "id": "id",
    "flag": "flags", "flags": "flags",
}
# A word without a field searches the body, which also carries a note's
# title, aliases and tags with these weights (see FastText.index).
FIELD_WEIGHTS = {"title": 3.0, "aliases": 2.0, "tags": 2.0, "body": 1.0}


# --------------------------------------------------------------------------
# From file bytes to documents.

_INLINE_TAG = re.compile(r"(?:^|(?<=\s))#([^\W\d][\w/-]*)", re.M)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [s for s in re.split(r"[,\s]+", str(value)) if s]


def _expand_tags(tags: Iterable[str]) -> list[str]:
    """Obsidian nested tags: `project/mirrorfs` is also found by `tag:project`."""
    out: list[str] = []
    for tag in tags:
        tag = tag.strip().lstrip("#").lower()
        if not tag:
            continue
        parts = tag.split("/")
        for i in range(1, len(parts) + 1):
            t = "/".join(parts[:i])
            if t and t not in out:
                out.append(t)
    return out


def _inline_tags(body: str) -> list[str]:
    if "#" not in body:
        return []
    return _INLINE_TAG.findall(_FENCE.sub("", body))


def _low(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip().lower() or None


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip() or None


@dataclass
class FileEntry:
    """What one file contributes: its documents and its catalog summary."""

    docs: list[dict]
    info: dict


def file_documents(relpath: str, data: bytes) -> FileEntry:
    """Documents for one note file; raises UnreadableNoteError for non-notes."""
    note = note_mod.parse(indexable(data), relpath)
    meta = note.meta if isinstance(note.meta, dict) else {}
    stem = relpath.rsplit("/", 1)[-1][:-3] if relpath.endswith(".md") else relpath
    ntype = _low(meta.get("type"))
    if ntype is None and relpath.startswith("sessions/"):
        ntype = "session"
    title = _str(meta.get("title")) or stem
    body = strip_sections(note.body)
    messages: list = []
    preamble = body
    if ntype == "session" and not note.error:
        preamble, messages = messages_mod.parse(body)
    tags = _expand_tags(_as_list(meta.get("tags")) + _inline_tags(preamble))
    created = naive_utc(meta.get("created"))
    updated = naive_utc(meta.get("updated")) or created
    flags = ["unparseable"] if note.error else []
    doc_id = _str(meta.get("id")) or (stem if ntype == "session" else None)
    if ntype == "message":  # reserved for message documents
        ntype = "note"
    base = {
        "path": relpath,
        "type": ntype or "note",
        "title": title,
        "tags": ",".join(tags),
        "keywords": ",".join(tags),
        # Title, aliases and tags are also part of the body, weighted (see
        # FastText.index): one field to match and rank on, BM25F style.
        "body": tuple((text, FIELD_WEIGHTS[name]) for name, text in (
            ("title", title), ("aliases", " ".join(_as_list(meta.get("aliases")))),
            ("tags", " ".join(tags)), ("body", preamble)) if text),
    }
    optional = {
        "id": doc_id,
        "aliases": " ".join(_as_list(meta.get("aliases"))) or None,
        "kind": _low(meta.get("kind")),
        "tier": _low(meta.get("tier")),
        "category": _low(meta.get("category")),
        "instance": _low(meta.get("instance")),
        "updated_by": _low(meta.get("updated_by")),
        "created": _day(created),
        "updated": _day(updated),
        "created_at": created,
        "updated_at": updated,
        "flags": " ".join(flags) or None,
    }
    base.update({k: v for k, v in optional.items() if v is not None})
    docs = [base]
    msg_instances: dict[str, int] = {}
    msg_roles: dict[str, int] = {}
    first = last = None
    session_common = {k: base[k] for k in ("tags", "category") if base.get(k)}
    for msg in messages:
        t = naive_utc(msg.time)
        text = strip_sections(msg.content)
        d = {
            "path": relpath,
            "type": "message",
            "msg": msg.id,
            "role": msg.role.lower() if msg.role else None,
            "instance": msg.instance.lower() if msg.instance else None,
            "created": _day(t),
            "created_at": t,
            "body": text,
            **session_common,
        }
        docs.append({k: v for k, v in d.items() if v is not None})
        if msg.instance:
            msg_instances[msg.instance] = msg_instances.get(msg.instance, 0) + 1
        if msg.role:
            msg_roles[msg.role] = msg_roles.get(msg.role, 0) + 1
        if t is not None:
            first = t if first is None or t < first else first
            last = t if last is None or t > last else last
    info = {
        "status": "unparseable" if note.error else "ok",
        "error": note.error,
        "type": base["type"],
        "id": doc_id,
        "title": title,
        "kind": optional["kind"],
        "tier": optional["tier"],
        "category": optional["category"],
        "instance": _str(meta.get("instance")),
        "tags": [t for t in _expand_tags(_as_list(meta.get("tags")))],
        "created": _ts(created),
        "updated": _ts(updated),
        "messages": len(messages),
        "msg_instances": msg_instances,
        "msg_roles": msg_roles,
        "first_message": _ts(first),
        "last_message": _ts(last),
    }
    return FileEntry(docs, info)


def read_file(root: str, relpath: str, max_bytes: int) -> tuple[tuple, bytes]:
    """(stat key, bytes) of a note; stat first, so a later change is seen next time."""
    full = os.path.join(root, relpath)
    st = os.stat(full)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    if st.st_size > max_bytes:
        raise UnreadableNoteError(
            relpath, f"{st.st_size} bytes is over the {max_bytes}-byte limit for notes; skipped"
        )
    with open(full, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableNoteError(relpath, f"over the {max_bytes}-byte limit for notes; skipped")
    return key, data


def _entry_for(root: str, relpath: str, max_bytes: int):
    """(record, docs, warning) for one file, or None when it vanished.

    A record is (mtime_ns, size, inode, sha256, info). PermissionError is
    re-raised: an unreadable file must keep its documents.
    """
    try:
        key, data = read_file(root, relpath, max_bytes)
    except FileNotFoundError:
        return None
    except UnreadableNoteError as exc:
        st = os.stat(os.path.join(root, relpath))
        info = {"status": "skipped", "error": exc.reason}
        return (st.st_mtime_ns, st.st_size, st.st_ino, None, info), [], f"{relpath}: {exc.reason}"
    sha = hashlib.sha256(data).hexdigest()
    try:
        entry = file_documents(relpath, data)
    except UnreadableNoteError as exc:
        info = {"status": "skipped", "error": exc.reason}
        return key + (sha, info), [], f"{relpath}: {exc.reason}"
    warning = None
    if entry.info["status"] == "unparseable":
        warning = f"{relpath}: front matter unparseable ({entry.info['error']}); indexed as plain text"
    return key + (sha, entry.info), entry.docs, warning


# --------------------------------------------------------------------------
# Scanning the vault.


@dataclass
class Scan:
    files: dict[str, tuple]  # relpath -> (mtime_ns, size, inode)
    unreadable: list[str]  # folders (relative, POSIX) that could not be listed
    denied: set[str]  # files that could not be stat'ed
    conflicts: list[str]

    def covers(self, relpath: str) -> bool:
        """False when *relpath* is inside a folder we could not list."""
        return not any(relpath.startswith(d + "/") or d == "" for d in self.unreadable)


def scan(root: str | os.PathLike, known: dict | None = None) -> Scan:
    """Stat every note of the vault. An unlistable vault root raises SearchIndexError.

    The same files as `ignore.iter_note_paths` (same rules: tool folders and
    temporaries skipped, symlinked folders not followed), walked with
    os.scandir and plain strings: this runs before every query. Paths in
    *known* (the catalog) passed the name rules before and skip them.
    """
    known = known or {}
    root = os.fspath(root)
    files: dict[str, tuple] = {}
    denied: set[str] = set()
    conflicts: list[str] = []
    unreadable: list[str] = []
    try:
        for relpath, entry in ignore.walk(root, on_error=lambda rel, exc: unreadable.append(rel), known=known):
            if relpath not in known and conflict_original(relpath) is not None:
                conflicts.append(relpath)
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            except OSError:
                denied.add(relpath)
                continue
            files[relpath] = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError as exc:
        raise SearchIndexError(f"cannot read the vault folder {root}: {exc.strerror or exc}") from None
    return Scan(files, unreadable, denied, conflicts)


# --------------------------------------------------------------------------
# Generations, catalog and locking.


class _SaturatedScorer(wscoring.BaseScorer):
    """BM25 term score without length normalisation (b = 0).

    With b = 0 a block's best score follows from its largest weight alone, so
    Whoosh skips whole blocks of postings that cannot reach the top results
    (and never looks up a document length): a frequent word is scored in a
    few milliseconds instead of tens. Length matters little here: the body's
    weight already combines title, tags and text, and tf saturates at K1.
    """

    def __init__(self, idf: float, max_weight: float, k1: float):
        self.idf = idf
        self.k1 = k1
        self._max = self._score(max_weight)

    def _score(self, weight: float) -> float:
        return self.idf * weight * (self.k1 + 1) / (weight + self.k1)

    def supports_block_quality(self):
        return True

    def score(self, matcher):
        return self._score(matcher.weight())

    def max_quality(self):
        return self._max

    def block_quality(self, matcher):
        return self._score(matcher.block_max_weight())


class _Weighting(wscoring.WeightingModel):
    """BM25F with b = 0 over the weighted body (see _SaturatedScorer)."""

    K1 = 1.2

    def supports_block_quality(self):
        return True

    def scorer(self, searcher, fieldname, text, qf=1):
        parent = searcher.get_parent()
        info = searcher.term_info(fieldname, text)
        return _SaturatedScorer(parent.idf(fieldname, text), info.max_weight(), self.K1)


def _weighting():
    return _Weighting()


class _Layout:
    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir) / "index"
        self.current = self.dir / "CURRENT"
        self.lock_path = self.dir / "write.lock"

    def gen(self, name: str) -> Path:
        return self.dir / name

    def current_name(self) -> str | None:
        try:
            name = self.current.read_text("ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return name if re.fullmatch(r"gen-[0-9a-f]{16}", name) else None

    def lock(self) -> filelock.FileLock:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return filelock.FileLock(str(self.lock_path))


_CATALOG_CACHE: dict[str, tuple[tuple, dict]] = {}


def _load_catalog(gen_dir: Path) -> dict | None:
    path = gen_dir / "catalog.pickle"
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CATALOG_CACHE.get(str(path))
    if cached and cached[0] == key:
        return cached[1]
    try:
        with open(path, "rb") as f:
            catalog = pickle.load(f)
    except Exception as exc:  # truncated, garbage, or from an incompatible version
        log.warning("index catalog %s unreadable (%s); the index will be rebuilt", path, exc)
        return None
    if not isinstance(catalog, dict) or not isinstance(catalog.get("files"), dict):
        return None
    _CATALOG_CACHE[str(path)] = (key, catalog)
    return catalog


def _save_catalog(gen_dir: Path, catalog: dict) -> None:
    path = gen_dir / "catalog.pickle"
    storage.atomic_write(path, pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL), sync=False)
    st = path.stat()  # what we wrote is what a reload would give: keep it
    _CATALOG_CACHE[str(path)] = ((st.st_mtime_ns, st.st_size, st.st_ino), catalog)


# --------------------------------------------------------------------------
# Results handed to mirrorfs.search (no Whoosh types cross this line).


@dataclass
class RawHit:
    fields: dict
    score: float
    terms: set[str] = field(default_factory=set)  # matched body terms, for snippets


@dataclass
class ReconcileReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rebuilt: bool = False
    stale: bool = False  # another process held the writer; answered from the index as it was
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)


ProgressFn = Callable[[int, int], None]


def terminal_progress() -> ProgressFn | None:
    """A progress line on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    state = {"last": 0.0, "done": False}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if state["done"] or (done < total and now - state["last"] < 0.1):
            return
        state["last"] = now
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
        if done >= total:
            state["done"] = True
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


# --------------------------------------------------------------------------
# The index.

_OPEN: dict[str, "Index"] = {}  # most recently used last
_OPEN_MAX = 8


class Index:
    """The search index of one vault on this device."""

    def __init__(self, root: str | os.PathLike, state_dir: str | os.PathLike,
                 vault_id: str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = os.fspath(root)
        self.layout = _Layout(state_dir)
        self.vault_id = vault_id
        self.max_bytes = max_bytes
        self._ix = None
        self._ix_gen: str | None = None
        self._searcher = None
        self._searcher_catalog: dict | None = None
        # One thread at a time per Index (a server may search from several).
        self._lock = threading.RLock()

    @classmethod
    def for_vault(cls, vault) -> "Index":
        """The (cached, per process) index of a mirrorfs Vault."""
        config = getattr(vault, "config", None) or {}
        max_bytes = int(config.get("max_note_bytes", DEFAULT_MAX_BYTES))
        key = f"{os.fspath(vault.state_dir)}|{os.fspath(vault.root)}"
        ix = _OPEN.pop(key, None)
        if ix is None or ix.max_bytes != max_bytes or ix.vault_id != vault.id:
            if ix is not None:
                ix.close()
            ix = cls(vault.root, vault.state_dir, vault.id, max_bytes)
        _OPEN[key] = ix
        while len(_OPEN) > _OPEN_MAX:  # close the searchers of vaults not used lately
            _OPEN.pop(next(iter(_OPEN))).close()
        return ix

    # -- generations ------------------------------------------------------

    def _live(self) -> tuple[str, dict] | None:
        """(generation name, catalog) of a usable index, or None."""
        name = self.layout.current_name()
        if name is None:
            return None
        gen_dir = self.layout.gen(name)
        catalog = _load_catalog(gen_dir)
        if catalog is None:
            return None
        if (catalog.get("schema") != SCHEMA_VERSION or catalog.get("engine") != ENGINE
                or catalog.get("vault_id") != self.vault_id):
            return None
        try:  # a TOC is there; whether it opens is found out on use (see _run)
            if not any(n.endswith(".toc") for n in os.listdir(gen_dir)):
                return None
        except OSError:
            return None
        return name, catalog

    def _whoosh(self, name: str):
        if self._ix is None or self._ix_gen != name:
            self.close()
            self._ix = windex.open_dir(str(self.layout.gen(name)))
            self._ix_gen = name
        return self._ix

    def _open_searcher(self):
        live = self._live()
        if live is None:
            raise SearchIndexError("the index is missing")
        ix = self._whoosh(live[0])
        # Every commit rewrites the catalog, so a new catalog object means a
        # new index state (ours or another process's): reopen the searcher.
        # This does not rely on Whoosh's up_to_date(), which whoosh-reloaded
        # answers wrongly for a cached index object.
        if self._searcher is None or self._searcher_catalog is not live[1]:
            if self._searcher is not None:
                self._searcher.close()
            self._searcher = ix.searcher(weighting=_weighting())
            self._searcher_catalog = live[1]
        return self._searcher

    def close(self) -> None:
        """Close the open searcher (it reopens on the next query)."""
        with self._lock:
            if self._searcher is not None:
                try:
                    self._searcher.close()
                except Exception:
                    pass
            self._searcher = None
            self._ix = None
            self._ix_gen = None

    def catalog(self) -> dict:
        """The catalog of the live generation (after `ensure`)."""
        live = self._live()
        if live is None:
            raise SearchIndexError("the index is missing")
        return live[1]

    # -- keeping fresh -----------------------------------------------------

    def ensure(self, progress: ProgressFn | None = None, wait: float = QUERY_LOCK_WAIT) -> ReconcileReport:
        """Make the index match the vault: rebuild if unusable, else reconcile."""
        with self._lock:
            if self._live() is None:
                return self.rebuild(progress=progress, if_unusable=True)
            return self.reconcile(wait=wait)

    def reconcile(self, wait: float = QUERY_LOCK_WAIT) -> ReconcileReport:
        """Apply adds, changes, deletes and renames made behind our back (see _reconcile)."""
        with self._lock:
            return self._reconcile(wait)

    def _reconcile(self, wait: float) -> ReconcileReport:
        """Apply adds, changes, deletes and renames made behind our back.

        Only stats the vault when nothing changed. When another process holds
        the writer longer than *wait* seconds, answers from the index as it is
        (report.stale) rather than failing.
        """
        t0 = time.perf_counter()
        live = self._live()
        if live is None:
            return self.rebuild(if_unusable=True)
        found = scan(self.root, live[1]["files"])
        report = ReconcileReport()
        if not self._diff(found, live[1]["files"]):
            report.warnings += self._scan_warnings(found)
            report.seconds = time.perf_counter() - t0
            return report
        lock = self.layout.lock()
        try:
            lock.acquire(timeout=wait)
        except filelock.Timeout:
            report.stale = True
            report.warnings.append(
                "the index is being updated by another process; results may miss the latest changes"
            )
            report.seconds = time.perf_counter() - t0
            return report
        try:
            live = self._live()
            if live is None:
                return self._rebuild_locked(None)
            try:
                self._apply(live[0], live[1], found, report)
            except (MirrorfsError, OSError):
                raise
            except Exception as exc:  # a damaged segment or TOC: start over
                log.warning("search index %s is damaged (%s); rebuilding", live[0], exc)
                self.close()
                return self._rebuild_locked(None)
        finally:
            lock.release()
        report.warnings += self._scan_warnings(found)
        report.seconds = time.perf_counter() - t0
        return report

    @staticmethod
    def _scan_warnings(found: Scan) -> list[str]:
        w = [f"cannot read folder {d or '.'}: its notes are kept in the index as they were"
             for d in found.unreadable]
        w += [f"cannot read {p}: kept in the index as it was" for p in sorted(found.denied)]
        return w

    @staticmethod
    def _diff(found: Scan, files: dict) -> bool:
        """True when the scan differs from the catalog (anything to do)."""
        for relpath, st in found.files.items():
            rec = files.get(relpath)
            if rec is None or rec[0] != st[0] or rec[1] != st[1] or rec[2] != st[2]:
                return True
        if len(files) != len(found.files):
            for relpath in files:
                if relpath not in found.files and relpath not in found.denied and found.covers(relpath):
                    return True
        return False

    def _apply(self, name: str, catalog: dict, found: Scan, report: ReconcileReport) -> None:
        files = dict(catalog["files"])
        deleted = [p for p in files
                   if p not in found.files and p not in found.denied and found.covers(p)]
        changed: dict[str, tuple] = {}
        new_docs: dict[str, list[dict]] = {}
        for relpath, st in found.files.items():
            rec = files.get(relpath)
            if rec is not None and rec[:3] == st:
                continue
            try:
                out = _entry_for(self.root, relpath, self.max_bytes)
            except OSError as exc:  # permission denied: keep what the index has
                report.warnings.append(f"cannot read {relpath}: {exc.strerror or exc}; kept as it was")
                continue
            if out is None:  # vanished between scan and read
                if rec is not None:
                    deleted.append(relpath)
                continue
            new_rec, docs, warning = out
            if warning:
                report.warnings.append(warning)
            if rec is not None and rec[3] is not None and rec[3] == new_rec[3]:
                files[relpath] = new_rec  # touched, same bytes: nothing to reindex
                continue
            changed[relpath] = new_rec
            new_docs[relpath] = docs
        gone = {files[p][3]: p for p in deleted if files[p][3]}
        for relpath, rec in changed.items():
            if relpath in files:
                report.changed.append(relpath)
            elif rec[3] in gone:
                report.renamed.append((gone[rec[3]], relpath))
            else:
                report.added.append(relpath)
        report.deleted = sorted(deleted)
        if changed or deleted:
            ix = self._whoosh(name)
            writer = ix.writer(timeout=5.0, codec=_codec())
            try:
                for relpath in deleted:
                    writer.delete_by_term("path", relpath)
                for relpath, docs in new_docs.items():
                    if relpath in files:
                        writer.delete_by_term("path", relpath)
                    for d in docs:
                        writer.add_document(**d)
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
        for relpath in deleted:
            files.pop(relpath, None)
        files.update(changed)
        new_catalog = dict(catalog, files=files, updated=time.time())
        _save_catalog(self.layout.gen(name), new_catalog)

    # -- rebuilding --------------------------------------------------------

    def rebuild(self, progress: ProgressFn | None = None, procs: int | None = None,
                if_unusable: bool = False, if_current: str | None = None) -> ReconcileReport:
        """Index the whole vault into a new generation, then switch to it.

        Waits for another process's writer. With *if_unusable*, only reconciles
        when another process made the index usable while we waited; with
        *if_current*, only rebuilds if that generation is still the live one.
        """
        with self._lock:
            return self._rebuild(progress, procs, if_unusable, if_current)

    def _rebuild(self, progress, procs, if_unusable, if_current) -> ReconcileReport:
        lock = self.layout.lock()
        try:
            lock.acquire(timeout=REBUILD_LOCK_WAIT)
        except filelock.Timeout:
            raise SearchIndexError(
                f"the index at {self.layout.dir} is held by another process; try again later"
            ) from None
        try:
            live = self._live()
            replaced = if_current is not None and self.layout.current_name() != if_current
            if live is not None and (if_unusable or replaced):
                report = ReconcileReport()
                try:
                    self._apply(live[0], live[1], scan(self.root), report)
                    return report
                except (MirrorfsError, OSError):
                    raise
                except Exception as exc:  # damaged: fall through to a rebuild
                    log.warning("search index %s is damaged (%s); rebuilding", live[0], exc)
            return self._rebuild_locked(progress, procs)
        finally:
            lock.release()

    def _rebuild_locked(self, progress: ProgressFn | None, procs: int | None = None) -> ReconcileReport:
        t0 = time.perf_counter()
        if progress is None:
            progress = terminal_progress()
        found = scan(self.root)
        if found.unreadable:
            # A rebuild would drop those folders' notes; keep the index as it is.
            raise SearchIndexError(
                "cannot rebuild the index: cannot read folder(s) "
                + ", ".join(found.unreadable) + "; fix their permissions and try again"
            )
        report = ReconcileReport(rebuilt=True)
        report.warnings += self._scan_warnings(found)
        name = f"gen-{secrets.token_hex(8)}"
        gen_dir = self.layout.gen(name)
        gen_dir.mkdir(parents=True, mode=0o700)
        old_name = self.layout.current_name()
        try:
            windex.create_in(str(gen_dir), make_schema())
            files, warnings = build_generation(
                self.root, str(gen_dir), sorted(found.files), self.max_bytes,
                progress=progress, procs=procs,
            )
            report.warnings += warnings
            report.added = sorted(p for p, rec in files.items() if rec[4].get("status") != "skipped")
            catalog = {
                "schema": SCHEMA_VERSION, "engine": ENGINE, "vault_id": self.vault_id,
                "root": self.root, "files": files, "built": time.time(), "updated": time.time(),
            }
            _save_catalog(gen_dir, catalog)
            storage.atomic_write(self.layout.current, name.encode("ascii"))
        except BaseException:
            shutil.rmtree(gen_dir, ignore_errors=True)
            raise
        self.close()
        self._prune(keep={name, old_name})
        report.seconds = time.perf_counter() - t0
        return report

    def _prune(self, keep: set) -> None:
        """Remove old generations, except the one just replaced: readers in
        other processes may still be answering from it."""
        for p in self.layout.dir.glob("gen-*"):
            if p.name not in keep and p.is_dir():
                _CATALOG_CACHE.pop(str(p / "catalog.pickle"), None)
                shutil.rmtree(p, ignore_errors=True)

    # -- querying ----------------------------------------------------------

    def parse(self, text: str, any_word: bool = False):
        """A Whoosh query from mirrorfs query syntax (see parse_query)."""
        return parse_query(text, any_word)

    def search(self, q, *, types: Iterable[str] | None = None, messages: bool = True,
               tags: Iterable[str] | None = None, instances: Iterable[str] | None = None,
               paths: Iterable[str] | None = None, limit: int | None = 20,
               terms: bool = False) -> list[RawHit]:
        """Ranked hits of a parsed query: note documents of *types* (all when
        None), plus message documents when *messages*, filtered by tags,
        instances and paths."""
        filt = _filters(types, messages, tags, instances, paths)
        return self._run(lambda s: s.search(q, limit=limit, filter=filt, terms=terms))

    def _run(self, fn):
        with self._lock:
            return self._run_locked(fn)

    def _run_locked(self, fn):
        for attempt in (0, 1, 2):
            failing = self.layout.current_name()
            try:
                s = self._open_searcher()
                results = fn(s)
                return [_raw(h) for h in results]
            except QueryError:
                raise
            except Exception as exc:
                # Segments removed under us (a merge or a rebuild elsewhere):
                # reopen once. A second failure means damage: rebuild, unless
                # another process already replaced the generation.
                self.close()
                if attempt == 1:
                    self.recover(failing, exc)
                elif attempt == 2:
                    raise SearchIndexError(f"the search index cannot answer: {exc}") from exc
        raise AssertionError("unreachable")

    def recover(self, failing: str | None, exc: BaseException) -> ReconcileReport:
        """Rebuild after the generation *failing* turned out damaged."""
        log.warning("search index %s is damaged (%s); rebuilding", failing, exc)
        return self.rebuild(if_current=failing or "")

    def query_terms(self, q) -> frozenset[str]:
        """The text terms of a query that exist in the index (prefixes expanded),
        for marking snippets."""
        fields = ("body", "title", "aliases")

        def run():
            found = {t for f, t in q.iter_all_terms(phrases=True) if f in fields}
            reader = None
            for leaf in q.leaves() if q.is_leaf() is False else [q]:
                if isinstance(leaf, wquery.MultiTerm) and leaf.field() in fields:
                    reader = reader or self._open_searcher().reader()
                    for t in list(leaf._btexts(reader))[:1000]:
                        found.add(t.decode("utf-8") if isinstance(t, bytes) else t)
            return frozenset(t for t in found if isinstance(t, str))
        with self._lock:
            try:
                return run()
            except Exception:  # only snippets depend on it
                self.close()
                return frozenset()

    def terms_of(self, text: str) -> set[str]:
        """The index terms of *text*."""
        return set(term_positions(text))

    def key_terms(self, text: str, numterms: int = 12) -> list[tuple[str, float]]:
        """The most characteristic terms of *text* against the whole index."""
        with self._lock:
            s = self._open_searcher()
            return list(s.key_terms_from_text("body", text, numterms=numterms, model=_bo1()))

    def similar_query(self, terms: list[tuple[str, float]]):
        """An OR query of weighted key terms ("more like this")."""
        if not terms:
            return wquery.NullQuery
        top = max(w for _, w in terms) or 1.0
        return wquery.Or([wquery.Term("body", t, boost=w / top) for t, w in terms]
                         + [wquery.Term("title", t, boost=w / top) for t, w in terms])

    def highlight(self, text: str, terms: Iterable[str], top: int = 2,
                  chars: int = 180) -> str:
        """Up to *top* passages of *text* with the most distinct matched terms,
        each about *chars* long, terms marked `**term**`."""
        return highlight(text, terms, top, chars)

    def analyze(self, text: str) -> list[str]:
        """The index terms of *text* (as queries see them)."""
        return [t.text for t in _ANALYZER(text, mode="query")]

    def doc_count(self) -> tuple[int, int]:
        """(all documents, deleted-but-not-merged)."""
        with self._lock:
            r = self._open_searcher().reader()
            return r.doc_count(), r.doc_count_all() - r.doc_count()

    def size_bytes(self) -> int:
        live = self._live()
        if live is None:
            return 0
        return sum(p.stat().st_size for p in self.layout.gen(live[0]).iterdir() if p.is_file())

    def optimize(self) -> None:
        """Merge all segments into one (faster queries after many small updates)."""
        with self._lock, self.layout.lock():
            live = self._live()
            if live is None:
                return
            self._whoosh(live[0]).optimize()
            self.close()


def _term_spans(text: str, terms: frozenset, limit: int = 300) -> list[tuple[int, int, str]]:
    """(start, end, term) of the tokens of *text* whose index term is in *terms*.

    Same tokens as MirrorAnalyzer, but a word whose first two letters start no
    wanted term is dropped before stemming (stemming never changes them).
    """
    heads = {t[:2] for t in terms}
    spans = []
    for m in _TOKEN.finditer(text):
        run, word = m.groups()
        if word is not None:
            w = word.lower()
            if w[:2] not in heads or not 2 <= len(w) <= 40 or w in _STOP:
                continue
            stem = _stem(w)
            if stem in terms:
                spans.append((m.start(), m.end(), stem))
        else:
            base = m.start()
            if len(run) == 1:
                if run in terms:
                    spans.append((base, base + 1, run))
                continue
            for i in range(len(run) - 1):
                if run[i:i + 2] in terms:
                    spans.append((base + i, base + i + 2, run[i:i + 2]))
        if len(spans) >= limit:
            break
    return spans


def highlight(text: str, terms: Iterable[str], top: int = 2, chars: int = 180) -> str:
    """Passages around matched index terms (a lean stand-in for Whoosh's
    highlighter, which costs more than the search itself)."""
    terms = frozenset(terms)
    if not terms or not text:
        return ""
    spans = _term_spans(text, terms)
    if not spans:
        return ""
    # Best windows: most distinct terms, then most occurrences, earliest first.
    chosen: list[tuple[int, int]] = []
    candidates = []
    for i, (start, _, _) in enumerate(spans):
        lo = max(0, start - chars // 4)
        hi = lo + chars
        inside = [s for s in spans[i:] if s[1] <= hi]
        candidates.append((-len({s[2] for s in inside}), -len(inside), lo, hi))
    candidates.sort()
    for _, _, lo, hi in candidates:
        if len(chosen) >= top:
            break
        if all(hi <= a or lo >= b for a, b in chosen):
            chosen.append((lo, hi))
    chosen.sort()
    out = []
    for lo, hi in chosen:
        # Widen to word boundaries so no word is cut in half.
        while lo > 0 and not text[lo - 1].isspace() and hi - lo < chars + 30:
            lo -= 1
        while hi < len(text) and not text[hi].isspace() and hi - lo < chars + 60:
            hi += 1
        marks: list[list[int]] = []
        for s, e, _ in spans:
            if s < lo or e > hi:
                continue
            if marks and s <= marks[-1][1]:  # overlapping CJK bigrams: one mark
                marks[-1][1] = max(marks[-1][1], e)
            else:
                marks.append([s, e])
        pieces, pos = [], lo
        for s, e in marks:
            pieces.append(text[pos:s])
            pieces.append("**" + text[s:e] + "**")
            pos = e
        pieces.append(text[pos:hi])
        snippet = "".join(pieces).strip()
        out.append(("… " if lo > 0 else "") + snippet + (" …" if hi < len(text) else ""))
    # Adjacent CJK bigrams come out as **検索****機能**: one mark reads better.
    return " ".join(out).replace("****", "").replace("… …", "…")


def _bo1():
    from whoosh.classify import Bo1Model
    return Bo1Model


_PARSERS: dict[bool, Any] = {}


def _parser(any_word: bool = False):
    if any_word not in _PARSERS:
        schema = make_schema()
        group = qparser.OrGroup.factory(0.9) if any_word else qparser.AndGroup
        parser = qparser.QueryParser("body", schema, group=group)
        aliases: dict[str, list[str]] = {}
        for name, target in QUERY_FIELDS.items():
            if name != target:
                aliases.setdefault(target, []).append(name)
        parser.add_plugin(qparser.FieldAliasPlugin(aliases))
        parser.add_plugin(qparser.GtLtPlugin())
        # `+word`/`-word` are not part of mirrorfs syntax (a leading - is common in text).
        parser.remove_plugin_class(qparser.PlusMinusPlugin)
        _PARSERS[any_word] = parser
    return _PARSERS[any_word]


def _errors(q) -> list[str]:
    found = []
    stack = [q]
    while stack:
        node = stack.pop()
        error = getattr(node, "error", None)
        if error:
            found.append(str(error))
        if hasattr(node, "children"):
            stack.extend(node.children())
    return found


DATE_FIELDS = ("created", "updated", "date", "time")
_QUOTED = re.compile(r'"[^"]*"')
_FIELD = re.compile(r"(?<![\w:])([A-Za-z_]+):")
_DATE_CLAUSE = re.compile(
    r"(?<![\w:])(created|updated|date|time):"
    r"(?:(>=|<=|>|<)?([^\s()\[\]{}]+)|([\[{])\s*(\S*?)\s+[Tt][Oo]\s*(\S*?)\s*([\]}]))",
    re.I,
)
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?(?:Z|[+-]00:?00)?")
_AGO = re.compile(r"(\d+)([dwmy])")
_OPERATOR = re.compile(r'"[^"]*"|\(|\)|[^\s()"]+')


def _date_value(value: str, field: str, now: dt.datetime | None = None) -> str:
    """A Whoosh date string (YYYYMMDDhhmmss, as precise as given) from mirrorfs syntax."""
    now = now or dt.datetime.now(dt.timezone.utc)
    v = value.strip().lower()
    if v == "now":
        return now.strftime("%Y%m%d%H%M%S")
    if v == "today":
        return now.strftime("%Y%m%d")
    if v == "yesterday":
        return (now - dt.timedelta(days=1)).strftime("%Y%m%d")
    m = _AGO.fullmatch(v)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        days = {"d": 1, "w": 7, "m": 30, "y": 365}[unit] * n
        try:
            return (now - dt.timedelta(days=days)).strftime("%Y%m%d")
        except OverflowError:
            pass
    m = _ISO.fullmatch(value.strip())
    if m:
        parts = [p for p in m.groups() if p is not None]
        try:  # reject 2026-13-45 here, with a clear message
            dt.datetime(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1,
                        int(parts[2]) if len(parts) > 2 else 1)
            return "".join(parts)
        except ValueError:
            pass
    raise QueryError(
        f"bad date {value!r} in {field}: use YYYY, YYYY-MM, YYYY-MM-DD, "
        "YYYY-MM-DDTHH:MM, today, yesterday, now or an age like 7d, 2w, 3m, 1y"
    )


def _bounds(value: str) -> tuple[dt.datetime, dt.datetime]:
    """(first instant, first instant after) of the period a Whoosh date string names."""
    n = len(value)
    y = int(value[:4])
    mo = int(value[4:6]) if n >= 6 else 1
    d = int(value[6:8]) if n >= 8 else 1
    h = int(value[8:10]) if n >= 10 else 0
    mi = int(value[10:12]) if n >= 12 else 0
    sec = int(value[12:14]) if n >= 14 else 0
    start = dt.datetime(y, mo, d, h, mi, sec)
    if n <= 4:
        end = start.replace(year=y + 1)
    elif n <= 6:
        end = start.replace(year=y + (mo == 12), month=mo % 12 + 1)
    elif n <= 8:
        end = start + dt.timedelta(days=1)
    elif n <= 10:
        end = start + dt.timedelta(hours=1)
    elif n <= 12:
        end = start + dt.timedelta(minutes=1)
    else:
        end = start + dt.timedelta(seconds=1)
    return start, end


def _rewrite_dates(segment: str) -> str:
    """Date clauses as term ranges over the indexed `YYYYMMDD` days (UTC)."""
    tick = dt.timedelta(microseconds=1)

    def day(t: dt.datetime) -> str:
        return t.strftime("%Y%m%d")

    def repl(m: re.Match) -> str:
        field = QUERY_FIELDS[m.group(1).lower()]
        if m.group(4):  # [a TO b] or {a TO b}
            lo = day(_bounds(_date_value(m.group(5), field))[0]) if m.group(5) else "00000101"
            hi = day(_bounds(_date_value(m.group(6), field))[1] - tick) if m.group(6) else "99991231"
        else:
            op = m.group(2) or ""
            start, end = _bounds(_date_value(m.group(3), field))
            lo, hi = day(start), day(end - tick)
            if op == ">":
                lo, hi = day(end), "99991231"
            elif op == "<":
                lo, hi = "00000101", day(start - tick)
            elif op == ">=":
                hi = "99991231"
            elif op == "<=":
                lo = "00000101"
        return f"{field}:[{lo} TO {hi}]"

    return _DATE_CLAUSE.sub(repl, segment)


_LOWER_CLAUSE = re.compile(r"(?<![\w:])(" + "|".join(LOWER_FIELDS) + r"):([^\s()\"]+)", re.I)


def _check_operators(text: str) -> None:
    items = []
    for tok in _OPERATOR.findall(text):
        if tok in ("AND", "OR", "NOT", "(", ")"):
            items.append(tok)
        else:
            items.append("TERM")
    if "TERM" not in items:
        raise QueryError("empty query: give at least one word, phrase or field:value")
    for i, tok in enumerate(items):
        before = items[i - 1] if i else None
        after = items[i + 1] if i + 1 < len(items) else None
        if tok in ("AND", "OR"):
            if before not in ("TERM", ")") or after not in ("TERM", "(", "NOT"):
                raise QueryError(f"{tok} needs a word or group on both sides")
        elif tok == "NOT" and after not in ("TERM", "("):
            raise QueryError("NOT needs a word or group after it")
        elif tok == "(" and after == ")":
            raise QueryError("empty parentheses")


def preprocess(text: str) -> str:
    """Check mirrorfs query syntax and rewrite dates and `tag:#x` for Whoosh."""
    if not text or not text.strip():
        raise QueryError("empty query: give at least one word, phrase or field:value")
    if text.count('"') % 2:
        raise QueryError('unbalanced quote: a phrase needs a closing "')
    pieces = re.split(r'("[^"]*")', text)
    depth = 0
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:  # inside quotes: literal text
            out.append(piece)
            continue
        for ch in piece:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                raise QueryError("unbalanced parentheses: a ) without its (")
        for m in _FIELD.finditer(piece):
            name = m.group(1)
            if name.lower() in QUERY_FIELDS:
                continue
            if piece[m.end():m.end() + 2] == "//":  # a URL, searched as text
                continue
            known = ", ".join(sorted({k for k in QUERY_FIELDS if k not in ("body", "id")}))
            raise QueryError(
                f"unknown field {name}: (known fields: {known}); "
                f'put text containing a colon in quotes, e.g. "{name}:..."'
            )
        piece = _FIELD.sub(lambda m: m.group(1).lower() + ":", piece)
        piece = re.sub(r"(?<![\w:])(tags?):#", r"\1:", piece)
        piece = _LOWER_CLAUSE.sub(lambda m: m.group(1) + ":" + m.group(2).lower(), piece)
        for m in re.finditer(r"(?:^|[\s(])([*?][^\s()]*)", piece):
            raise QueryError(f"{m.group(1)!r}: a word cannot start with * or ?")
        out.append(_rewrite_dates(piece))
    if depth:
        raise QueryError("unbalanced parentheses: a ( without its )")
    result = "".join(out)
    _check_operators(result)
    return result


def _single_cjk_prefix(q):
    """A one-character CJK term also matches the bigrams starting with it."""
    if isinstance(q, wquery.Term) and isinstance(q.text, str) and len(q.text) == 1 \
            and _TOKEN.fullmatch(q.text) and _TOKEN.fullmatch(q.text).group("run"):
        return wquery.Or([q, wquery.Prefix(q.fieldname, q.text, boost=q.boost)])
    return q


def parse_query(text: str, any_word: bool = False):
    """A Whoosh query from mirrorfs query syntax; QueryError when malformed.

    Words without an operator must all match, or with *any_word* any of them
    (documents matching more rank higher)."""
    cooked = preprocess(text)
    try:
        q = _parser(any_word).parse(cooked)
    except QueryError:
        raise
    except Exception as exc:  # Whoosh's parser errors share no base class
        raise QueryError(f"cannot parse query {text!r}: {exc}") from None
    errors = _errors(q)
    if errors:
        raise QueryError(f"bad query {text!r}: {errors[0]}")
    if q is wquery.NullQuery or isinstance(q, wquery.qcore._NullQuery):
        raise QueryError(f"query {text!r} has only stop words (like 'the', 'and'); add a word")
    return q.accept(_single_cjk_prefix)


def _filters(types, messages, tags, instances, paths):
    parts = []
    if types:
        wanted = [t.lower() for t in types if t.lower() != "message"]
        if messages:
            wanted.append("message")
        parts.append(wquery.Or([wquery.Term("type", t) for t in wanted]) if wanted else wquery.NullQuery)
    elif not messages:
        parts.append(wquery.Not(wquery.Term("type", "message")))
    if tags:
        parts.append(wquery.Or([wquery.Term("tags", t.lstrip("#").lower()) for t in tags]))
    if instances:
        parts.append(wquery.Or([wquery.Term("instance", i.lower()) for i in instances]))
    if paths is not None:
        paths = list(paths)
        parts.append(wquery.Or([wquery.Term("path", p) for p in paths]) if paths else wquery.NullQuery)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else wquery.And(parts)


def _raw(hit) -> RawHit:
    terms: set[str] = set()
    try:
        for fname, text in hit.matched_terms() or ():
            if fname in ("body", "title", "aliases"):
                terms.add(text.decode("utf-8") if isinstance(text, bytes) else text)
    except Exception:  # matched terms were not recorded for this search
        pass
    return RawHit(dict(hit.fields()), float(hit.score), terms)


# --------------------------------------------------------------------------
# Parallel cold build: each worker reads, parses and indexes its share of the
# files into its own segment; the parent then commits all segments at once.

_COUNTER = None


def _codec():
    # Posting blocks uncompressed: zlib was a fifth of the indexing time; the
    # index grows but stays a fraction of the vault's size.
    return W3Codec(compression=0)


def _init_worker(counter) -> None:
    global _COUNTER
    _COUNTER = counter


def _index_chunk(args):
    gen_dir, root, relpaths, max_bytes, limitmb = args
    ix = windex.open_dir(gen_dir)
    writer = SegmentWriter(ix, _lk=False, compound=False, limitmb=limitmb, codec=_codec())
    files: dict[str, tuple] = {}
    warnings: list[str] = []
    done = 0
    for relpath in relpaths:
        try:
            out = _entry_for(root, relpath, max_bytes)
        except OSError as exc:
            warnings.append(f"cannot read {relpath}: {exc.strerror or exc}; not indexed")
            out = None
        if out is not None:
            rec, docs, warning = out
            files[relpath] = rec
            if warning:
                warnings.append(warning)
            for d in docs:
                writer.add_document(**d)
        done += 1
        if _COUNTER is not None and done % 25 == 0:
            with _COUNTER.get_lock():
                _COUNTER.value += 25
    if _COUNTER is not None:
        with _COUNTER.get_lock():
            _COUNTER.value += done % 25
    if writer.doc_count():
        segment = writer._finalize_segment()
    else:
        writer._close_segment()
        segment = None
    return segment, files, warnings


def build_generation(root: str, gen_dir: str, relpaths: list[str], max_bytes: int,
                     progress: ProgressFn | None = None, procs: int | None = None,
                     limitmb: int = 256) -> tuple[dict, list[str]]:
    """Index *relpaths* into the empty Whoosh index at *gen_dir*; return (catalog files, warnings)."""
    total = len(relpaths)
    if procs is None:
        procs = min(os.cpu_count() or 1, 8)
    if total < PARALLEL_MIN_FILES:
        procs = 1
    # Spread big session files evenly: deal files round-robin by size.
    sizes = []
    for rp in relpaths:
        try:
            sizes.append((os.stat(os.path.join(root, rp)).st_size, rp))
        except OSError:
            sizes.append((0, rp))
    sizes.sort(reverse=True)
    chunks: list[list[str]] = [[] for _ in range(procs)]
    for i, (_, rp) in enumerate(sizes):
        chunks[i % procs].append(rp)
    jobs = [(gen_dir, root, c, max_bytes, limitmb) for c in chunks if c]
    if procs == 1 or len(jobs) == 1:
        if progress:
            progress(0, total)
        results = [_index_chunk(j) for j in jobs]
    else:
        # fork is fastest, but forking a process that runs other threads (the
        # watcher's observer, its query server) can hand a child a lock that is
        # held forever: the first index of `mirrorfs watch` hung that way.
        threaded = threading.active_count() > 1
        method = "fork" if sys.platform.startswith("linux") and not threaded else "spawn"
        ctx = multiprocessing.get_context(method)
        counter = ctx.Value("l", 0)
        with ctx.Pool(len(jobs), initializer=_init_worker, initargs=(counter,)) as pool:
            pending = pool.map_async(_index_chunk, jobs)
            while not pending.ready():
                pending.wait(0.2)
                if progress:
                    progress(min(counter.value, total), total)
            results = pending.get()
    files: dict[str, tuple] = {}
    warnings: list[str] = []
    segments = []
    for segment, f, w in results:
        files.update(f)
        warnings += w
        if segment is not None:
            segments.append(segment)
    ix = windex.open_dir(gen_dir)
    writer = SegmentWriter(ix)
    final = writer._merge_segments(None, False, False) + segments
    writer._close_segment()
    writer._commit_toc(final)
    writer._finish()
    if progress:
        progress(total, total)
    return files, warnings


def naive_build(gen_dir: str, docs: Iterable[dict]) -> None:
    """The baseline the benchmark compares with: the same documents and field
    names, Whoosh's stock field types (StemmingAnalyzer for text), one
    default writer in one process."""
    W = wfields
    text = wanalysis.StemmingAnalyzer()
    schema = W.Schema(
        path=W.ID(stored=True), id=W.ID(stored=True), type=W.ID(stored=True),
        title=W.TEXT(analyzer=text, stored=True, field_boost=3.0),
        aliases=W.TEXT(analyzer=text, field_boost=2.0),
        tags=W.KEYWORD(stored=True, commas=True, lowercase=True),
        keywords=W.KEYWORD(commas=True, lowercase=True, scorable=True, field_boost=2.0),
        kind=W.ID(stored=True), tier=W.ID(stored=True), category=W.ID(stored=True),
        instance=W.ID(stored=True), updated_by=W.ID, role=W.ID(stored=True),
        created=W.ID, updated=W.ID, created_at=W.STORED, updated_at=W.STORED,
        body=W.TEXT(analyzer=text), msg=W.STORED, flags=W.KEYWORD(stored=True),
    )
    ix = windex.create_in(gen_dir, schema)
    w = ix.writer()
    for d in docs:
        if isinstance(d.get("body"), tuple):  # weighted parts: plain text for stock TEXT
            d = dict(d, body="\n".join(text for text, _ in d["body"]))
        w.add_document(**d)
    w.commit()


# --------------------------------------------------------------------------
# Searching decrypted text: in memory only.


def search_in_memory(files: dict[str, bytes], q, *, types: Iterable[str] | None = None,
                     messages: bool = True, tags: Iterable[str] | None = None,
                     instances: Iterable[str] | None = None, limit: int | None = 20) -> list[RawHit]:
    """Run a parsed query over documents built from *files* (relpath -> bytes)
    in a throw-away in-memory index. For decrypted sections (`search --unlock`):
    their plaintext must never reach the disk, so they never enter the real index."""
    from whoosh.filedb.filestore import RamStorage

    ix = RamStorage().create_index(make_schema())
    writer = ix.writer(codec=_codec())
    for relpath, data in files.items():
        try:
            entry = file_documents(relpath, data)
        except UnreadableNoteError:
            continue
        for d in entry.docs:
            writer.add_document(**d)
    writer.commit()
    with ix.searcher(weighting=_weighting()) as s:
        hits = s.search(q, limit=limit, filter=_filters(types, messages, tags, instances, None), terms=True)
        return [_raw(h) for h in hits]
