"""The watcher against real save patterns, with real watchdog observers.

Every test waits on a queue filled by the watcher's callback, with a timeout;
none sleeps for a fixed time. "No change reported" is shown with a barrier: a
sentinel note written afterwards, whose change must arrive first.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import queue
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import editors
import pytest

from mirrorfs.ignore import iter_note_paths
from mirrorfs.watcher import (
    ADDED,
    DELETED,
    MODIFIED,
    MOVED,
    Change,
    EventsLostError,
    VaultUnavailableError,
    Watcher,
)

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 15.0


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fresh_scan(root: Path) -> dict[str, str]:
    """What a full reconcile knows: the hash of every note on disk."""
    return {p.as_posix(): sha((root / p).read_bytes()) for p in iter_note_paths(root)}


class Feed:
    """The batches and errors a watcher delivers, waited for with a timeout."""

    def __init__(self):
        self.batches: queue.Queue[list[Change]] = queue.Queue()
        self.errors: queue.Queue[BaseException] = queue.Queue()
        self.seen: list[Change] = []
        self.batch_count = 0

    def on_changes(self, batch: list[Change]) -> None:
        self.batches.put(list(batch))

    def on_error(self, exc: BaseException) -> None:
        self.errors.put(exc)

    def until(self, predicate, what: str, timeout: float = TIMEOUT) -> list[Change]:
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; got {self.summary()}")
            try:
                batch = self.batches.get(timeout=left)
            except queue.Empty:
                continue
            self.batch_count += 1
            self.seen.extend(batch)
        return self.seen

    def until_content(self, rel: str, content: bytes, timeout: float = TIMEOUT) -> list[Change]:
        """Wait until the last change of *rel* carries *content*; return the changes of *rel*."""
        self.until(lambda seen: (last := self.last(rel)) is not None and last.content == content,
                   f"{rel} with content {content[:60]!r}", timeout)
        return self.of(rel)

    def barrier(self, root: Path, name: str = "zz-sentinel.md") -> list[Change]:
        """Write a sentinel note and wait for it: every earlier event has been judged."""
        data = f"sentinel {time.monotonic_ns()}\n".encode()
        (root / name).write_bytes(data)
        self.until_content(name, data)
        return [c for c in self.seen if c.path != name]

    def error(self, kind: type, timeout: float = TIMEOUT) -> BaseException:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out waiting for a {kind.__name__} on on_error")
            try:
                exc = self.errors.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(exc, kind):
                return exc

    def of(self, rel: str) -> list[Change]:
        return [c for c in self.seen if rel in (c.path, c.old_path)]

    def last(self, rel: str) -> Change | None:
        for c in reversed(self.seen):
            if c.path == rel:
                return c
        return None

    def summary(self) -> str:
        shown = [(c.kind, c.path, c.old_path, (c.content or b"")[:30]) for c in self.seen[-20:]]
        return f"{len(self.seen)} changes, last: {shown}"


@pytest.fixture
def watch():
    """Start a watcher on a folder; returns (watcher, feed) once its start-up scan is done."""
    started: list[Watcher] = []

    def start(root: Path, *, polling: bool = False, feed: Feed | None = None, wait: bool = True, **options):
        feed = feed or Feed()
        if polling:
            options.setdefault("poll_interval", 0.1)
        w = Watcher(root, feed.on_changes, on_error=feed.on_error, polling=polling, **options)
        w.start()
        started.append(w)
        if wait:
            assert w.wait_ready(TIMEOUT), "the start-up scan did not finish"
        return w, feed

    yield start
    for w in started:
        w.stop(flush=False)


@pytest.fixture(params=["inotify", "polling"])
def polling(request) -> bool:
    return request.param == "polling"


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "vault"
    path.mkdir()
    return path


@pytest.fixture
def editor_root():
    """A vault outside the temp dir, where vim and emacs make their rename-away backups."""
    base = editors.editor_folder()
    path = base / "vault"
    path.mkdir()
    yield path
    shutil.rmtree(base, ignore_errors=True)


def assert_final(w: Watcher, feed: Feed, root: Path, rel: str) -> list[Change]:
    """The last content reported for *rel* is what is on disk, and the watcher knows it."""
    final = (root / rel).read_bytes()
    changes = feed.until_content(rel, final)
    assert w.known_hashes()[rel] == sha(final)
    assert all(c.kind != DELETED for c in changes if c.path == rel), changes
    assert all(c.content for c in changes if c.path == rel), f"a transient empty read was reported: {changes}"
    return changes


# ------------------------------------------------------------- in-place writes

def test_python_truncate_and_write_with_pauses(watch, root, polling):
    note = root / "note.md"
    note.write_text("# Old\nold body\n")
    w, feed = watch(root, polling=polling)

    def writer():
        with open(note, "w") as f:  # truncates: the file is empty for a while
            time.sleep(0.3)
            f.write("# New\n")
            f.flush()
            time.sleep(0.3)
            f.write("new body\n")

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    changes = assert_final(w, feed, root, "note.md")
    assert changes[-1].kind == MODIFIED
    if not polling:  # inotify tells when the writer closes the file: one change only
        assert [c.content for c in changes] == [b"# New\nnew body\n"]


def test_cp_over_existing_note(watch, root, tmp_path, polling):
    (root / "note.md").write_text("before\n")
    src = tmp_path / "elsewhere.md"
    src.write_text("after cp, a longer text than before\n")
    w, feed = watch(root, polling=polling)
    editors.cp(src, root / "note.md")
    assert assert_final(w, feed, root, "note.md")[-1].kind == MODIFIED


def test_rsync_inplace(watch, root, tmp_path, polling):
    (root / "note.md").write_text("line one\nline two\n" * 200)
    src = tmp_path / "elsewhere.md"
    src.write_text("line one\nline 2\n" * 150)
    w, feed = watch(root, polling=polling)
    ino = (root / "note.md").stat().st_ino
    editors.rsync_inplace(src, root / "note.md")
    assert (root / "note.md").stat().st_ino == ino, "rsync --inplace did not write in place"
    assert assert_final(w, feed, root, "note.md")[-1].kind == MODIFIED


def test_vim_compatible_copies_backup_and_writes_in_place(watch, editor_root, polling):
    note = editor_root / "note.md"
    note.write_text("status: draft\n")
    w, feed = watch(editor_root, polling=polling)
    ino = note.stat().st_ino
    editors.vim_substitute(note, "draft", "final", compatible=True)
    assert note.stat().st_ino == ino, "vi-compatible vim was expected to write in place"
    assert assert_final(w, feed, editor_root, "note.md")[-1].content == b"status: final\n"


# ------------------------------------------------- temp file renamed onto note

def test_sed_in_place_renames_temp_onto_note(watch, root, polling):
    note = root / "note.md"
    note.write_text("colour: red\n")
    w, feed = watch(root, polling=polling)
    ino = note.stat().st_ino
    editors.sed_in_place(note, "s/red/blue/")
    assert note.stat().st_ino != ino, "sed -i was expected to rename a temp file onto the note"
    changes = assert_final(w, feed, root, "note.md")
    assert [c.kind for c in changes] == [MODIFIED]
    assert changes[-1].content == b"colour: blue\n"


# ---------------------------------------------- rename away, then create anew

def test_vim_renames_note_away_then_writes_new(watch, editor_root, polling):
    note = editor_root / "note.md"
    note.write_text("mood: calm\n")
    w, feed = watch(editor_root, polling=polling)
    ino = note.stat().st_ino
    editors.vim_substitute(note, "calm", "curious")
    assert note.stat().st_ino != ino, (
        "vim wrote in place: it only renames the note away outside 'backupskip' (the temp dirs)")
    changes = assert_final(w, feed, editor_root, "note.md")
    assert [c.kind for c in changes] == [MODIFIED]
    assert changes[-1].content == b"mood: curious\n"
    assert "note.md~" not in w.known_hashes()


def test_emacs_renames_note_away_then_writes_new(watch, editor_root, polling):
    note = editor_root / "note.md"
    note.write_text("first line\n")
    w, feed = watch(editor_root, polling=polling)
    ino = note.stat().st_ino
    editors.emacs_append(note, "added by emacs\n")
    assert note.stat().st_ino != ino, "emacs wrote in place: it renames away only outside the temp dir"
    assert (editor_root / "note.md~").read_text() == "first line\n"  # its backup, kept, and ignored
    changes = assert_final(w, feed, editor_root, "note.md")
    assert [c.kind for c in changes] == [MODIFIED]
    assert changes[-1].content == b"first line\nadded by emacs\n"
    assert sorted(w.known_hashes()) == ["note.md"]


# ---------------------------------------------------------- delete, then create

def test_delete_then_create_is_an_update(watch, root, polling):
    note = root / "note.md"
    note.write_text("v1\n")
    w, feed = watch(root, polling=polling)
    note.unlink()
    note.write_text("v2\n")
    changes = assert_final(w, feed, root, "note.md")
    assert [c.kind for c in changes] == [MODIFIED]


def test_syncthing_deletes_then_renames_its_temp_onto_note(watch, root, polling):
    note = root / "memory" / "tea.md"
    note.parent.mkdir()
    note.write_text("prefers: coffee\n")
    w, feed = watch(root, polling=polling)
    temp = root / "memory" / ".syncthing.tea.md.tmp"
    temp.write_text("prefers: tea\n")
    note.unlink()
    os.rename(temp, note)
    changes = assert_final(w, feed, root, "memory/tea.md")
    assert [c.kind for c in changes] == [MODIFIED]
    assert ".syncthing.tea.md.tmp" not in str(feed.seen)


# ------------------------------------------------------------ slow writers

def test_slow_chunked_writer(watch, root, polling):
    w, feed = watch(root, polling=polling)
    chunks = [f"chunk {i}: {'x' * 200}\n".encode() for i in range(8)]

    def writer():
        with open(root / "download.md", "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(0.15)  # longer than the settle delay: the file looks done each time

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    changes = assert_final(w, feed, root, "download.md")
    assert changes[-1].content == b"".join(chunks)
    assert changes[0].kind == ADDED
    if not polling:  # held until the writer closed the file
        assert len(changes) == 1


# ------------------------------------------------------------ moves

def test_move_in_and_out_of_the_vault(watch, root, tmp_path, polling):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "visitor.md").write_text("from outside\n")
    w, feed = watch(root, polling=polling)

    os.rename(outside / "visitor.md", root / "visitor.md")
    changes = feed.until_content("visitor.md", b"from outside\n")
    assert [c.kind for c in changes] == [ADDED]

    os.rename(root / "visitor.md", outside / "visitor.md")
    feed.until(lambda seen: seen[-1].kind == DELETED, "the move out")
    assert [c.kind for c in feed.of("visitor.md")] == [ADDED, DELETED]
    assert w.known_hashes() == {}


def test_rename_within_vault_is_a_move(watch, root, polling):
    (root / "a.md").write_text("alpha\n")
    (root / "archive").mkdir()
    w, feed = watch(root, polling=polling)
    os.rename(root / "a.md", root / "archive" / "a.md")
    feed.until(lambda seen: any(c.kind == MOVED for c in seen), "the move")
    assert [(c.kind, c.path, c.old_path, c.content) for c in feed.seen] == [
        (MOVED, "archive/a.md", "a.md", b"alpha\n")]
    assert w.known_hashes() == {"archive/a.md": sha(b"alpha\n")}


def test_move_into_a_folder_created_just_before(watch, root, polling):
    (root / "a.md").write_text("alpha\n")
    w, feed = watch(root, polling=polling)
    (root / "new").mkdir()
    os.rename(root / "a.md", root / "new" / "a.md")  # before any watch on new/ exists
    seen = feed.barrier(root)
    assert [(c.kind, c.path, c.old_path) for c in seen] == [(MOVED, "new/a.md", "a.md")]
    assert w.known_hashes() == fresh_scan(root)


def test_folder_rename_moves_every_note_below(watch, root, polling):
    for rel in ("projects/a.md", "projects/b.md", "projects/deep/c.md", "other.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"{rel}\n")
    w, feed = watch(root, polling=polling)
    os.rename(root / "projects", root / "work")
    feed.until(lambda seen: len({c.path for c in seen}) >= 3, "three moves")
    moves = sorted((c.kind, c.old_path, c.path, c.content) for c in feed.seen)
    assert moves == [
        (MOVED, "projects/a.md", "work/a.md", b"projects/a.md\n"),
        (MOVED, "projects/b.md", "work/b.md", b"projects/b.md\n"),
        (MOVED, "projects/deep/c.md", "work/deep/c.md", b"projects/deep/c.md\n"),
    ]
    assert w.known_hashes() == fresh_scan(root)


def test_folder_moved_in_with_files_inside(watch, root, tmp_path, polling):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "x.md").write_text("x\n")
    (tree / "sub" / "y.md").write_text("y\n")
    (tree / "sub" / "ignore.txt").write_text("not a note\n")
    w, feed = watch(root, polling=polling)
    os.rename(tree, root / "tree")
    feed.until(lambda seen: len(seen) >= 2, "both notes")
    assert sorted((c.kind, c.path) for c in feed.seen) == [(ADDED, "tree/sub/y.md"), (ADDED, "tree/x.md")]


def test_folder_moved_out_deletes_every_note_below(watch, root, tmp_path, polling):
    for rel in ("old/a.md", "old/deep/b.md", "stay.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"{rel}\n")
    w, feed = watch(root, polling=polling)
    os.rename(root / "old", tmp_path / "old")  # inotify reports the folder only, no file events
    feed.until(lambda seen: len(seen) >= 2, "two deletions")
    assert sorted((c.kind, c.path) for c in feed.seen) == [(DELETED, "old/a.md"), (DELETED, "old/deep/b.md")]
    assert w.known_hashes() == {"stay.md": sha(b"stay.md\n")}


# ------------------------------------------------------------ no change

def test_touch_reports_no_change(watch, root, polling):
    note = root / "note.md"
    note.write_text("unchanged\n")
    w, feed = watch(root, polling=polling)
    subprocess.run(["touch", str(note)], check=True)
    os.utime(note, ns=(1, 1))  # even an mtime far in the past
    assert feed.barrier(root) == []


def test_rewriting_same_bytes_reports_no_change(watch, root, polling):
    note = root / "note.md"
    note.write_bytes(b"same\r\n")
    w, feed = watch(root, polling=polling)
    note.write_bytes(b"same\r\n")
    assert feed.barrier(root) == []


def test_temporaries_and_tool_folders_are_ignored(watch, root, polling):
    w, feed = watch(root, polling=polling)
    for rel in (".obsidian/plugins/x.md", ".git/notes.md", ".stversions/old.md", ".trash/gone.md",
                "note.md~", ".#note.md", "4913", ".syncthing.note.md.tmp", "~syncthing~note.md.tmp",
                ".note.md.swp", ".mirrorfs-1234.tmp", "sedAbC123", "note.md.backup", "notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("noise\n")
    assert feed.barrier(root) == []
    assert sorted(w.known_hashes()) == ["zz-sentinel.md"]


# ------------------------------------------------------------ bulk

def _make_tree(folder: Path, count: int) -> None:
    for i in range(count):
        sub = folder / f"d{i % 20:02d}"
        if i < 20:
            sub.mkdir(parents=True)
        (sub / f"note-{i:05d}.md").write_bytes(f"---\ntitle: note {i}\n---\nbody {i}\n".encode())


def test_bulk_copy_of_10000_notes(watch, root, tmp_path):
    source = tmp_path / "source"
    _make_tree(source, 10_000)
    (root / "existing.md").write_text("already here\n")
    w, feed = watch(root)
    editors.cp(source, root / "imported", recursive=True)
    expected = fresh_scan(root)
    assert len(expected) == 10_001
    feed.until(lambda seen: len({c.path for c in seen}) >= 10_000, "10,000 added notes", timeout=120)
    assert w.known_hashes() == expected
    last = {c.path: c for c in feed.seen}
    assert all(c.kind == ADDED and sha(c.content) == expected[c.path] for c in last.values())
    assert feed.batch_count < 100, "events were not batched"


def test_inotify_overflow_is_detected_and_recovered(watch, root, tmp_path):
    """Starve watchdog's reader so that the kernel's event queue really overflows."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    count = limit  # create + modify + close per file: three times the queue's size
    w, feed = watch(root)
    flag_path = tmp_path / "done.flag"
    flag_path.write_bytes(b"\0")
    script = textwrap.dedent(f"""
        import mmap, os
        root = {str(root)!r}
        for i in range({count}):
            with open(os.path.join(root, f"n{{i:05d}}.md"), "w") as f:
                f.write(f"note {{i}}\\n")
        with open({str(flag_path)!r}, "r+b") as f:
            m = mmap.mmap(f.fileno(), 1)
            m[0] = 1
            m.flush()
    """)
    with open(flag_path, "r+b") as f:
        flag = mmap.mmap(f.fileno(), 1)
    interval = sys.getswitchinterval()
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        # Hold the GIL without any system call until the writer is done: watchdog's
        # reader thread cannot drain the inotify queue meanwhile.
        sys.setswitchinterval(60)
        deadline = time.monotonic() + 60
        while flag[0] == 0 and time.monotonic() < deadline:
            pass
    finally:
        sys.setswitchinterval(interval)
    assert child.wait(60) == 0
    assert flag[0] == 1, "the writer did not finish"
    flag.close()
    feed.error(EventsLostError, timeout=30)
    expected = fresh_scan(root)
    feed.until(lambda seen: len({c.path for c in seen}) >= count, f"{count} notes after the overflow",
               timeout=120)
    assert w.known_hashes() == expected
    assert w.status().overflows >= 1


