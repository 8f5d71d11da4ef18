"""Reading chat exports: a zip, its folder or a loose file, and its JSON streamed one element at a time.

ChatGPT and Claude.ai both send `conversations.json` (a JSON list, possibly
gigabytes) inside a zip with other files. Nothing here holds more than one
conversation in memory: ijson (C backend) parses the stream, a zip member is
read as a stream, and bad JSON ends the stream with one `Skipped` line saying
where it broke.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

from mirrorfs.errors import ImportSourceError
from mirrorfs.importer import Progress, Skipped


class _CountingReader:
    """A binary file wrapper that counts what was read (progress of a stream)."""

    def __init__(self, raw):
        self.raw = raw
        self.done = 0
        self._head = b""

    def peek(self, n: int = 64) -> bytes:
        while len(self._head) < n:
            more = self.raw.read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            if n is None or n < 0:
                data += self.raw.read()
            elif n > len(data):
                data += self.raw.read(n - len(data))
            elif n < len(data):
                data, self._head = data[:n], data[n:]
        else:
            data = self.raw.read(n)
        self.done += len(data)
        return data


_CONVERSATIONS = re.compile(r"^conversations(-\d+)?\.json$")


class _ZipMember:
    """One member of a zip file, read as a stream; closing it closes the archive too."""

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        self._archive = zipfile.ZipFile(path)
        try:
            self._member = self._archive.open(info)
        except BaseException:
            self._archive.close()
            raise

    def read(self, n: int = -1) -> bytes:
        return self._member.read(n)

    def __enter__(self) -> "_ZipMember":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._member.close()
        self._archive.close()


def export_files(path: str | os.PathLike) -> tuple[list[tuple[str, Callable, int]], list[str]]:
    """The `conversations.json` files of an export: a zip, a folder or the file itself.

    Returns ([(name, opener, size)], names of every file in the export) — the
    names let a source find the image files an export ships beside the JSON.
    """
    path = Path(path)
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        found = [n for n in names if _CONVERSATIONS.match(n.rsplit("/", 1)[-1])]
        if not found:
            raise ImportSourceError(f"{path}: no conversations.json in this folder")
        return [(n, lambda n=n: open(path / n, "rb"), (path / n).stat().st_size) for n in found], names
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportSourceError(f"{path}: cannot read the zip file ({exc})") from None
        found = [i for i in infos if _CONVERSATIONS.match(i.filename.rsplit("/", 1)[-1])]
        if not found:
            raise ImportSourceError(f"{path}: the zip file holds no conversations.json")
        return [(i.filename, lambda i=i: _ZipMember(path, i), i.file_size) for i in found], [i.filename for i in infos]
    if not path.is_file():
        raise ImportSourceError(f"{path}: no such file or folder")
    return [(path.name, lambda: open(path, "rb"), path.stat().st_size)], [path.name]


def conversations(path: str | os.PathLike, progress: Progress | None = None) -> Iterator[tuple[int, Any]]:
    """(number, element) for every conversation of a chat export (numbered from 1 across its
    files), or (0, Skipped) where a file cannot be read on."""
    files, _ = export_files(path)
    number = 0
    for name, opener, size in files:
        for element in stream_array(name, opener, size, progress):
            if isinstance(element, Skipped):
                yield 0, element
            else:
                number += 1
                yield number, element


def stream_array(name: str, opener: Callable, size: int, progress: Progress | None = None
                 ) -> Iterator[Any]:
    """The elements of a JSON array, one at a time (bounded memory), then None.

    Bad JSON ends the stream with a `Skipped` naming where the file broke; what
    was read before it is still yielded.
    """
    import ijson

    try:
        raw = opener()
    except (OSError, zipfile.BadZipFile) as exc:
        yield Skipped(name, f"cannot be read ({exc})")
        return
    with raw:
        reader = _CountingReader(raw)
        head = reader.peek().lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"["):
            yield Skipped(name, "not a JSON list of conversations (it does not start with '[')")
            return
        if reader.peek(3) == b"\xef\xbb\xbf":
            reader.read(3)
        count = 0
        try:
            for element in ijson.items(reader, "item", use_float=True):
                count += 1
                yield element
                if progress:
                    progress(reader.done, size)
        except (ijson.JSONError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
            first = str(exc).strip().split("\n", 1)[0].strip().rstrip(".")
            ended = any(w in first.lower() for w in ("premature eof", "incomplete"))
            why = "ends early (truncated)" if ended else f"is not valid JSON ({first})"
            yield Skipped(name, f"{why} after {count} conversations, near byte {reader.done}; the rest is not imported")
