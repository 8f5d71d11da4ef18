"""The vault config editor: flat keys set and removed as text, every other byte kept, through the write path."""

from __future__ import annotations

import pytest
import yaml
from conftest import snapshot_tree

from mirrorfs import config
from mirrorfs.errors import (
    ConflictError,
    MirrorfsError,
    NoKeyError,
    UnsafeEditError,
    WrongPassphraseError,
)
from mirrorfs.keys import CONFIG_CHECK_KEY, CONFIG_SALT_KEY
from mirrorfs.vault import Vault

PASSPHRASE = "correct horse battery staple"

# Written by a person: a BOM, CRLF, comments, odd quoting and spacing, a nested block.
HAND_WRITTEN = (
    "\ufeff# my vault, edited by hand\r\n"
    "format: 1   # keep\r\n"
    "'vault_id' :  \"0123abcd\"\r\n"
    "name: 'Mira''s  vault'\r\n"
    "presence:\r\n"
    "  touch_interval: 60   # seconds\r\n"
    "  active: 600\r\n"
    "\r\n"
    "# the end\r\n"
).encode("utf-8")


@pytest.fixture
def hand_vault(vault) -> Vault:
    """The `vault` fixture with its config replaced by HAND_WRITTEN (same vault id)."""
    path = vault.root / ".mirrorfs" / "config.yaml"
    vault_id = yaml.safe_load(path.read_text(encoding="utf-8"))["vault_id"]
    path.write_bytes(HAND_WRITTEN.replace(b"0123abcd", vault_id.encode()))
    return Vault.open(vault.root, instance="laptop")


def _config_path(vault) -> object:
    return vault.root / ".mirrorfs" / "config.yaml"


def test_set_keys_appends_and_replaces_only_their_lines(hand_vault):
    path = _config_path(hand_vault)
    before = path.read_bytes()
    new = config.set_config_keys(hand_vault.store, hand_vault.root, {"encryption_salt": "AAECAwQFBgcICQoLDA0ODw=="})
    after = path.read_bytes()
    assert after == before + b"encryption_salt: AAECAwQFBgcICQoLDA0ODw==\r\n"
    assert new["encryption_salt"] == "AAECAwQFBgcICQoLDA0ODw==" and new["presence"]["active"] == 600

    # Replacing a key rewrites its line alone (the quoted key keeps its spelling).
    config.set_config_keys(hand_vault.store, hand_vault.root, {"vault_id": hand_vault.id, "name": "Mira 2"})
    changed = path.read_bytes()
    assert changed.replace(b"name: Mira 2\r\n", b"name: 'Mira''s  vault'\r\n") == after

    # Removing takes its line (and, for a block, the indented lines) and nothing else.
    config.set_config_keys(hand_vault.store, hand_vault.root, {"presence": None, "encryption_salt": None})
    assert path.read_bytes() == changed.replace(
        b"presence:\r\n  touch_interval: 60   # seconds\r\n  active: 600\r\n", b""
    ).replace(b"encryption_salt: AAECAwQFBgcICQoLDA0ODw==\r\n", b"")


def test_setting_what_is_already_there_writes_nothing(hand_vault):
    path = _config_path(hand_vault)
    before = path.read_bytes()
    config.set_config_keys(hand_vault.store, hand_vault.root, {"format": 1})
    config.set_config_keys(hand_vault.store, hand_vault.root, {"no_such_key": None})
    config.edit_config(hand_vault.store, hand_vault.root, lambda current: {})
    assert path.read_bytes() == before


def test_first_unlock_keeps_every_byte_of_a_hand_written_config(hand_vault):
    path = _config_path(hand_vault)
    before = path.read_bytes()
    hand_vault.unlock(PASSPHRASE)
    after = path.read_bytes()
    assert after.startswith(before)
    added = after[len(before):].decode("utf-8")
    assert added.endswith("\r\n") and "\n" not in added.replace("\r\n", "")
    assert [line.split(":")[0] for line in added.splitlines()] == [CONFIG_SALT_KEY, CONFIG_CHECK_KEY]
    assert hand_vault.config[CONFIG_SALT_KEY] and hand_vault.config["presence"]["touch_interval"] == 60
    hand_vault.lock()
    again = Vault.open(hand_vault.root, instance="laptop")
    again.unlock(PASSPHRASE)
    assert path.read_bytes() == after


def test_a_config_that_cannot_be_edited_line_by_line_is_refused_unchanged(vault):
    path = _config_path(vault)
    path.write_text(f'{{format: 1, vault_id: "{vault.id}"}}\n', encoding="utf-8")
    before = snapshot_tree(vault.root)
    with pytest.raises(UnsafeEditError, match="nothing was written"):
        config.set_config_keys(vault.store, vault.root, {"encryption_salt": "AAAA"})
    with pytest.raises(UnsafeEditError):
        Vault.open(vault.root, instance="laptop").unlock(PASSPHRASE)
    assert snapshot_tree(vault.root) == before


def test_a_change_on_disk_during_the_edit_is_kept_and_the_edit_refused(vault):
    path = _config_path(vault)
    theirs = path.read_bytes() + b"# saved by an editor meanwhile\n"

    def change(current):
        path.write_bytes(theirs)  # a person saves the file between mirrorfs's read and its write
        return {"name": "Other"}

    with pytest.raises(ConflictError):
        config.edit_config(vault.store, vault.root, change)
    assert path.read_bytes() == theirs


def test_load_config_errors_are_one_line(vault):
    path = _config_path(vault)
    path.write_text("format: 1\nvault_id: [unclosed\nname: x\n", encoding="utf-8")
    with pytest.raises(MirrorfsError) as info:
        config.load_config(vault.root)
    assert "\n" not in str(info.value) and "cannot read the vault config" in str(info.value)
    path.write_text("format: 1\n", encoding="utf-8")
    with pytest.raises(MirrorfsError, match="no vault_id"):
        config.load_config(vault.root)


def test_unlock_without_create_refuses_a_vault_without_a_key_and_writes_nothing(vault):
    before = snapshot_tree(vault.root)
    with pytest.raises(NoKeyError, match="no passphrase yet"):
        vault.unlock(PASSPHRASE, create=False)
    assert not vault.unlocked and snapshot_tree(vault.root) == before
    vault.unlock(PASSPHRASE)  # the explicit act sets the key
    vault.lock()
    keyed = snapshot_tree(vault.root)
    vault.unlock(PASSPHRASE, create=False)
    assert vault.unlocked
    vault.lock()
    with pytest.raises(WrongPassphraseError):
        vault.unlock("not the passphrase", create=False)
    assert snapshot_tree(vault.root) == keyed