# ------------------------------------------------------------ restart and seeding

def test_start_without_seed_learns_silently(watch, root):
    (root / "a.md").write_text("a\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.md").write_text("b\n")
    w, feed = watch(root)
    assert w.known_hashes() == fresh_scan(root)
    assert feed.barrier(root) == []


def test_restart_reports_what_changed_while_down(watch, root):
    for name in ("keep", "edit", "gone", "moveme"):
        (root / f"{name}.md").write_text(f"{name}\n")
    w, feed = watch(root)
    seed = w.known_hashes()
    w.stop()

    (root / "edit.md").write_text("edited while down\n")
    (root / "gone.md").unlink()
    (root / "new.md").write_text("new while down\n")
    (root / "archive").mkdir()
    os.rename(root / "moveme.md", root / "archive" / "moveme.md")

    w2, feed2 = watch(root, known=seed)
    got = {(c.kind, c.path, c.old_path, c.content) for c in _drain(feed2)}
    assert got == {
        (DELETED, "gone.md", None, None),
        (MODIFIED, "edit.md", None, b"edited while down\n"),
        (ADDED, "new.md", None, b"new while down\n"),
        (MOVED, "archive/moveme.md", "moveme.md", b"moveme\n"),
    }
    assert w2.known_hashes() == fresh_scan(root)


