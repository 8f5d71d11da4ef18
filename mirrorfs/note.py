"""A note as bytes: parse without loss, edit one property or the body, render back.

`parse(data).render() == data` for every file mirrorfs accepts as text. The
front matter is kept as its original text; edits splice new lines into it
(see `frontmatter_edit`) rather than dumping YAML, so comments, quoting, key
order and line endings of every untouched line survive.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import yaml

from mirrorfs import frontmatter_edit, storage
from mirrorfs.errors import UnparseableNoteError, UnreadableNoteError, UnsafeEditError

BOM = "\ufeff"
DEFAULT_MAX_BYTES = storage.MAX_NOTE_BYTES

# libyaml's loader reads front matter several times faster, same results.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_OPEN = re.compile(r"---[ \t]*(\r\n|\n)")
_CLOSE = re.compile(r"^---[ \t]*(?:\r\n|\n|\Z)", re.M)
_TOML_OPEN = re.compile(r"\+\+\+[ \t]*\r?\n")


class Split(NamedTuple):
    """A note's text cut at its front-matter fences, by the fences alone (no YAML parse)."""

    fm_open: str  # the opening `---` line, "" when there is no front matter
    fm_text: str
    fm_close: str
    body: str
    unterminated: bool  # starts with `---` but has no closing line: all of it is body


def split(text: str) -> Split:
    """The one front-matter splitter: every reader (notes, snippets, reflections) cuts here."""
    m = _OPEN.match(text)
    if not m:
        return Split("", "", "", text, False)
    close = _CLOSE.search(text, m.end())
    if not close:
        return Split("", "", "", text, True)
    return Split(m.group(0), text[m.end():close.start()], close.group(0), text[close.end():], False)


def body_of(text: str) -> str:
    """The body of a decoded note text (BOM allowed), without parsing its YAML."""
    return split(text.lstrip(BOM)).body


@dataclass(frozen=True)
class Note:
    """A parsed note. Immutable: edits return a new Note."""

    bom: str = ""
    # The opening `---` line with its line ending, "" when there is no front matter.
    fm_open: str = ""
    # The YAML text between the fences, exactly as in the file.
    fm_text: str = ""
    # The closing `---` line with its line ending (may lack one at end of file).
    fm_close: str = ""
    body: str = ""
    newline: str = "\n"
    meta: dict = field(default_factory=dict)
    # Why the front matter cannot be used (invalid YAML, not a mapping,
    # unterminated); None when the note is fine.
    error: str | None = None
    path: str | None = None

    @property
    def has_front_matter(self) -> bool:
        return bool(self.fm_open)

    @property
    def text(self) -> str:
        """The whole decoded text, BOM excluded."""
        return self.fm_open + self.fm_text + self.fm_close + self.body

    def render(self) -> bytes:
        """The note's bytes."""
        return (self.bom + self.text).encode("utf-8")

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)

    def check_editable(self) -> None:
        """Raise UnparseableNoteError if this note's front matter must not be edited."""
        if self.error is not None:
            raise UnparseableNoteError(self.path or "<note>", self.error)

    def existing_key(self, key: Any) -> Any:
        """The key as loaded (`1` for "1"), so a CLI string finds a non-string key."""
        if key in self.meta:
            return key
        return next((k for k in self.meta if str(k) == str(key)), key)

    def set(self, key: str, value: Any) -> "Note":
        """Return a note with property *key* set to *value*, other lines untouched."""
        self.check_editable()
        if not self.has_front_matter and _TOML_OPEN.match(self.body):
            # A YAML block above Hugo's TOML front matter would break the file for Hugo.
            raise UnsafeEditError(
                f"{self.path or '<note>'} starts with TOML front matter (+++): mirrorfs edits YAML front "
                "matter only; nothing was written")
        key = self.existing_key(key)
        if key in self.meta and self.meta[key] == value:
            return self
        if not self.has_front_matter:
            fm_text = frontmatter_edit.set_key("", key, value, self.newline)
            note = _reparse(self, "---" + self.newline, fm_text, "---" + self.newline, self.body)
        else:
            fm_text = frontmatter_edit.set_key(self.fm_text, key, value, self.newline)
            note = _reparse(self, self.fm_open, fm_text, self.fm_close, self.body)
        expected = dict(self.meta)
        expected[key] = _normalise(value)
        _verify(note, expected)
        return note

    def update(self, values: dict) -> "Note":
        """Set several properties, in order."""
        note = self
        for key, value in values.items():
            note = note.set(key, value)
        return note

    def unset(self, key: str) -> "Note":
        """Return a note without property *key* (every copy of a duplicated key)."""
        self.check_editable()
        key = self.existing_key(key)
        if key not in self.meta:
            return self
        fm_text = frontmatter_edit.unset_key(self.fm_text, key)
        note = _reparse(self, self.fm_open, fm_text, self.fm_close, self.body)
        expected = {k: v for k, v in self.meta.items() if k != key}
        _verify(note, expected)
        return note

    def with_body(self, body: str) -> "Note":
        """Return a note with a new body and the front matter bytes untouched."""
        fm_close = self.fm_close
        if fm_close and body and not fm_close.endswith("\n"):
            fm_close += self.newline
        return replace(self, body=body, fm_close=fm_close)


_MISSING = object()


