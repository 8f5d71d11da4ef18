"""The watcher's changes embedded in the background, one batch at a time.

The daemon hands each settled batch of changed paths (optionally with the bytes
it read) to `EmbedQueue.submit`; one thread coalesces what arrives while it is
busy and runs `VectorStore.update` on it, so a slow embedding server never holds
up the index or the next batch of file events. `submit(None)` asks for a
whole-vault pass (at start, or after an error).
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Mapping

from mirrorfs.embed import Embedder
from mirrorfs.errors import MirrorfsError
from mirrorfs.vectors import UpdateReport, VectorStore


class EmbedQueue:
    """A background thread that keeps one vault's vectors of one embedder up to date."""

    def __init__(self, vault, embedder: Embedder,
                 on_done: Callable[[UpdateReport], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        self.vault = vault
        self.embedder = embedder
        self.on_done = on_done
        self.on_error = on_error
        self._pending: dict[str, bytes | None] = {}
        self._full = False
        self._busy = False
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="mirrorfs-embed", daemon=True)

    def start(self) -> "EmbedQueue":
        self._thread.start()
        return self

    def submit(self, changed: Iterable[str] | Mapping[str, bytes | None] | None) -> None:
        """Queue changed vault-relative paths (or None: the whole vault)."""
        with self._cond:
            if changed is None:
                self._full = True
            elif isinstance(changed, Mapping):
                self._pending.update(changed)
            else:
                for path in changed:
                    self._pending.setdefault(str(path), None)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._full or self._pending),
                                       timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand and end the thread (queued work is left to the next start)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        store = VectorStore.for_vault(self.vault)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._full or self._pending)
                if self._stopping:
                    return
                full, batch = self._full, self._pending
                self._full, self._pending, self._busy = False, {}, True
            try:
                report = store.update(self.vault, None if full else batch, self.embedder)
                if self.on_done:
                    self.on_done(report)
            except (MirrorfsError, OSError) as exc:
                # A batch that failed was not stored: a later whole-vault pass finds it again.
                if self.on_error:
                    self.on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
