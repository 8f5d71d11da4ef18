"""`mirrorfs watch`: the long-running process that keeps one vault alive on a device.

It ties the layers together: the watcher (settled, hash-verified changes) feeds
the search index (one commit per batch), the conflict merger, the last-seen
store that merges use as their base, and the reflections feed that prints what
other instances did. It keeps the index open and answers queries over a Unix
socket, keeps this instance's presence card fresh without churning it, and
writes a small status file for `mirrorfs status`. One watcher per vault per
device: a lock file in the state folder enforces it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import filelock

from mirrorfs import conflict_owner, conflicts, ignore, snapshots, storage
from mirrorfs.daemon_queries import QueryHandlers, status_path
from mirrorfs.errors import AlreadyWatchingError, MirrorfsError
from mirrorfs.known_files import KnownFiles
from mirrorfs.reflections import (
    OwnWrite,
    Reflector,
    merge_reflection,
    seal_reflection,
    vault_reflections,
)
from mirrorfs.server import QueryServer
from mirrorfs.vault import Vault
from mirrorfs.watcher import Change, Watcher

LOCK_FILE = "watch.lock"
# How often the status file and the presence card are looked at.
HEARTBEAT = 5.0
LAST_EVENTS = 20
EXEC_TIMEOUT = 60


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(vault: Vault) -> dict[str, Any]:
    """What the watcher of this vault on this device last reported, and whether it runs."""
    try:
        data = json.loads(status_path(vault).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False}
    lock = filelock.FileLock(str(Path(vault.state_dir) / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        held = True
    else:
        held = False
        lock.release()
    data["running"] = bool(held and data.get("running") and _pid_alive(int(data.get("pid", 0))))
    return data


def _embed_batch(changes: list[Change]) -> dict[str, bytes | None]:
    """What the embedding queue needs of a batch: each path with the bytes read (None: gone or unread)."""
    batch: dict[str, bytes | None] = {}
    for change in changes:
        if change.old_path:
            batch[change.old_path] = None
        batch[change.path] = change.content
    return batch


class WatchDaemon(QueryHandlers):
    """Watch one vault; see the module docstring. Use start()/stop() or run()."""

    def __init__(
        self,
        vault: Vault,
        *,
        polling: bool = False,
        exec_cmd: str | None = None,
        echo: Callable[[str], None] = print,
        warn: Callable[[str], None] | None = None,
        serve: bool = True,
        watcher_options: dict[str, Any] | None = None,
        heartbeat: float = HEARTBEAT,
        on_reflection: Callable[[Any], None] | None = None,
    ):
        self.vault = vault
        self.heartbeat = heartbeat
        # Given, it receives each reflection instead of *echo* its line (`watch --json`).
        self.on_reflection = on_reflection
        self.polling = polling
        self.exec_cmd = exec_cmd
        self.echo = echo
        self.warn = warn or (lambda line: echo(f"warning: {line}"))
        self.serve = serve
        self.watcher_options = watcher_options or {}
        self._lock = filelock.FileLock(str(Path(vault.state_dir) / LOCK_FILE))
        self._stop = threading.Event()
        self._mutex = threading.RLock()
        self._index = None
        self._indexed = threading.Event()  # set once the first index is done
        self._progress = (0, 0)  # files of the first index done, of all
        self._reflector: Reflector | None = None
        self._known_files: KnownFiles | None = None
        self._watcher: Watcher | None = None
        self._server: QueryServer | None = None
        self._embeds = None  # an EmbedQueue once this device has embeddings
        self._threads: list[threading.Thread] = []
        self._last_events: deque[dict] = deque(maxlen=LAST_EVENTS)
        # Conflict copies to look at again: copy -> (when, take over from the chosen watcher).
        self._later: dict[str, tuple[float, bool]] = {}
        self._errors = 0
        self._batches = 0
        self._lag: float | None = None
        self._started = _now()
        self.requests: dict[str, int] = {}  # served over the socket, per op
        self.on_batch: Callable[[list[Change]], None] | None = None  # for tests and benchmarks

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> "WatchDaemon":
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            other = read_status(self.vault)
            raise AlreadyWatchingError(
                f"a watcher already runs for {self.vault.root} on this device"
                f" (pid {other.get('pid', '?')}, since {other.get('started', '?')}); stop it first"
            ) from None
        try:
            self._start_locked()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _start_locked(self) -> None:
        self._write_status()
        self._touch(status="watching", force=True)
        # What the last watcher here knew: the start-up scan reads only what changed since.
        self._known_files = KnownFiles(self.vault.state_dir)
        try:
            seen = self._known_files.watched()
        except MirrorfsError as exc:
            self._report(exc)
            self._known_files, seen = None, None
        self._reflector = Reflector(self.vault, store=self._known_files)
        if seen is None:
            self._tell_backlog(self._reflector.start())
        else:
            self._reflector.resume(seen)
        if self.serve:
            self._server = QueryServer(Path(self.vault.state_dir), self._handlers())
            if not self._server.start():
                self.warn("state folder path too long for a socket; searches will not go through the watcher")
                self._server = None
        self._watcher = Watcher(
            self.vault.root,
            self._on_changes,
            on_error=self._on_error,
            polling=self.polling,
            **({"known": seen, "on_known": self._known_files.update_watched} if self._known_files else {}),
            **self.watcher_options,
        ).start()
        if seen is not None:
            self._spawn(self._after_scan(self._backlog), "mirrorfs-backlog")
        self._spawn(self._after_scan(self._open_index), "mirrorfs-first-index")
        self._spawn(self._heartbeat, "mirrorfs-heartbeat")

    def _tell_backlog(self, backlog: list) -> None:
        if backlog:
            self.echo(f"{len(backlog)} unread reflection{'s' if len(backlog) != 1 else ''} since this instance "
                      "last looked (`mirrorfs reflections`)")

    def _after_scan(self, work: Callable[[], None]) -> Callable[[], None]:
        """*work*, run once the watcher's start-up scan is done: on two cores, the scan
        sharing the interpreter with the index's stat pass would take twice as long."""
        def run() -> None:
            while not self._stop.is_set() and not self._watcher.wait_ready(0.5):
                pass
            if not self._stop.is_set():
                work()

        return run

    def _open_index(self) -> None:
        """Open the index (Whoosh's import alone is a third of a restart), then index or catch up."""
        from mirrorfs.index import Index

        self._index = Index.of(self.vault)  # its own lock: queries (the shared Index) never wait on it
        self._first_index()

    def _backlog(self) -> None:
        """Count the unread reflections (after the start-up scan: see `_after_scan`)."""
        try:
            # The start-up scan just learned every note's mtime: no stat of each again.
            self._tell_backlog(vault_reflections(self.vault, candidates=self._watcher.modified_since))
        except MirrorfsError as exc:
            self._report(exc)

    @property
    def indexing(self) -> bool:
        """True until the first full index is done (queries answer from what is indexed so far)."""
        return not self._indexed.is_set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the watcher knows the vault and the first index is done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._watcher is None or not self._watcher.wait_ready(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._indexed.wait(left):
            return False
        with self._mutex:  # the first index's catch-up pass runs under it, right after the flag
            return True

    def wait_embedded(self, timeout: float) -> bool:
        """Wait until the embeddings have caught up with what was seen (True at once without any)."""
        deadline = time.monotonic() + timeout
        if not self._indexed.wait(timeout):
            return False
        embeds = self._embeds
        return embeds is None or embeds.wait_idle(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """Stop cleanly: deliver what is pending, close the socket, mark the card idle."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._server is not None:
            self._server.stop()
        for thread in self._threads:
            thread.join(10)
        if self._embeds is not None:  # after the joins: the first index's thread starts it
            self._embeds.stop()
        self._touch(status="idle", force=True)
        if self._index is not None:
            self._index.close()
        if self._known_files is not None:
            self._known_files.close()
        self._write_status(running=False)
        if self._lock.is_locked:
            self._lock.release()

    def run(self) -> None:
        """Start, then block until SIGINT/SIGTERM (or stop() from another thread)."""
        import signal

        def on_signal(signum, frame):
            self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            # Say "watching" only once the start-up scan knows every file: a
            # note saved before that is learned as it is, not seen as a change.
            while not self._stop.is_set() and not self._watcher.wait_ready(0.5):
                pass
            self.echo(f"watching {self.vault.root} as {self.vault.instance} (Ctrl-C to stop)")
            while not self._stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
            self.echo("watcher stopped")

    # -- work -------------------------------------------------------------------

    def _first_index(self) -> None:
        """Index (or catch up) in the background; queries answer meanwhile, saying so."""
        from mirrorfs.build import terminal_progress

        terminal = terminal_progress()

        def progress(done: int, total: int) -> None:
            self._progress = (done, total)
            if terminal is not None:
                terminal(done, total)

        built = False
        try:
            report = self._index.ensure(progress=progress)
            for warning in report.warnings[:20]:
                self.warn(warning)
            built = True
        except MirrorfsError as exc:
            self._report(exc)
        finally:
            # Batches skip the index until this is set; one more pass catches
            # what they skipped (under the mutex, so that no batch falls between).
            with self._mutex:
                self._indexed.set()
                if built:
                    try:
                        self._index.reconcile()
                    except MirrorfsError as exc:
                        self._report(exc)
        with self._mutex:  # a semantic query may have started it already
            if self._embeds is None:
                self._embeds = self._embed_queue()
        # Conflict copies that arrived while no watcher ran. Another device may be
        # starting too: decide once its "watching" card has had time to arrive.
        due = time.monotonic() + conflict_owner.START_SECONDS
        for name in conflicts.find_conflicts(self.vault):
            self._later.setdefault(name.relpath, (due, False))

    def _embed_queue(self):
        """Keep this device's embeddings fresh in the background, when it has any.

        Embeddings are opted into (`mirrorfs index embed`): a watcher never
        starts embedding a whole vault on its own. A first pass catches what
        changed while no watcher ran.
        """
        if self._stop.is_set() or not self.vault.has_embeddings():
            return None
        from mirrorfs import embedders
        from mirrorfs.embed_queue import EmbedQueue
        from mirrorfs.errors import EmbedderError

        try:
            embedder = embedders.get()
        except EmbedderError as exc:
            self.warn(f"embeddings are not kept up to date: {exc}")
            return None
        queue = EmbedQueue(self.vault, embedder, on_error=self._report).start()
        queue.submit(None)
        return queue

    def _on_changes(self, changes: list[Change]) -> None:
        started = time.monotonic()
        with self._mutex:
            for change in changes:
                self._last_events.append(
                    {"time": _now(), "kind": change.kind, "path": change.path, "old_path": change.old_path}
                )
                if conflicts.conflict_original(change.path) is not None or (
                        change.content is not None and conflicts.copy_name(self.vault, change.path) is not None):
                    if change.content is not None and (self._watcher is None or not self._watcher.ready):
                        # There before this watcher started: decided as the first index's finds are.
                        self._later.setdefault(change.path, (time.monotonic() + conflict_owner.START_SECONDS, False))
                    elif change.content is not None:
                        self._merge(change.path)
                    continue
                # What a person (or another instance) did comes first; a seal of it follows.
                sig = self._watcher.signature_of(change.path) if self._watcher is not None else None
                for reflection in self._reflector.apply(change, sig):
                    self._emit(reflection)
                if change.content is not None and self._unsealed(change):
                    # Plaintext a person marked secret: sealed when unlocked, and never
                    # copied into this device's state (snapshots) in either case.
                    self._seal(change.path)
                elif change.content is not None:
                    try:
                        snapshots.remember(self.vault, change.path, change.content)
                    except MirrorfsError as exc:
                        self._report(exc)
            if self._embeds is not None:
                self._embeds.submit(_embed_batch(changes))
            if not self.indexing:
                # The watcher's bytes and hashes straight to the index: only these
                # documents, one Whoosh commit however many files changed. (While
                # the first index runs, its catch-up pass covers them.)
                report = self._index.apply(changes)
                for warning in report.warnings[:5]:
                    self.warn(warning)
            try:
                self._reflector.flush()  # the fingerprints for the next start
            except MirrorfsError as exc:
                self._report(exc)
            self._batches += 1
            self._lag = time.monotonic() - started
        if self.on_batch is not None:
            self.on_batch(changes)

    def _unsealed(self, change: Change) -> bool:
        from mirrorfs.crypto import has_unsealed

        return has_unsealed(change.content.decode("utf-8", "replace"))

    def _seal(self, path: str) -> None:
        """Seal the ```secret blocks a person saved in *path* (only when the vault is unlocked)."""
        from mirrorfs.crypto import find_seal_markers, with_path
        from mirrorfs.errors import CryptoError

        if not self.vault.unlocked:
            self.warn(f"{path} holds a ```secret block in plaintext; unlock (watch --unlock) or run `mirrorfs seal`")
            return
        writes: list[OwnWrite] = []
        blocks: list[int] = []

        def change(note):
            sealed = note.with_body(self.vault.seal_text(note.body))
            before, after = note.render(), sealed.render()
            if after != before:
                # Announced before the write: the rewrite may come back before edit() returns.
                blocks.append(len(find_seal_markers(note.body)))
                writes.append(self._reflector.expect(path, before, after))
            return sealed

        try:
            sealed = self.vault.edit(path, change)
        except CryptoError as exc:
            self._report(with_path(exc, path))
            return
        except MirrorfsError as exc:
            self._report(exc)
            return
        if writes:
            reflection = seal_reflection(self.vault, path, sealed.render(), blocks[-1])
            self._reflector.record(reflection, writes[-1:])  # later looks fold the rewrite into it
            self._emit(reflection)

    def _merge(self, copy: str, take_over: bool = False, starting: bool = False) -> None:
        """Merge one conflict copy; its rewrite of the original is announced as this instance's own.

        Every device sees the copy, but only the watcher `conflict_owner` picks
        merges it; this one takes over when the copy is still there
        `HANDOVER_SECONDS` later (*take_over*). *starting*: the copy was there
        when this watcher started.
        """
        writes: list[OwnWrite] = []

        def before_write(rel: str, old: bytes, new: bytes) -> None:
            writes.append(self._reflector.expect(rel, old, new))

        with self._mutex:  # also called from the heartbeat thread
            if not take_over and not self._chosen(copy, starting):
                return
            self._later.pop(copy, None)
            try:
                result = conflicts.merge_conflict(self.vault, copy, before_write=before_write)
            except MirrorfsError as exc:
                self._report(exc)
                return
            if result.status == "gone":
                return
            reflection = merge_reflection(self.vault, result)
            self._reflector.record(reflection, writes[-1:] if result.written else [])
            self._emit(reflection)

    def _chosen(self, copy: str, starting: bool = False) -> bool:
        """True when this watcher is the one to merge *copy*; otherwise the handover is scheduled."""
        snap = storage.read(Path(self.vault.root) / copy)
        if snap.data is None:
            self._later.pop(copy, None)
            return False
        try:
            chosen = conflict_owner.merger(self.vault, copy, snap.sha or "",
                                           recent=conflict_owner.HANDOVER_SECONDS if starting else 0.0)
        except MirrorfsError:
            chosen = self.vault.instance  # cards unreadable: merging here loses nothing
        if chosen == self.vault.instance:
            return True
        if not self._later.get(copy, (0, False))[1]:
            self._later[copy] = (time.monotonic() + conflict_owner.HANDOVER_SECONDS, True)
            self.echo(f"conflict copy {copy} is {chosen}'s to merge; this watcher takes over if it is "
                      f"still there in {int(conflict_owner.HANDOVER_SECONDS)} s")
        return False

    def _look_again(self) -> None:
        """Decide on the copies found at start-up, take over the ones left alone too long, forget the gone."""
        now = time.monotonic()
        for copy, (due, take_over) in list(self._later.items()):
            if not (Path(self.vault.root) / copy).exists():
                self._later.pop(copy, None)
            elif now >= due:
                if not take_over:
                    self._later.pop(copy, None)
                self._merge(copy, take_over=take_over, starting=not take_over)

    def _emit(self, reflection) -> None:
        if self.on_reflection is not None:
            self.on_reflection(reflection)
        else:
            self.echo(reflection.line())
        if not self.exec_cmd:
            return
        env = {**os.environ, **reflection.env()}
        try:
            # A shell, like a git hook: the person's own command line, with $MIRRORFS_* to expand.
            done = subprocess.run(
                self.exec_cmd, shell=True, env=env, timeout=EXEC_TIMEOUT, stdin=subprocess.DEVNULL
            )
            if done.returncode != 0:
                self._report(MirrorfsError(f"--exec command exited with {done.returncode}"))
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._report(MirrorfsError(f"--exec command failed: {exc}"))

    def _on_error(self, exc: BaseException) -> None:
        self._report(exc)

    def _report(self, exc: BaseException) -> None:
        self._errors += 1
        self.warn(str(exc))

    def _touch(self, status: str | None = None, force: bool = False) -> None:
        try:
            self.vault.instances.touch(status=status, force=force)
        except MirrorfsError as exc:  # a person broke the card's YAML: say so, carry on
            self._report(exc)

    def _heartbeat(self) -> None:
        last_sweep = time.monotonic() - storage.STALE_TEMP_SECONDS  # the first beat sweeps
        while not self._stop.wait(self.heartbeat):
            if self._vault_missing():
                # Never write into a vault folder that is gone: the card would
                # recreate it, and an empty folder would look like mass deletion.
                self._write_status()
                continue
            self._touch()
            if time.monotonic() - last_sweep >= storage.STALE_TEMP_SECONDS:
                last_sweep = time.monotonic()
                self._sweep_temps()
            self._write_status()
            if self._later:
                self._look_again()

    def _vault_missing(self) -> bool:
        watcher = self._watcher.status() if self._watcher is not None else None
        if watcher is not None and watcher.vault_missing:
            return True
        if self.vault.store.root_present():
            return False
        # Another folder stands where the vault was: a restored copy is adopted
        # (as the watcher does) once it holds notes; an empty mount point never.
        if not self.vault.root.is_dir() or next(ignore.iter_note_paths(self.vault.root, on_error=lambda e: None),
                                                 None) is None:
            return True
        self.vault.store.adopt_root()
        return False

    def _sweep_temps(self) -> None:
        """Remove the temp files killed writers left (synced copies of half-written notes)."""
        for temp in storage.stale_temp_files(self.vault.root):
            try:
                temp.unlink()
                self.warn(f"removed {temp.relative_to(self.vault.root).as_posix()}, a temp file a killed writer left")
            except OSError:
                continue

    def _write_status(self, running: bool = True) -> None:
        watcher = self._watcher.status() if self._watcher is not None else None
        data = {
            "running": running,
            "paused": "the vault folder is gone (moved, deleted or unmounted); watching resumes when it is back"
            if running and self._vault_missing() else None,
            "pid": os.getpid(),
            "vault": str(self.vault.root),
            "instance": self.vault.instance,
            "started": self._started,
            "updated": _now(),
            "indexing": self.indexing,
            "batches": self._batches,
            "errors": self._errors + (watcher.errors if watcher else 0),
            "lag_seconds": round(self._lag, 3) if self._lag is not None else None,
            "pending": watcher.pending if watcher else 0,
            "known_notes": watcher.known if watcher else 0,
            "socket": str(self._server.path) if self._server else None,
            "last_events": list(self._last_events),
        }
        # No fsync: a status a crash loses is rewritten at the next beat, and a
        # flush on the start-up path costs more than the rest of a restart.
        storage.atomic_write(status_path(self.vault), json.dumps(data, indent=2).encode("utf-8"), sync=False)

    # -- queries over the socket ---------------------------------------------------
