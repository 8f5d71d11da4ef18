"""A vault gets its passphrase only by an explicit act: `key init` or the first secret written, never a read."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import snapshot_tree

from mirrorfs import sealing
from mirrorfs.cli import cli
from mirrorfs.errors import InvalidValueError, NoKeyError
from mirrorfs.keys import CONFIG_CHECK_KEY
from mirrorfs.vault import Vault

NO_KEY = ("Error: this vault has no passphrase yet, so nothing in it is encrypted; nothing was changed "
          "(`mirrorfs key init`, or the first secret you write, sets one)\n")


@pytest.fixture
def typo_file(tmp_path) -> Path:
    path = tmp_path / "typo.pass"
    path.write_text("a typo\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _run(vault, *args):
    return CliRunner().invoke(cli, ["--vault", str(vault.root), "--instance", "laptop", *args])


def test_reads_on_a_vault_without_a_key_say_so_and_write_nothing(vault, typo_file):
    (vault.root / "memory" / "plain.md").write_text("nothing secret\n", encoding="utf-8")
    before = snapshot_tree(vault.root)
    for args in (("reveal", "memory/plain.md"), ("reveal", "/etc/hostname"),
                 ("rekey", "--new-passphrase-file", str(typo_file))):
        done = _run(vault, *args, "--passphrase-file", str(typo_file))
        assert (done.exit_code, done.output) == (1, NO_KEY), args
    assert snapshot_tree(vault.root) == before


def test_key_init_sets_the_key_once(vault, typo_file, tmp_path):
    real = tmp_path / "real.pass"
    real.write_text("the real one\n", encoding="utf-8")
    real.chmod(0o600)
    done = _run(vault, "key", "init", "--passphrase-file", str(real))
    assert (done.exit_code, done.output) == (0, "the vault's passphrase is set\n")
    assert CONFIG_CHECK_KEY in Vault.open(vault.root, instance="laptop").config
    keyed = snapshot_tree(vault.root)

    again = _run(vault, "key", "init", "--passphrase-file", str(typo_file))
    assert (again.exit_code, again.output) == (
        1, "Error: this vault already has a passphrase; nothing was changed (`mirrorfs rekey` changes it)\n")
    wrong = _run(vault, "reveal", "SOUL.md", "--passphrase-file", str(typo_file))
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
    assert snapshot_tree(vault.root) == keyed
    assert _run(vault, "reveal", "SOUL.md", "--passphrase-file", str(real)).exit_code == 0


def test_the_first_seal_is_an_explicit_act_too(vault, typo_file):
    (vault.root / "memory" / "pin.md").write_text("```secret\n4711\n```\n", encoding="utf-8")
    done = _run(vault, "seal", "--passphrase-file", str(typo_file))
    assert done.exit_code == 0 and done.output.endswith("sealed 1 note\n")
    assert CONFIG_CHECK_KEY in Vault.open(vault.root, instance="laptop").config


def test_the_library_refuses_the_same_way(vault):
    before = snapshot_tree(vault.root)
    with pytest.raises(NoKeyError):
        vault.unlock("a typo", create=False)
    assert snapshot_tree(vault.root) == before
    sealing.init_key(vault, "the real one")
    assert vault.unlocked
    with pytest.raises(InvalidValueError, match="already has a passphrase"):
        sealing.init_key(Vault.open(vault.root, instance="laptop"), "the real one")


def test_search_unlock_on_a_vault_without_a_key_writes_nothing(vault, typo_file):
    before = snapshot_tree(vault.root)
    done = _run(vault, "search", "anything", "--unlock", "--passphrase-file", str(typo_file))
    assert (done.exit_code, done.output) == (1, NO_KEY)
    assert snapshot_tree(vault.root) == before
