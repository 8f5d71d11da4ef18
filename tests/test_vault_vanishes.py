"""A vault folder that vanishes under a running watcher: deleted, moved away, or an
unmounted drive. The watcher never recreates it, reports no false removals, pauses
with one status line, and resumes when the folder is back."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from mirrorfs.daemon import WatchDaemon, read_status
from mirrorfs.vault import Vault

TIMEOUT = 30


def _until(predicate, timeout: float = TIMEOUT, what: str = "condition"):
    """Poll a condition of the file system or the status file until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _drain(lines: queue.Queue) -> list[str]:
    out = []
    while True:
        try:
            out.append(lines.get_nowait())
        except queue.Empty:
            return out


def _line(lines: queue.Queue, predicate, seen: list[str]) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if predicate(line):
            return line
    pytest.fail(f"timed out; saw {seen}")


@pytest.fixture
def watched(vault):
    for n in range(5):
        vault.remember(f"Note number {n}", title=f"Note {n}")
    lines: queue.Queue = queue.Queue()
    d = WatchDaemon(vault, echo=lines.put, warn=lambda w: lines.put(f"warning: {w}"), heartbeat=0.2)
    d.lines = lines
    d.start()
    assert d.wait_ready(TIMEOUT)
    yield d
    d.stop()


@pytest.mark.parametrize("how", ["moved away", "deleted"])
def test_a_vanished_vault_pauses_the_watcher_and_is_never_recreated(watched, vault, tmp_path, how):
    root = vault.root
    away = tmp_path / "away"
    shutil.copytree(root, away, symlinks=True)
    seen: list[str] = []
    if how == "moved away":
        os.rename(root, tmp_path / "moved")
        os.rename(tmp_path / "moved", away.with_name("moved-back-source"))
        shutil.rmtree(away)
        away = away.with_name("moved-back-source")
    else:
        shutil.rmtree(root)
    _line(watched.lines, lambda l: "vanished" in l, seen)
    paused = _until(lambda: read_status(vault).get("paused"), what="a paused status")
    assert paused == "the vault folder is gone (moved, deleted or unmounted); watching resumes when it is back"
    # Several heartbeats later the folder is still gone: nothing wrote into it.
    beats = read_status(vault)["updated"]
    _until(lambda: read_status(vault)["updated"] != beats, what="another heartbeat")
    assert not root.exists()
    os.rename(away, root)
    Vault.open(root, instance="phone").remember("Written after the return", title="Back")
    _line(watched.lines, lambda l: l == 'phone added memory "Back" (memory/back.md)', seen)
    seen += _drain(watched.lines)
    assert not [l for l in seen if "removed" in l], seen
    assert _until(lambda: read_status(vault).get("paused") is None, what="the pause to end") is True


UNMOUNT = r"""
import os, queue, subprocess, sys, time
from mirrorfs.daemon import WatchDaemon, read_status
from mirrorfs.vault import Vault
src, mnt = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "--bind", src, mnt], check=True)
vault = Vault.open(mnt, instance="laptop")
lines = queue.Queue()
d = WatchDaemon(vault, echo=lines.put, warn=lambda w: lines.put("warning: " + w), heartbeat=0.2)
d.start()
assert d.wait_ready(30)
subprocess.run(["umount", mnt], check=True)
deadline = time.monotonic() + 30
while not read_status(vault).get("paused") and time.monotonic() < deadline:
    time.sleep(0.05)
print("PAUSED", bool(read_status(vault).get("paused")), flush=True)
beats = read_status(vault)["updated"]
while read_status(vault)["updated"] == beats and time.monotonic() < deadline:
    time.sleep(0.05)
print("EMPTY", sorted(os.listdir(mnt)), flush=True)
subprocess.run(["mount", "--bind", src, mnt], check=True)
Vault.open(mnt, instance="phone").remember("Written after the remount", title="Remounted")
seen = []
while time.monotonic() < deadline:
    try:
        line = lines.get(timeout=0.5)
    except queue.Empty:
        continue
    seen.append(line)
    if "Remounted" in line:
        break
d.stop()
while True:
    try:
        seen.append(lines.get_nowait())
    except queue.Empty:
        break
print("LINES", seen, flush=True)
"""


def test_an_unmounted_drive_is_an_empty_folder_the_watcher_never_adopts(tmp_path, state_dir):
    src, mnt = tmp_path / "drive", tmp_path / "mnt"
    vault = Vault.init(src, instance="laptop")
    for n in range(5):
        vault.remember(f"Note number {n}", title=f"Note {n}")
    mnt.mkdir()
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                           textwrap.dedent(UNMOUNT), str(src), str(mnt)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "PAUSED True" in out
    assert "EMPTY []" in out  # the empty mount point was never written into
    lines = out.split("LINES ", 1)[1]
    assert "Remounted" in lines and "removed" not in lines, lines
