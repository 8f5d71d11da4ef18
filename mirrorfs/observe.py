"""The watchdog side of the watcher: observers, their events as vault paths, overflows, the root's identity.

Everything that knows watchdog's API lives here, so the watcher deals in
(kind, is_directory, path, destination) with vault-relative POSIX paths.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from typing import Callable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

try:  # watchdog >= 6 reports chmod/touch as its own event type
    from watchdog.events import FileAttribEvent
except ImportError:  # pragma: no cover - older watchdog folds it into "modified"
    FileAttribEvent = None

# watchdog re-registers the inotify watch of a folder created twice in a row
# (Syncthing does that for nested folders) and warns about it; the watch it
# keeps is the right one, so the warning is only noise on `mirrorfs watch`.
def quiet_warnings() -> None:
    """Silence what is only noise on `mirrorfs watch` (also inside a test's own warning filters)."""
    warnings.filterwarnings("ignore", message=r"Callback with id .* already exists for watch", category=RuntimeWarning)


quiet_warnings()

# Events worth waking up for; opened/closed-without-write events are noise (our
# own reads produce them) and are kept out of the inotify mask altogether.
EVENT_FILTER = [
    FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent,
    FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]
if FileAttribEvent is not None:
    EVENT_FILTER.append(FileAttribEvent)

# The logger whose warning is the only public trace of an inotify queue overflow.
INOTIFY_LOGGER = "watchdog.observers.inotify_c"

# kind, is_directory, vault-relative path, destination (moves only)
EventCallback = Callable[[str, bool, str, "str | None"], None]


def relpath(root: str, path: str | bytes) -> str | None:
    """*path* relative to *root* as a POSIX string ("" for the root), or None when outside."""
    path = os.fsdecode(path)
    if path == root:
        return ""
    if not path.startswith(root + os.sep):
        return None
    rel = path[len(root) + 1:]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


class _Dispatch(FileSystemEventHandler):
    def __init__(self, root: str, callback: EventCallback):
        self._root = root
        self._callback = callback

    def dispatch(self, event: FileSystemEvent) -> None:
        src = relpath(self._root, event.src_path)
        if src is None:
            return
        kind = event.event_type
        dest = relpath(self._root, event.dest_path) if kind == "moved" and event.dest_path else None
        self._callback(kind, event.is_directory, src, dest)


def start_observer(root: str, callback: EventCallback, *, polling: bool, poll_interval: float) -> BaseObserver:
    """Observe *root* recursively; *callback* gets each event, on the observer's thread."""
    observer = PollingObserver(timeout=poll_interval) if polling else Observer()
    observer.schedule(_Dispatch(root, callback), root, recursive=True, event_filter=EVENT_FILTER)
    observer.daemon = True
    observer.start()
    return observer


def stop_observer(observer: BaseObserver | None) -> None:
    """Stop *observer* and join its threads (its emitters are joined by its own stop)."""
    if observer is not None:
        observer.stop()
        if observer.is_alive():
            observer.join()


def emitters_alive(observer: BaseObserver | None) -> bool:
    """Whether *observer* still watches: an emitter dies when its folder's watch is gone."""
    return observer is not None and all(e.is_alive() for e in observer.emitters)


class OverflowAlarm(logging.Handler):
    """Calls back when watchdog logs an inotify queue overflow.

    watchdog rebuilds its watches on IN_Q_OVERFLOW but tells event handlers
    nothing; its warning in the log is the only public trace of lost events.
    """

    def __init__(self, callback: Callable[[], None]):
        super().__init__(logging.WARNING)
        self._callback = callback

    def attach(self) -> None:
        logging.getLogger(INOTIFY_LOGGER).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(INOTIFY_LOGGER).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if "overflow" in record.getMessage().lower():
                self._callback()
        except Exception:  # a logging handler must never raise
            pass


def root_identity(root: str) -> tuple[int, int] | None:
    """(device, inode) of the vault folder when it is a folder that can be listed, else None."""
    try:
        st = os.stat(root)
        if not stat.S_ISDIR(st.st_mode):
            return None
        with os.scandir(root) as it:
            next(it, None)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
