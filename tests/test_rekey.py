"""rekey.rekey through the library: progress, per-file errors returned, and resuming after an interruption."""

from __future__ import annotations

import pytest
from conftest import snapshot_tree

from mirrorfs import crypto, rekey, sealing
from mirrorfs.errors import LockedError, WrongPassphraseError
from mirrorfs.keys import CONFIG_CHECK_KEY, CONFIG_SALT_KEY
from mirrorfs.vault import Vault

OLD = "the old passphrase"
NEW = "the new passphrase"


class Interrupted(Exception):
    """Stands for a crash or Ctrl-C in the middle of a rekey."""


def _secret_vault(vault, count: int = 3) -> list[str]:
    vault.unlock(OLD)
    paths = [vault.remember(f"secret number {i}", secret=True, title=f"Secret {i}").path for i in range(count)]
    vault.lock()
    return paths


def _salts(vault, rel: str) -> set[bytes]:
    return {s.salt for s in crypto.find_sections((vault.root / rel).read_text(encoding="utf-8"))}


def _reopened(vault, passphrase: str) -> Vault:
    again = Vault.open(vault.root, instance="laptop")
    again.unlock(passphrase, create=False)
    return again


def test_rekey_moves_the_vault_and_reports_progress(vault):
    paths = _secret_vault(vault)
    vault.unlock(OLD)
    calls = []
    report = rekey.rekey(vault, NEW, progress=lambda done, total, path: calls.append((done, total, path)))
    assert report.done and report.failed == [] and sorted(report.changed) == sorted(paths)
    assert calls[0] == (0, report.total, None) and [c[0] for c in calls] == list(range(report.total + 1))
    assert {c[2] for c in calls[1:]} >= set(paths)
    assert not vault.unlocked  # the old key is gone: unlock with the new passphrase
    with pytest.raises(WrongPassphraseError):
        _reopened(vault, OLD)
    new = _reopened(vault, NEW)
    assert [sealing.reveal(new, p).strip().endswith(f"secret number {i}") for i, p in enumerate(paths)] == [True] * 3
    assert rekey.REKEY_SALT_KEY not in new.config and rekey.REKEY_CHECK_KEY not in new.config


def test_an_interrupted_rekey_resumes_with_the_same_new_passphrase(vault):
    paths = sorted(_secret_vault(vault))
    original_salt = vault.config[CONFIG_SALT_KEY]
    vault.unlock(OLD)

    def stop_after_first_secret(done, total, path):
        if path == paths[0]:
            raise Interrupted

    with pytest.raises(Interrupted):
        rekey.rekey(vault, NEW, progress=stop_after_first_secret)

    # Half done: the vault still opens with the old passphrase, the pending new key is recorded,
    # one note is under the new salt and the others are as they were.
    half = _reopened(vault, OLD)
    assert rekey.pending(half.config) and half.config[CONFIG_SALT_KEY] == original_salt
    new_salt = crypto.decode_salt(half.config[rekey.REKEY_SALT_KEY])
    assert _salts(vault, paths[0]) == {new_salt}
    assert all(_salts(vault, p) == {half.salt} for p in paths[1:])

    # Another new passphrase cannot finish it, and changes nothing.
    before = snapshot_tree(vault.root)
    with pytest.raises(WrongPassphraseError, match="pending with another new passphrase"):
        rekey.rekey(half, "a third passphrase")
    assert snapshot_tree(vault.root) == before

    done_first = (vault.root / paths[0]).read_bytes()
    report = rekey.rekey(half, NEW)
    assert report.done and sorted(report.changed) == paths[1:]
    assert (vault.root / paths[0]).read_bytes() == done_first  # already rekeyed: left byte for byte
    new = _reopened(vault, NEW)
    assert new.salt == new_salt and not rekey.pending(new.config)
    assert all(_salts(vault, p) == {new_salt} for p in paths)
    assert all(f"secret number {i}" in sealing.reveal(new, p) for i, p in enumerate(paths))


def test_a_note_that_fails_is_returned_and_the_rekey_stays_pending(vault):
    paths = _secret_vault(vault, 2)
    # A section under some other passphrase (a Meld note a person pasted): it cannot be re-encrypted.
    foreign = crypto.encrypt_section("not ours", crypto.Keyring("someone else"), salt=crypto.new_vault_salt())
    (vault.root / "memory" / "foreign.md").write_text(f"Foreign\n{foreign}\n", encoding="utf-8")
    vault.unlock(OLD)
    check_before = Vault.open(vault.root, instance="laptop").config[CONFIG_CHECK_KEY]

    report = rekey.rekey(vault, NEW)

    assert not report.done and sorted(report.changed) == sorted(paths)
    assert [f.path for f in report.failed] == ["memory/foreign.md"]
    message = str(report.failed[0])
    assert message.startswith("memory/foreign.md: encrypted section 1 (line 2): wrong passphrase")
    assert "not ours" not in message and NEW not in message and OLD not in message
    assert report.to_dict()["failed"] == [{"path": "memory/foreign.md", "error": message}]
    pending = Vault.open(vault.root, instance="laptop").config
    assert rekey.pending(pending) and pending[CONFIG_CHECK_KEY] == check_before
    assert vault.unlocked  # nothing switched: the old key still opens the vault

    (vault.root / "memory" / "foreign.md").unlink()
    again = rekey.rekey(vault, NEW)
    assert again.done and again.changed == [] and again.failed == []
    assert all("secret number" in sealing.reveal(_reopened(vault, NEW), p) for p in paths)


def test_rekey_needs_the_vault_unlocked(vault):
    _secret_vault(vault, 1)
    before = snapshot_tree(vault.root)
    with pytest.raises(LockedError):
        rekey.rekey(vault, NEW)
    assert snapshot_tree(vault.root) == before
