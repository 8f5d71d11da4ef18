"""`mirrorfs search --unlock`: words inside encrypted sections are found in memory only."""

from __future__ import annotations

import json

from click.testing import CliRunner

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
