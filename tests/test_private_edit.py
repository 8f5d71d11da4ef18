"""private_edit: the decrypted copy lives in a private RAM folder that goes away however the edit ends.

The signal tests run a real `mirrorfs edit` process whose $EDITOR is a small
script that announces its file and then waits like a person typing; the test
signals the mirrorfs process and checks the folder is gone (or, after a
SIGKILL, that the next `doctor` or `edit` removes it).
"""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import close_pipes, snapshot_tree

from mirrorfs import private_edit, sealing
from mirrorfs.errors import ConflictError, LockedError

PASSPHRASE = "correct horse battery staple"
TIMEOUT = 30

# Announces the file it was given, then waits (as a person typing would) until killed.
WAITING_EDITOR = """\
import os, sys, time
print("EDITING", os.getpid(), sys.argv[1], flush=True)
time.sleep(600)
"""


@pytest.fixture
def secret_note(vault) -> str:
    vault.unlock(PASSPHRASE)
    rel = vault.remember("The boat key is under the blue stone", secret=True, title="Boat").path
    vault.lock()
    return rel


def test_edit_note_uses_a_private_ram_folder_and_reseals(vault, secret_note):
    vault.unlock(PASSPHRASE)
    seen = {}

    def editor(temp: Path) -> None:
        seen["folder"] = temp.parent
        seen["modes"] = (stat.S_IMODE(temp.parent.stat().st_mode), stat.S_IMODE(temp.stat().st_mode))
        text = temp.read_text(encoding="utf-8")
        seen["text"] = text
        temp.write_text(text.replace("blue stone", "red stone"), encoding="utf-8")

    result = private_edit.edit_note(vault, secret_note, editor)

    assert result == private_edit.EditResult(secret_note, True)
    assert "```secret\nThe boat key is under the blue stone\n```" in seen["text"]
    assert seen["modes"] == (0o700, 0o600)
    ram = private_edit.ram_dir()
    assert seen["folder"].parent == (ram if ram is not None else Path(tempfile.gettempdir()))
    assert not seen["folder"].exists()
    raw = (vault.root / secret_note).read_text(encoding="utf-8")
    assert "stone" not in raw and "red stone" in sealing.reveal(vault, secret_note)
    assert private_edit.edit_note(vault, secret_note, lambda temp: None).changed is False


def test_the_folder_goes_away_on_an_error_and_a_conflict_writes_nothing(vault, secret_note):
    vault.unlock(PASSPHRASE)
    folders = []

    def failing(temp: Path) -> None:
        folders.append(temp.parent)
        raise RuntimeError("the editor crashed")

    before = snapshot_tree(vault.root)
    with pytest.raises(RuntimeError):
        private_edit.edit_note(vault, secret_note, failing)
    assert not folders[-1].exists() and snapshot_tree(vault.root) == before

    note = vault.root / secret_note
    theirs = note.read_bytes() + b"\nadded in Obsidian meanwhile\n"

    def racing(temp: Path) -> None:
        folders.append(temp.parent)
        temp.write_text(temp.read_text(encoding="utf-8") + "\nmine\n", encoding="utf-8")
        note.write_bytes(theirs)

    with pytest.raises(ConflictError):
        private_edit.edit_note(vault, secret_note, racing)
    assert not folders[-1].exists() and note.read_bytes() == theirs


def test_edit_needs_the_vault_unlocked(vault, secret_note):
    with pytest.raises(LockedError):
        private_edit.edit_note(vault, secret_note, lambda temp: pytest.fail("no editor on a locked vault"))


def test_sweep_leaves_a_live_edit_alone(tmp_path):
    with private_edit.private_folder(tmp_path) as folder:
        (folder / "note.md").write_text("plaintext", encoding="utf-8")
        assert private_edit.sweep(tmp_path) == []
        assert folder.exists()
    assert not folder.exists()
    # An older mirrorfs's folder (never locked) is stale.
    old = tmp_path / "mirrorfs-edit-k2j4_x9q"
    old.mkdir(mode=0o700)
    (old / "note.md").write_text("plaintext", encoding="utf-8")
    (tmp_path / "mirrorfs-edit-unrelated.txt").write_text("a file, not a folder", encoding="utf-8")
    assert private_edit.sweep(tmp_path) == [old]
    assert (tmp_path / "mirrorfs-edit-unrelated.txt").exists()
    # A folder killed before it got its final name is empty; it may be one being made right now
    # (locked an instant later), so it goes only once it is a minute old.
    making = tmp_path / ".mirrorfs-edit-making-abc123"
    making.mkdir(mode=0o700)
    assert private_edit.sweep(tmp_path) == [] and making.exists()
    os.utime(making, (time.time() - 120, time.time() - 120))
    assert private_edit.sweep(tmp_path) == [making]


# ------------------------------------------------------------- a real `mirrorfs edit`


def _env(state_dir: Path, editor: str) -> dict:
    """The environment of a mirrorfs process: this test's state folder, an editor, the passphrase."""
    return {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "EDITOR": editor, "MIRRORFS_PASSPHRASE": PASSPHRASE}


class EditProcess:
    """`mirrorfs edit NOTE` running with the waiting editor."""

    def __init__(self, vault, rel: str, state_dir: Path, tmp_path: Path) -> None:
        script = tmp_path / "waiting_editor.py"
        script.write_text(WAITING_EDITOR, encoding="utf-8")
        env = _env(state_dir, f"{sys.executable} {script}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "--instance", "laptop", "edit", rel],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.editor_pid, self.file = self._wait_editing()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_editing(self) -> tuple[int, Path]:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"the editor never started: {self.proc.stderr.read()}")
        word, pid, path = line.split(" ", 2)
        assert word == "EDITING", line
        return int(pid), Path(path.strip())

    def stop(self, signum: int) -> tuple[int, str]:
        """Signal mirrorfs, wait for it to end, then end the editor; (exit status, stderr)."""
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        finally:
            self.kill_editor()
        err = self.proc.stderr.read()
        close_pipes(self.proc, self.reader)
        return code, err

    def kill_editor(self) -> None:
        try:
            os.kill(self.editor_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_caught_signal_removes_the_decrypted_copy(vault, secret_note, state_dir, tmp_path, signum):
    before = snapshot_tree(vault.root)
    edit = EditProcess(vault, secret_note, state_dir, tmp_path)
    assert edit.file.read_text(encoding="utf-8").count("blue stone") == 1  # the plaintext is there now
    folder = edit.file.parent

    code, stderr = edit.stop(signum)

    assert code == 1
    assert stderr == (f"Error: interrupted by {signum.name}: the decrypted copy was removed "
                      "and nothing was written\n")
    assert not folder.exists()
    assert snapshot_tree(vault.root) == before


@pytest.mark.parametrize("cleaner", ["doctor", "edit"])
def test_what_a_sigkill_leaves_is_removed_by_the_next_doctor_or_edit(
        vault, secret_note, state_dir, tmp_path, cleaner):
    edit = EditProcess(vault, secret_note, state_dir, tmp_path)
    folder = edit.file.parent
    code, _ = edit.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert folder.exists()  # nothing can catch a SIGKILL

    args = ["doctor"] if cleaner == "doctor" else ["edit", secret_note]
    done = subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "--instance", "laptop",
                           *args], env=_env(state_dir, "true"), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert not folder.exists()
    if cleaner == "doctor":
        assert f"removed a decrypted copy a killed `mirrorfs edit` left: {folder}\n" in done.stdout
    else:
        assert done.stdout == f"{secret_note}: no change\n"