def _normalise(value: Any) -> Any:
    """What *value* loads back as once written (tuples become lists, etc.)."""
    return yaml.safe_load(frontmatter_edit.render("k", value))["k"]


def _verify(note: Note, expected: dict) -> None:
    """Refuse an edit whose result does not load to exactly the intended mapping."""
    if note.meta != expected:
        changed = sorted(
            str(k) for k in set(note.meta) | set(expected) if note.meta.get(k, _MISSING) != expected.get(k, _MISSING)
        )
        raise UnsafeEditError(
            f"{note.path or '<note>'}: refusing an edit that would change other properties too: "
            + ", ".join(changed)
        )


def _reparse(old: Note, fm_open: str, fm_text: str, fm_close: str, body: str) -> Note:
    """Build the edited note and prove the edit did what it meant to."""
    meta, error = load_yaml(fm_text)
    if error is not None:
        # An edit must never turn a good note into a broken one.
        raise UnparseableNoteError(old.path or "<note>", f"edit would break the front matter: {error}")
    fm_close = fm_close if fm_close.endswith(("\n", "\r\n")) or body == "" else fm_close + old.newline
    return replace(old, fm_open=fm_open, fm_text=fm_text, fm_close=fm_close, body=body, meta=meta)


def yaml_problem(exc: yaml.YAMLError, first_line: int = 2) -> str:
    """One line a person can act on: what is wrong and where (file line, the `---` being line 1)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).replace('in "<unicode string>", ', "").split())
    where = f" at line {mark.line + first_line}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def load_yaml(fm_text: str) -> tuple[dict, str | None]:
    """Load front matter YAML; return (mapping, None) or ({}, reason)."""
    try:
        data = yaml.load(fm_text, Loader=_Loader) if fm_text.strip() else {}
    except yaml.YAMLError as exc:
        return {}, yaml_problem(exc)
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"front matter is a {type(data).__name__}, not a mapping of properties"
    return data, None


def decode(data: bytes, path: str | os.PathLike | None = None) -> tuple[str, str]:
    """Split off a BOM and decode UTF-8; raise UnreadableNoteError for binary or bad bytes."""
    where = str(path) if path is not None else "<note>"
    if b"\x00" in data:
        raise UnreadableNoteError(where, "binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableNoteError(
            where, f"not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    if text.startswith(BOM):
        return BOM, text[1:]
    return "", text


def detect_newline(text: str) -> str:
    """The line ending of the first line; LF for a file without one."""
    i = text.find("\n")
    return "\r\n" if i > 0 and text[i - 1] == "\r" else "\n"


def parse(data: bytes, path: str | os.PathLike | None = None) -> Note:
    """Parse note bytes. Bad YAML sets `note.error`; only undecodable bytes raise."""
    bom, text = decode(data, path)
    return parse_text(text, path=path, bom=bom)


def parse_text(text: str, path: str | os.PathLike | None = None, bom: str = "") -> Note:
    """Parse already-decoded text (BOM removed)."""
    where = str(path) if path is not None else None
    newline = detect_newline(text)
    parts = split(text)
    if parts.unterminated:
        return Note(
            bom=bom, body=text, newline=newline, path=where,
            error="front matter starts with --- but has no closing --- line",
        )
    if not parts.fm_open:
        return Note(bom=bom, body=text, newline=newline, path=where)
    meta, error = load_yaml(parts.fm_text)
    return Note(
        bom=bom,
        fm_open=parts.fm_open,
        fm_text=parts.fm_text,
        fm_close=parts.fm_close,
        body=parts.body,
        newline=newline,
        meta=meta,
        error=error,
        path=where,
    )


def new(meta: dict, body: str = "", newline: str = "\n") -> Note:
    """A note mirrorfs creates: front matter in the documented key order, then body."""
    fm_text = frontmatter_edit.render_new({k: v for k, v in meta.items() if v is not None}, newline)
    if body and not body.startswith(newline):
        body = newline + body
    note = parse_text("---" + newline + fm_text + "---" + newline + body)
    return note


def read_note(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> Note:
    """Read and parse a note file; raise UnreadableNoteError for what is not a note."""
    data = read_bytes(path, max_bytes)
    return parse(data, path)


def read_bytes(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a note file's bytes: regular files only, refusing huge ones with a clear error."""
    try:
        return storage.read_regular(path, max_bytes)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise UnreadableNoteError(str(path), "is a folder, not a note") from None
    except PermissionError:
        raise UnreadableNoteError(str(path), "permission denied") from None
    except OSError as exc:
        raise UnreadableNoteError(str(path), f"cannot read: {exc.strerror or exc}") from None


def read_front_matter(path: str | os.PathLike, chunk: int = 65536) -> dict:
    """Only the front matter of a possibly long file (a session with thousands of messages)."""
    with os.fdopen(storage.open_regular(path), "rb") as f:
        head = f.read(chunk)
        if not head.lstrip(BOM.encode("utf-8")).startswith(b"---"):
            return {}
        while b"\n---" not in head[3:]:
            more = f.read(chunk)
            if not more:
                break
            head += more
    text_end = head.find(b"\n---", 3)
    end = head.find(b"\n", text_end + 4)
    sample = head if end < 0 else head[: end + 1]
    return parse(sample, path).meta
