"""`mirrorfs search --unlock`: words inside encrypted sections are found in memory only."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import close_pipes

from mirrorfs.cli import cli
from mirrorfs.vault import Vault

PASSPHRASE = "correct horse battery staple"
SECRET = "marzipanquokka"


def _files_containing(root, word: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and word.encode() in p.read_bytes()]


def test_search_unlock_finds_secret_words_in_memory_only(vault, state_dir, monkeypatch):
    vault.unlock(PASSPHRASE)
    vault.remember(f"The safe code is hidden under the {SECRET} jar", title="Safe code", secret=True)
    s = vault.sessions.create("Private chat")
    s.add_message("user", f"Remember the {SECRET} thing", secret=True)
    s.add_message("assistant", "Noted, in plain words: the pantry")
    vault.remember("A plain note about the pantry", title="Pantry")
    vault.lock()
    args = ["--vault", str(vault.root), "search", SECRET, "--json"]

    locked = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert locked.exit_code == 0 and json.loads(locked.output) == []

    monkeypatch.setenv("MIRRORFS_PASSPHRASE", PASSPHRASE)
    unlocked = CliRunner().invoke(cli, [*args, "--unlock"], catch_exceptions=False)
    hits = json.loads(unlocked.output)
    assert sorted((h["path"], h.get("role")) for h in hits) == sorted(
        [("memory/safe-code.md", None), (s.relpath, "user")]
    )
    assert all("secret" in h["flags"] for h in hits)
    assert all(SECRET in h["snippet"] for h in hits)
    text = CliRunner().invoke(cli, args[:-1] + ["--unlock"], catch_exceptions=False).output
    assert "memory/safe-code.md  [memory] Safe code  (secret)" in text

    # Plain words still come from the real index, unmarked, in the same call.
    both = json.loads(CliRunner().invoke(cli, ["--vault", str(vault.root), "search", "pantry", "--json",
                                               "--unlock"], catch_exceptions=False).output)
    assert {h["path"] for h in both} >= {"memory/pantry.md", s.relpath}
    assert not any("secret" in h.get("flags", []) for h in both)

    # Nothing decrypted was written anywhere: not in the vault, not in the state folder.
    assert _files_containing(vault.root, SECRET) == []
    assert _files_containing(state_dir, SECRET) == []


def test_search_unlock_with_a_wrong_passphrase_is_one_clear_error(vault, monkeypatch):
    vault.unlock(PASSPHRASE)
    vault.remember(f"{SECRET}", title="Secret", secret=True)
    vault.lock()
    monkeypatch.setenv("MIRRORFS_PASSPHRASE", "not the passphrase")
    r = CliRunner().invoke(cli, ["--vault", str(vault.root), "search", SECRET, "--unlock"])
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) == 1 and "passphrase" in r.output.lower()
    assert SECRET not in r.output


def test_library_refuses_unlocked_search_when_locked(vault):
    import pytest

    from mirrorfs.errors import LockedError
    from mirrorfs.secret_search import search_unlocked

    with pytest.raises(LockedError):
        search_unlocked(Vault.open(vault.root, instance="laptop"), "anything")


def test_session_add_secret_from_the_cli(vault, monkeypatch):
    from mirrorfs import crypto

    s = vault.sessions.create("Passport")
    monkeypatch.setenv("MIRRORFS_PASSPHRASE", PASSPHRASE)
    r = CliRunner().invoke(cli, ["--vault", str(vault.root), "session", "add", s.id, f"number {SECRET}",
                                 "--role", "user", "--secret"], catch_exceptions=False)
    assert r.exit_code == 0 and SECRET not in r.output
    raw = s.path.read_text(encoding="utf-8")
    assert SECRET not in raw and len(crypto.find_sections(raw)) == 1
    shown = CliRunner().invoke(cli, ["--vault", str(vault.root), "session", "show", s.id]).output
    assert SECRET not in shown  # the CLI never decrypts without being asked


def test_watch_unlock_as_a_real_process_seals_what_a_person_types(vault, state_dir, tmp_path):
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time

    from mirrorfs import crypto

    vault.unlock(PASSPHRASE)  # the vault's salt and check exist before the watcher asks
    vault.lock()
    env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "MIRRORFS_PASSPHRASE": PASSPHRASE,
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "--instance", "laptop", "watch", "--unlock"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True)
    reader.start()
    note = vault.root / "memory" / "typed.md"
    try:
        deadline = time.monotonic() + 30
        while not lines.get(timeout=max(0.1, deadline - time.monotonic())).startswith("watching "):
            pass
        note.write_text(f"Door code:\n\n```secret\n{SECRET}\n```\n", encoding="utf-8")
        # The person's save is reflected, then the watcher's own sealing write follows.
        while True:
            lines.get(timeout=max(0.1, deadline - time.monotonic()))
            text = note.read_text(encoding="utf-8")
            if SECRET not in text:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        close_pipes(proc, reader)
    assert text.startswith("Door code:\n\n") and len(crypto.find_sections(text)) == 1
