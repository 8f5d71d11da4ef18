"""End to end: one vault shared by two real Syncthing daemons, `mirrorfs watch` on each.

Side a is the device of instance `laptop`, side b the device of instance
`phone`. Each device has its own state folder (cursor, index, last-seen
versions), so the watchers run as real `mirrorfs watch` subprocesses with
their own MIRRORFS_STATE_DIR, and the library writes of this process switch
MIRRORFS_STATE_DIR to the writing device's folder (`device()`), or run in
writer subprocesses when both devices write at once.

These tests fail (never skip) when syncthing is missing: the harness installs
it with .ci/install-syncthing or fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from syncthing import SyncthingPair

from mirrorfs import conflicts, note
from mirrorfs.vault import Vault

REPO = Path(__file__).resolve().parent.parent
LINE_TIMEOUT = 30
SYNC_TIMEOUT = 30
NAMES = ("laptop", "phone")


class Device:
    """One side: its vault folder, its per-device state folder and its watcher."""

    def __init__(self, name: str, root: Path, state: Path):
        self.name = name
        self.root = root
        self.state = state
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []  # every line read so far, for failure messages

    def env(self) -> dict:
        return {**os.environ, "MIRRORFS_STATE_DIR": str(self.state), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO)}

    @contextlib.contextmanager
    def active(self, init: bool = False):
        """The vault as this device opens it: library calls use its own state folder."""
        previous = os.environ.get("MIRRORFS_STATE_DIR")
        os.environ["MIRRORFS_STATE_DIR"] = str(self.state)
        try:
            if init:
                yield Vault.init(self.root, name="Mira", instance=self.name)
            else:
                yield Vault.open(self.root, instance=self.name)
        finally:
            if previous is None:
                os.environ.pop("MIRRORFS_STATE_DIR", None)
            else:
                os.environ["MIRRORFS_STATE_DIR"] = previous

    def start_watch(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mirrorfs", "--vault", str(self.root), "--instance", self.name, "watch"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env(),
            stdin=subprocess.DEVNULL,
        )
        proc = self.proc

        def pump():
            for line in proc.stdout:
                self.lines.put(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        self.wait_line(lambda l: l.startswith("watching "), what="the watcher to start")

    def stop_watch(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"`mirrorfs watch` of {self.name} ignored SIGTERM for 20 s")

    def wait_line(self, predicate, timeout: float = LINE_TIMEOUT, what: str = "a line") -> str:
        """The first line from the watcher (since the last one taken) matching *predicate*."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise queue.Empty
                line = self.lines.get(timeout=left)
            except queue.Empty:
                pytest.fail(f"{self.name}: timed out after {timeout}s waiting for {what}; "
                            f"watcher printed: {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def drain(self) -> list[str]:
        """Lines printed so far and not taken yet."""
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                self.seen += out
                return out

    def run(self, code: str) -> subprocess.Popen:
        """Start a writer subprocess acting as this device."""
        return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def mesh(tmp_path):
    """Vault made on the laptop, synced to the phone, a watcher on each side."""
    # Short state folders: the watcher's query socket lives there (108-byte limit).
    states = Path(tempfile.mkdtemp(prefix="mfs-e2e-"))
    laptop = Device("laptop", tmp_path / "laptop", states / "laptop")
    phone = Device("phone", tmp_path / "phone", states / "phone")
    with laptop.active(init=True):
        pass
    with SyncthingPair(laptop.root, phone.root, names=NAMES, base_dir=tmp_path / "syncthing") as pair:
        pair.wait_connected()
        pair.wait_in_sync(SYNC_TIMEOUT)
        assert (phone.root / ".mirrorfs" / "config.yaml").read_bytes() == \
            (laptop.root / ".mirrorfs" / "config.yaml").read_bytes()
        pair.laptop, pair.phone = laptop, phone
        with watching(states, laptop, phone):
            yield pair


@contextlib.contextmanager
def watching(states: Path, *devices: Device):
    """`mirrorfs watch` on each device for the block; then each must stop cleanly, without a traceback."""
    try:
        for d in devices:
            d.start_watch()
        yield
    finally:
        codes = [d.stop_watch() for d in devices]
        for d in devices:
            d.drain()
        shutil.rmtree(states, ignore_errors=True)
    assert codes == [0] * len(devices), (codes, [d.seen for d in devices])
    for d in devices:
        assert not [l for l in d.seen if "Traceback" in l], (d.name, d.seen)


def _conflict_copies(root: Path) -> list[str]:
    """Conflict copies left among the notes (the trash under .mirrorfs/ does not count)."""
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*.md"))
    return sorted(r for r in rels if not r.startswith(".mirrorfs/") and conflicts.conflict_original(r))


def _body_lines(path: Path) -> set[str]:
    return {l for l in note.parse(path.read_bytes(), path.name).body.splitlines() if l.strip()}


def _kept_text(root: Path, rel: str) -> str:
    """The note, its conflict copies and the trash: where a line of either side may be kept."""
    parts = [(root / rel).read_text(encoding="utf-8")]
    stem = Path(rel).stem
    parts += [p.read_text(encoding="utf-8", errors="replace") for p in (root / rel).parent.glob(f"{stem}*.md")
              if conflicts.conflict_original(p.relative_to(root).as_posix())]
    trash = root / ".mirrorfs" / "trash"
    if trash.is_dir():
        parts += [p.read_text(encoding="utf-8", errors="replace") for p in trash.rglob("*") if p.is_file()]
    return "\n".join(parts)


def test_memory_written_on_laptop_is_reflected_on_phone(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    started = time.monotonic()
    with laptop.active() as v:
        v.remember("Sam prefers oolong tea, no sugar", title="Prefers tea")
    line = phone.wait_line(lambda l: "added memory" in l, what="the reflection of the laptop's memory")
    print(f"laptop write -> phone reflection line: {time.monotonic() - started:.2f} s")
    assert line == 'laptop added memory "Prefers tea" (memory/prefers-tea.md)'
    with phone.active() as v:
        found = [r for r in v.reflections() if r.path == "memory/prefers-tea.md"]
    assert [(r.instance, r.line()) for r in found] == [("laptop", line)]
    # The laptop's own write is no reflection on the laptop.
    assert not [l for l in laptop.drain() if "added memory" in l]


WRITER = """
    import sys
    from mirrorfs.vault import Vault
    root, instance, sid, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = Vault.open(root, instance=instance).sessions.load(sid)
    for i in range(count):
        s.add_message("user", f"{instance} message {i}")
"""


def test_both_append_to_their_own_sessions_at_once_nothing_lost(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    count = 30
    ids = {}
    for d in (laptop, phone):
        with d.active() as v:
            ids[d.name] = v.sessions.create(f"Chat on the {d.name}").id
    writers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(d.root), d.name,
                                 ids[d.name], str(count)], env=d.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for d in (laptop, phone)]
    for w in writers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    expected = {d: [f"{d} message {i}" for i in range(count)] for d in NAMES}

    def complete():
        mesh.wait_in_sync(SYNC_TIMEOUT)
        for d in (laptop, phone):
            with d.active() as v:
                for name in NAMES:
                    got = [m.content for m in v.sessions.load(ids[name]).get_messages()]
                    if got != expected[name]:
                        return False
        return True

    mesh.wait_until(complete, SYNC_TIMEOUT, "both sessions complete on both sides", interval=0.3)
    for d in (laptop, phone):
        assert _conflict_copies(d.root) == [], d.name
        with d.active() as v:
            for name in NAMES:
                path = v.sessions.load(ids[name]).path
                assert note.parse(path.read_bytes(), path.name).error is None, (d.name, path)
    # Messages the other instance wrote reach each watcher as reflections.
    phone.wait_line(lambda l: l.startswith("laptop ") and "Chat on the laptop" in l,
                    what="a reflection of the laptop's session")
    laptop.wait_line(lambda l: l.startswith("phone ") and "Chat on the phone" in l,
                     what="a reflection of the phone's session")


def test_same_note_edited_on_both_sides_while_paused_loses_nothing(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    rel = "memory/reading-list.md"
    clash = "memory/colour.md"  # both sides change the same line: kept for a person
    with laptop.active() as v:
        v.remember("Reading list:\n- Dune\n- Solaris", title="Reading list")
        v.remember("Favourite colour: green", title="Colour")
        session = v.sessions.create("Shared chat")
        session.add_message("user", "hello from before the pause")
    # Each device has seen the base version once its watcher reported it.
    waiting = {f"({rel})", f"({clash})", f"({session.relpath})"}

    def seen_all(line: str) -> bool:
        waiting.difference_update({w for w in waiting if w in line})
        return not waiting

    phone.wait_line(seen_all, what=f"the base versions of {waiting}")

    mesh.pause()
    with laptop.active() as v:
        v.memory.update(rel, text="Reading list:\n- Dune\n- Solaris\n- Laptop adds Neuromancer")
        v.memory.update(clash, text="Favourite colour: blue (laptop)")
        v.sessions.load(session.id).add_message("user", "laptop said this while paused")
    with phone.active() as v:
        v.memory.update(rel, text="Reading list:\n- Dune (reread)\n- Solaris\n- Phone adds Hyperion")
        v.memory.update(clash, text="Favourite colour: red (phone)")
        v.sessions.load(session.id).add_message("user", "phone said this while paused")
    # Syncthing keeps the version with the newer mtime (1 s resolution): make it the
    # phone's, so the laptop's watcher meets the copy first, every run alike.
    session_rel = session.relpath
    for r in (rel, clash, session_rel):
        newer = (laptop.root / r).stat().st_mtime + 5
        os.utime(phone.root / r, (newer, newer))
    mesh.scan()
    mesh.resume()

    laptop_lines = {"Reading list:", "- Dune", "- Solaris", "- Laptop adds Neuromancer"}
    phone_lines = {"Reading list:", "- Dune (reread)", "- Solaris", "- Phone adds Hyperion"}
    clash_lines = {"Favourite colour: blue (laptop)", "Favourite colour: red (phone)"}
    want_messages = {"hello from before the pause", "laptop said this while paused",
                     "phone said this while paused"}
    state = {}

    def settled():
        mesh.wait_in_sync(SYNC_TIMEOUT)
        for d in (laptop, phone):
            copies = _conflict_copies(d.root)
            kept = _kept_text(d.root, rel)
            with d.active() as v:
                got = {m.content for m in v.sessions.load(session.id).get_messages()}
            session_copies = [c for c in copies if conflicts.conflict_original(c) == session_rel]
            state[d.name] = {"copies": copies, "messages": sorted(got)}
            if got != want_messages or session_copies:
                return False
            if [l for l in laptop_lines | phone_lines if l not in kept]:
                return False
            if [l for l in clash_lines if l not in _kept_text(d.root, clash)]:
                return False
        return all((laptop.root / r).read_bytes() == (phone.root / r).read_bytes() for r in (rel, clash))

    try:
        mesh.wait_until(settled, 45, "merged session and note on both sides", interval=0.5)
    finally:
        laptop.drain(), phone.drain()
        print("state:", json.dumps(state, indent=1), "\nlaptop:", laptop.seen, "\nphone:", phone.seen)

    print("merged note:\n" + (laptop.root / rel).read_text(encoding="utf-8"))
    # The note: every line of both edits is in the note, a kept copy or the trash.
    for d in (laptop, phone):
        kept = _kept_text(d.root, rel)
        assert [l for l in laptop_lines | phone_lines if l not in kept] == [], d.name
        # The base is known on both devices, so the merge is certain: both additions in the note.
        body = _body_lines(d.root / rel)
        assert {"- Laptop adds Neuromancer", "- Phone adds Hyperion", "- Dune (reread)"} <= body, (d.name, body)
    # A watcher said so (the note merged cleanly, so it is no open conflict).
    assert [l for l in laptop.seen + phone.seen if f"merged conflict copy of {rel}" in l], \
        (laptop.seen, phone.seen)
    # The session: merged by message union on both sides, no copy left.
    assert [l for l in laptop.seen + phone.seen if "merged conflict copy" in l and session_rel in l], \
        (laptop.seen, phone.seen)
    for d in (laptop, phone):
        with d.active() as v:
            got = [m.content for m in v.sessions.load(session.id).get_messages()]
        assert sorted(got) == sorted(want_messages), (d.name, got)
        assert got[0] == "hello from before the pause"
    # The same line changed on both sides: neither is picked; the note holds one side,
    # the copy the other, and the conflict is surfaced to the person.
    for d in (laptop, phone):
        assert [l for l in clash_lines if l not in _kept_text(d.root, clash)] == [], d.name
        listed = json.loads(subprocess.run(
            [sys.executable, "-m", "mirrorfs", "--vault", str(d.root), "--instance", d.name,
             "conflicts", "list", "--json"],
            capture_output=True, text=True, env=d.env(), check=True).stdout)
        assert [c["original"] for c in listed] == [clash], (d.name, listed)
    assert [l for l in laptop.seen + phone.seen if "kept for a person" in l and clash.split("/")[1][:-3] in l], \
        (laptop.seen, phone.seen)
