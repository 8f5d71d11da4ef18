"""doctor.diagnose: what is wrong in a vault's notes, as Problem values, changing nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import snapshot_tree

from mirrorfs import crypto, doctor
from mirrorfs.cli import cli
from mirrorfs.doctor import Problem

# Written by the real Meld Encrypt plugin (passphrase "123"): the weak α form.
MELD_ALPHA = "%%🔐α ad9FyiQKtZlfYuGi45HUc/XZ7sQ/MppzUEfR7k7+RQKPGD83 🔐%%"


def test_a_fresh_vault_has_no_problems(vault):
    assert doctor.diagnose(vault) == []


def test_diagnose_returns_each_problem_and_changes_nothing(vault):
    memory = vault.root / "memory"
    section = crypto.encrypt_section("the code", crypto.Keyring("pass phrase"), salt=crypto.new_vault_salt())
    (memory / "draft.md").write_text("Draft\n\n```secret\nsafe combo 1234\n```\n", encoding="utf-8")
    (memory / "old.md").write_text(f"Old\n{MELD_ALPHA}\n{MELD_ALPHA}\n", encoding="utf-8")
    (memory / "damaged.md").write_text("Broken " + section[:-len(" 🔐%%")] + "\n", encoding="utf-8")
    (memory / "bad-yaml.md").write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    (memory / "binary.md").write_bytes(b"\x00\x01 not text")
    (memory / "tea.sync-conflict-20240101-120000-ABCDEFG.md").write_text("tea\n", encoding="utf-8")
    before = snapshot_tree(vault.root)

    problems = doctor.diagnose(vault)

    assert snapshot_tree(vault.root) == before
    assert all(isinstance(p, Problem) for p in problems)
    assert [(p.check, p.path) for p in problems] == [
        ("unparseable", "memory/bad-yaml.md"),
        ("unreadable", "memory/binary.md"),
        ("damaged", "memory/damaged.md"),
        ("unsealed", "memory/draft.md"),
        ("weak", "memory/old.md"),
        ("conflict", "memory/tea.sync-conflict-20240101-120000-ABCDEFG.md"),
    ]
    by_check = {p.check: p for p in problems}
    assert by_check["weak"].message.startswith("2 sections in an old, weak Meld form")
    assert "encrypted section 1 (line 1)" in by_check["damaged"].message
    assert "conflict copy of memory/tea.md" in by_check["conflict"].message
    assert not any("1234" in str(p) or "the code" in str(p) for p in problems)
    assert by_check["unsealed"].to_dict() == {"check": "unsealed", "path": "memory/draft.md",
                                              "message": by_check["unsealed"].message}


def test_doctor_command_prints_the_library_answer(vault):
    (vault.root / "memory" / "old.md").write_text(f"Old\n{MELD_ALPHA}\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(cli, ["--vault", str(vault.root), "--instance", "laptop", "doctor"])
    assert done.exit_code == 1
    assert done.output == (
        "weak: memory/old.md: 1 section in an old, weak Meld form; `mirrorfs rekey` upgrades them\n")
    report = json.loads(runner.invoke(cli, ["--vault", str(vault.root), "doctor", "--json"]).output)
    assert report["problems"] == [p.to_dict() for p in doctor.diagnose(vault)]
    assert report["ok"] is False