def _drain(feed: Feed) -> list[Change]:
    """Everything delivered so far (the start-up scan is delivered before ready is set)."""
    out = []
    while True:
        try:
            out.extend(feed.batches.get_nowait())
        except queue.Empty:
            return out


def test_seed_with_ignored_or_non_note_paths_reports_them_deleted(watch, root):
    (root / "a.md").write_text("a\n")
    (root / ".trash").mkdir()
    (root / ".trash" / "old.md").write_text("old\n")
    seed = {"a.md": sha(b"a\n"), ".trash/old.md": sha(b"old\n")}
    w, feed = watch(root, known=seed)
    assert [(c.kind, c.path) for c in _drain(feed)] == [(DELETED, ".trash/old.md")]


# ------------------------------------------------------------ robustness

def test_vanished_vault_root_is_reported_never_mass_deleted(watch, tmp_path, polling):
    root = tmp_path / "vault"
    root.mkdir()
    for i in range(5):
        (root / f"n{i}.md").write_text(f"{i}\n")
    w, feed = watch(root, polling=polling)
    before = w.known_hashes()
    parked = tmp_path / "unplugged"
    os.rename(root, parked)  # like an unmounted drive
    (parked / "n0.md").unlink()  # its events still arrive, with the vault's paths
    feed.error(VaultUnavailableError)
    assert w.known_hashes() == before
    os.rename(parked, root)
    (root / "n1.md").write_text("edited after it came back\n")
    feed.until(lambda seen: {c.path for c in seen} >= {"n0.md", "n1.md"}, "n0 deleted and n1 modified")
    seen = feed.barrier(root)
    assert sorted((c.kind, c.path) for c in seen) == [(DELETED, "n0.md"), (MODIFIED, "n1.md")]
    assert w.known_hashes() == fresh_scan(root)


