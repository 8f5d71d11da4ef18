"""A block of lines mirrorfs owns inside a file a person writes too (`.gitignore`,
`.stignore`, `.gitattributes`).

The block is delimited by two comment lines::

    # BEGIN mirrorfs sync-filter (written by `mirrorfs sync-filter`; edit outside this block)
    ...
    # END mirrorfs sync-filter

(with `//` instead of `#` in a `.stignore`, where Syncthing's comments start so).

mirrorfs rewrites only what is between them (a file without the block gets it
at its end) and never a line outside: a person's own patterns, comments, line
endings and a BOM stay as they were. Writing an empty block removes it.
Writes go through the one write path (`storage.Store.update`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mirrorfs import storage
from mirrorfs.errors import InvalidValueError
from mirrorfs.note import BOM, detect_newline


def begin_line(name: str, command: str, comment: str = "#") -> str:
    return f"{comment} BEGIN mirrorfs {name} (written by `mirrorfs {command}`; edit outside this block)"


def end_line(name: str, comment: str = "#") -> str:
    return f"{comment} END mirrorfs {name}"


def _span(lines: list[str], name: str, comment: str) -> tuple[int, int] | None:
    """(index of the BEGIN line, index of the END line) of the block *name* in *lines*."""
    begin = f"{comment} BEGIN mirrorfs {name}"
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == begin or ln.startswith(begin + " ")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip() == end_line(name, comment)), None)
    if end is None:
        raise InvalidValueError(f"the mirrorfs {name} block has a BEGIN line but no `{end_line(name, comment)}` "
                                "line; fix the file by hand, nothing was written")
    return start, end


def block(text: str, name: str, comment: str = "#") -> list[str] | None:
    """The lines inside the block *name* of *text* (without the delimiters), or None without one."""
    lines = text.splitlines()
    span = _span(lines, name, comment)
    return None if span is None else lines[span[0] + 1: span[1]]


def with_block(text: str, name: str, lines: list[str], command: str, comment: str = "#") -> str:
    """*text* with the block *name* holding *lines* (no block when *lines* is empty)."""
    newline = detect_newline(text) if text else "\n"
    kept = text.splitlines(keepends=True)
    span = _span([ln.rstrip("\r\n") for ln in kept], name, comment)
    new = [begin_line(name, command, comment), *lines, end_line(name, comment)] if lines else []
    new_text = "".join(ln + newline for ln in new)
    if span is not None:
        start = span[0]
        if not new and start and not kept[start - 1].strip() and span[1] == len(kept) - 1:
            start -= 1  # the blank line put before a block added at the end goes with it
        return "".join(kept[:start]) + new_text + "".join(kept[span[1] + 1:])
    if not new:
        return text
    if text and not text.endswith("\n"):
        text += newline
    return text + (newline if text.strip() else "") + new_text


def write_block(store: storage.Store, path: str | os.PathLike, name: str, lines: list[str], command: str,
                comment: str = "#") -> bool:
    """Set the block *name* of the file at *path* (created if missing); True when the file changed."""
    path = Path(path)
    changed: list[bool] = []

    def change(data: bytes | None) -> bytes:
        raw = (data or b"").decode("utf-8")
        bom = BOM if raw.startswith(BOM) else ""
        text = raw[len(bom):]
        after = with_block(text, name, lines, command, comment)
        changed.append(after != text)
        return (bom + after).encode("utf-8")

    if not lines and not path.exists():
        return False
    try:
        store.update(path, change)
    except UnicodeDecodeError:
        raise InvalidValueError(f"{path} is not UTF-8 text; nothing was written") from None
    return bool(changed and changed[-1])


def read_block(path: str | os.PathLike, name: str, comment: str = "#") -> list[str] | None:
    """The lines of the block *name* in the file at *path* (None: no file or no block)."""
    data = storage.read(path).data
    if data is None:
        return None
    text = data.decode("utf-8", "replace")
    return block(text[1:] if text.startswith(BOM) else text, name, comment)
