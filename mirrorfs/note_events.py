"""A cheap watch of one vault for a long-running entrance: which notes someone else changed.

The MCP server tells subscribed clients when another instance (or a person)
wrote to the vault. It needs no index, merges or reflections for that, only
the paths: an OS-level watch (inotify and its kin, through watchdog) that
reports settled note paths, minus the writes the entrance made itself (known
by the sha256 of the bytes it wrote). `mirrorfs watch` does far more; this is
what a client connection can afford to run by itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Iterable

from mirrorfs.ignore import is_note_path
from mirrorfs.storage import sha256

SETTLE_SECONDS = 0.15


class NoteEvents:
    """Watch *root*; call *on_change(relpaths)* from a thread once writes settle."""

    def __init__(self, root: str | os.PathLike, on_change: Callable[[list[str]], None]):
        self.root = Path(root)
        self.on_change = on_change
        self._own: dict[str, str] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._observer = None

    def own(self, relpaths: Iterable[str]) -> None:
        """Mark the current bytes of *relpaths* as written by this entrance (not news)."""
        for rel in relpaths:
            try:
                digest = sha256((self.root / rel).read_bytes())
            except OSError:
                continue
            with self._lock:
                self._own[rel] = digest

    @property
    def running(self) -> bool:
        return self._observer is not None

    def start(self) -> None:
        if self._observer is not None:
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        events = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.is_directory:
                    return
                for raw in (event.src_path, getattr(event, "dest_path", "")):
                    if raw:
                        events._seen(os.fsdecode(raw))

        observer = Observer()
        observer.schedule(Handler(), str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def _seen(self, full: str) -> None:
        try:
            rel = Path(full).relative_to(self.root).as_posix()
        except ValueError:
            return
        if not is_note_path(rel):
            return
        with self._lock:
            self._pending.add(rel)
            if self._timer is None:
                self._timer = threading.Timer(SETTLE_SECONDS, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            paths, self._pending, self._timer = sorted(self._pending), set(), None
        news = []
        for rel in paths:
            try:
                digest: str | None = sha256((self.root / rel).read_bytes())
            except OSError:
                digest = None  # removed: never this entrance's doing, it deletes nothing
            with self._lock:
                if digest is not None and self._own.get(rel) == digest:
                    continue
            news.append(rel)
        if news:
            self.on_change(news)