def test_empty_folder_in_place_of_the_vault_is_not_adopted(watch, tmp_path, polling):
    root = tmp_path / "vault"
    root.mkdir()
    for i in range(3):
        (root / f"n{i}.md").write_text(f"{i}\n")
    w, feed = watch(root, polling=polling)
    before = w.known_hashes()
    os.rename(root, tmp_path / "unmounted")
    root.mkdir()  # what an unmounted drive leaves: an empty mount point
    feed.error(VaultUnavailableError)
    assert w.known_hashes() == before
    # A folder with notes in the vault's place is a real replacement (a restore): adopted.
    (root / "n0.md").write_text("restored\n")
    feed.until(lambda seen: {c.path for c in seen} >= {"n0.md", "n1.md", "n2.md"}, "the reconcile")
    assert sorted((c.kind, c.path) for c in feed.seen) == [
        (DELETED, "n1.md"), (DELETED, "n2.md"), (MODIFIED, "n0.md")]
    assert w.known_hashes() == fresh_scan(root)
    (root / "n3.md").write_text("watched again\n")
    feed.until_content("n3.md", b"watched again\n")


def test_unreadable_folder_is_reported_never_deleted():
    """Run as a process that permission checks apply to (root only loses its override)."""
    base = editors.editor_folder()  # outside /tmp/pytest-of-root, which is private to root
    try:
        root = base / "vault"
        (root / "locked").mkdir(parents=True)
        (root / "a.md").write_text("a\n")
        (root / "locked" / "b.md").write_text("b\n")
        seed = fresh_scan(root)
        (root / "locked").chmod(0)
        script = textwrap.dedent("""
            import json, queue, sys
            from mirrorfs.watcher import Watcher
            root, seed = sys.argv[1], json.loads(sys.argv[2])
            changes, errors = [], queue.Queue()
            w = Watcher(root, lambda b: changes.extend((c.kind, c.path) for c in b),
                        on_error=errors.put, known=seed)
            w.start()
            assert w.wait_ready(15)
            err = errors.get(timeout=15)
            w.stop()
            print(json.dumps({"changes": changes, "error": type(err).__name__, "path": err.path,
                              "message": str(err), "known": sorted(w.known_hashes())}))
        """)
        args = [sys.executable, "-c", script, str(root), json.dumps(seed)]
        if os.geteuid() == 0:
            args = [shutil.which("setpriv") or "setpriv", "--bounding-set", "-dac_override,-dac_read_search"] + args
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["changes"] == []
        assert report["error"] == "WatchError" and report["path"] == "locked", report
        assert report["known"] == ["a.md", "locked/b.md"]
    finally:
        (base / "vault" / "locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_failing_callback_gets_the_same_changes_again(root):
    feed = Feed()
    calls = []

    def flaky(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("index busy")
        feed.on_changes(batch)

    with Watcher(root, flaky, on_error=feed.on_error) as w:
        assert w.wait_ready(TIMEOUT)
        (root / "n.md").write_text("hello\n")
        assert str(feed.error(RuntimeError)) == "index busy"
        assert "n.md" not in w.known_hashes()
        changes = feed.until_content("n.md", b"hello\n")
        assert [c.kind for c in changes] == [ADDED]
        assert w.known_hashes() == {"n.md": sha(b"hello\n")}


def test_many_writes_are_batched(watch, root):
    w, feed = watch(root)
    for i in range(300):
        (root / f"n{i:03d}.md").write_text(f"{i}\n")
    feed.until(lambda seen: len(seen) >= 300, "300 notes")
    assert feed.batch_count <= 10


def test_stop_joins_threads_and_flushes(root):
    feed = Feed()
    before = {t.ident for t in threading.enumerate()}
    w = Watcher(root, feed.on_changes, on_error=feed.on_error, settle=5.0)
    w.start()
    assert w.wait_ready(TIMEOUT)
    (root / "late.md").write_text("written just before stop\n")  # long before it settles
    w.stop()
    assert [(c.kind, c.path) for c in _drain(feed)] == [(ADDED, "late.md")]
    assert not w.status().running
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before


def test_memory_stays_flat_over_a_long_run(watch, root):
    w, feed = watch(root)
    names = [f"n{i:02d}.md" for i in range(20)]

    def round_(r: int) -> None:
        for name in names:
            (root / name).write_text(f"round {r} of {name}\n")
        feed.until(lambda seen: len(seen) >= len(names), f"round {r}")
        feed.seen.clear()

    for r in range(5):
        round_(r)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for r in range(5, 35):
            round_(r)
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    status = w.status()
    assert status.pending == 0 and status.known == len(names)
    # ~20 KB is what is alive mid-batch; a leak of one small object per event
    # (30 rounds x 20 notes x ~3 events) would add well over 100 KB.
    assert grown < 100_000, f"memory grew by {grown} bytes over 30 rounds"
