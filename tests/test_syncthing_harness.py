"""The Syncthing harness works: real daemons sync, delete, and make conflict copies.

These tests fail (never skip) when syncthing is missing: run .ci/install-syncthing.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from syncthing import SyncthingError, SyncthingPair, syncthing_binary, syncthing_version

CONFLICT_RE = re.compile(
    r"^(?P<stem>.+)\.sync-conflict-(?P<date>\d{8})-(?P<time>\d{6})-(?P<device>[A-Z2-7]{7})"
    r"(?P<ext>\.md)$")


@pytest.fixture
def pair(tmp_path):
    with SyncthingPair(tmp_path / "vault-a", tmp_path / "vault-b", names=("a", "b"),
                       base_dir=tmp_path / "syncthing") as p:
        p.wait_connected()
        yield p


def _write(path: Path, text: str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _conflict_copies(folder: Path, stem: str) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if (m := CONFLICT_RE.match(p.name)) and m["stem"] == stem)


def _is_running_syncthing(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"syncthing" in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_syncthing_is_installed():
    version = syncthing_version(syncthing_binary())
    assert version.startswith("syncthing v"), version


def test_file_written_on_a_appears_on_b(pair):
    note = "memory/prefers-tea.md"
    content = "---\ntype: memory\n---\nPrefers tea, ☕ no sugar.\r\n"
    _write(pair.folder("a") / note, content)

    pair.wait_in_sync()

    assert (pair.folder("b") / note).read_bytes() == content.encode()


def test_file_deleted_on_a_disappears_on_b(pair):
    note = pair.folder("a") / "memory" / "gone.md"
    _write(note, "soon gone\n")
    pair.wait_in_sync()
    assert (pair.folder("b") / "memory" / "gone.md").exists()

    note.unlink()
    pair.wait_in_sync()

    assert not (pair.folder("b") / "memory" / "gone.md").exists()
    assert (pair.folder("b") / "memory").is_dir()


def test_concurrent_edits_while_paused_make_a_conflict_copy(pair):
    """Edits of one file on both sides while the link is paused, then resume.

    Observed with Syncthing 1.19.2 (Debian 1.19.2~ds1):

    - The version with the NEWER modification time wins: after sync both sides
      hold the winner's bytes under the original name. (With equal mtimes a
      tie-break on the version vectors decides — treat it as arbitrary.)
    - The LOSING side moves its own version aside as
      `<stem>.sync-conflict-YYYYMMDD-HHMMSS-DEVICE<ext>` and then syncs that
      copy like any file, so in the end BOTH sides hold the conflict copy.
    - The copy holds the LOSING content, byte for byte, and keeps the loser's
      mtime (it is a rename of the loser's file).
    - DEVICE is the WINNER's short device id (first 7 characters of its id: the
      device that last modified the winning version), not the loser's.
      The copy itself is "modified by" the loser (it was scanned there first).
    - YYYYMMDD-HHMMSS is the time the conflict was resolved, in the losing
      daemon's local time zone — not the mtime of either version.
    - An edit on one side against a delete on the other is NOT a conflict: the
      edit wins silently, the file comes back on the deleting side, and no
      conflict copy is made.
    """
    a, b = pair.folder("a"), pair.folder("b")
    now = time.time()
    for name in ("newer-on-a.md", "newer-on-b.md", "edit-vs-delete.md"):
        _write(a / name, "base\n", now - 100)
    pair.wait_in_sync()

    pair.pause()
    _write(a / "newer-on-a.md", "a wins\n", now - 20)
    _write(b / "newer-on-a.md", "b loses\n", now - 50)
    _write(a / "newer-on-b.md", "a loses\n", now - 50)
    _write(b / "newer-on-b.md", "b wins\n", now - 20)
    _write(a / "edit-vs-delete.md", "edited on a\n", now - 20)
    (b / "edit-vs-delete.md").unlink()
    pair.scan()
    before = datetime.now().replace(microsecond=0)
    pair.resume()
    pair.wait_in_sync()
    after = datetime.now()

    cases = [("newer-on-a", "a", "b", "a wins\n", "b loses\n"),
             ("newer-on-b", "b", "a", "b wins\n", "a loses\n")]
    for stem, winner, loser, won, lost in cases:
        copies = {}
        for side in ("a", "b"):
            folder = pair.folder(side)
            assert (folder / f"{stem}.md").read_text() == won, (side, stem)
            found = _conflict_copies(folder, stem)
            assert len(found) == 1, (side, stem, sorted(p.name for p in folder.iterdir()))
            copies[side] = found[0]
            assert found[0].read_text() == lost, (side, found[0].name)
            assert int(found[0].stat().st_mtime) == int(now - 50), (side, found[0].name)
        assert copies["a"].name == copies["b"].name
        m = CONFLICT_RE.match(copies["a"].name)
        assert m["device"] == pair.short_id(winner), (copies["a"].name, pair.short_id(winner))
        stamp = datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S")
        assert before <= stamp <= after, (stamp, before, after)
        info = pair.rest(loser, "GET",
                         f"/rest/db/file?folder={pair.folder_id}&file={copies['a'].name}")
        assert info["global"]["modifiedBy"] == pair.short_id(loser)

    for side in ("a", "b"):
        folder = pair.folder(side)
        assert (folder / "edit-vs-delete.md").read_text() == "edited on a\n", side
        assert _conflict_copies(folder, "edit-vs-delete") == [], side


def test_stop_ends_every_process_even_when_the_test_fails(tmp_path):
    """With the monitor (Syncthing's default: monitor + child per side) stop() ends all."""
    pids = set()
    with pytest.raises(RuntimeError, match="the test failed"):
        with SyncthingPair(tmp_path / "a", tmp_path / "b", monitor=True) as p:
            pids = p.pids()
            home = p.home("a")
            assert len(pids) == 4, pids
            p.wait_connected()
            with pytest.raises(SyncthingError) as timeout:
                p.wait_until(lambda: False, 0.3, "something that never happens")
            assert "syncthing log of a" in str(timeout.value)
            assert "syncthing log of b" in str(timeout.value)
            raise RuntimeError("the test failed")

    assert [pid for pid in pids if _is_running_syncthing(pid)] == []
    assert not home.exists()
