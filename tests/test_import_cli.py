"""`mirrorfs import`: exact summaries, --json, one-line errors, no traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from importing import FIXTURES, vault_bytes, write_secret_file

from mirrorfs.cli import cli

CHATGPT = FIXTURES / "chatgpt" / "conversations.json"


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    root = tmp_path / "vault"
    assert runner.invoke(cli, ["--instance", "laptop", "init", str(root)]).exit_code == 0

    def invoke(*args):
        return runner.invoke(cli, ["--vault", str(root), "--instance", "laptop", *args])

    invoke.root = root
    return invoke


def test_chatgpt_summary_then_nothing_new(run):
    r = run("import", "chatgpt", str(CHATGPT))
    assert (r.exit_code, r.output) == (0, (
        f"imported chatgpt {CHATGPT} -> sessions/import/\n"
        "sessions: 4 new, 0 updated, 0 unchanged\n"
        "messages: 21 new, 0 already imported, 3 empty left out\n"
        "memories: 0 new, 0 already imported\n"
        "skipped: 0\n"
        "note: 1 conversation(s) have other branches (3 message(s): regenerated or edited turns) that are not "
        "imported; each session's preamble says so\n"))
    before = vault_bytes(run.root)
    r = run("import", "chatgpt", str(CHATGPT), "--json")
    assert r.exit_code == 0 and vault_bytes(run.root) == before
    data = json.loads(r.output)
    assert (data["sessions"], data["messages"], data["skipped"], data["written"]) == (
        {"new": 0, "updated": 0, "unchanged": 4}, {"new": 0, "unchanged": 21, "left_out": 3}, [], [])


def test_instance_and_dry_run(run):
    r = run("import", "claude", str(FIXTURES / "claude" / "conversations.json"), "--instance", "claude-web",
            "--dry-run")
    assert r.output.splitlines()[:3] == [
        f"dry run, nothing written: claude {FIXTURES / 'claude' / 'conversations.json'} -> sessions/claude-web/",
        "sessions: 3 new, 0 updated, 0 unchanged",
        "messages: 6 new, 0 already imported",
    ]
    assert not (run.root / "sessions" / "claude-web").exists()
    r = run("import", "claude", str(FIXTURES / "claude" / "conversations.json"), "--instance", "claude-web")
    assert r.exit_code == 0 and len(list((run.root / "sessions" / "claude-web").glob("*.md"))) == 3
    r = run("import", "claude", str(FIXTURES / "claude"), "--instance", "Bad Name")
    assert r.exit_code == 1 and r.output.startswith("Error: invalid instance name 'Bad Name'")


def test_activemirror_vault_with_passwords(run, tmp_path):
    am = tmp_path / "am"
    shutil.copytree(FIXTURES / "activemirror" / "vault", am)
    password = write_secret_file(tmp_path / "am-password", "tide-pool-lantern\n")
    wrong = write_secret_file(tmp_path / "wrong", "tide-pool-lanterns\n")
    passphrase = write_secret_file(tmp_path / "vault-passphrase", "our vault passphrase\n")
    before = vault_bytes(run.root)
    r = run("import", "activemirror", str(am), "--password-file", str(wrong), "--passphrase-file", str(passphrase))
    assert (r.exit_code, r.output) == (1, (
        f"Error: the password does not open the ActiveMirrorOS vault {am}: none of its 3 entries decrypts with it "
        "(as a password or as a raw Fernet key); nothing was imported\n"))
    assert vault_bytes(run.root) == before
    r = run("import", "activemirror", str(am))
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "give --password-file FILE" in r.output
    r = run("import", "activemirror", str(am), "--password-file", str(password), "--passphrase-file", str(passphrase))
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1:5] == [
        "sessions: 0 new, 0 updated, 0 unchanged",
        "messages: 0 new, 0 already imported",
        "memories: 3 new, 0 already imported",
        "skipped: 0",
    ]
    disk = b"".join(p.read_bytes() for p in run.root.rglob("*") if p.is_file())
    assert b"correct horse battery staple" not in disk and b"Camino" not in disk
    r = run("reveal", "memory/wifi-cabin.md", "--passphrase-file", str(passphrase))
    assert "network Birchwood, password correct horse battery staple" in r.output


def test_bad_input_is_one_line_per_item_and_no_traceback(run, tmp_path):
    cut = tmp_path / "conversations.json"
    data = CHATGPT.read_bytes()
    cut.write_bytes(data[: data.index(b'"title": "Tide chart"')])
    r = run("import", "chatgpt", str(cut))
    assert r.exit_code == 0 and "Traceback" not in r.output
    lines = r.output.splitlines()
    assert lines[1] == "sessions: 1 new, 0 updated, 0 unchanged"
    assert lines[4:6] == ["skipped: 1", lines[5]]
    assert lines[5].startswith("  skipped conversations.json: ends early (truncated) after 1 conversations, near byte ")
    r = run("import", "chatgpt", str(tmp_path / "missing.zip"))
    assert r.exit_code == 2 and "does not exist" in r.output
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    r = run("import", "chatgpt", str(folder))
    assert (r.exit_code, r.output) == (1, f"Error: {folder}: no conversations.json in this folder\n")
    r = run("import", "chatgpt", str(CHATGPT), "--adopt")
    assert r.exit_code == 2 and "--adopt is for the markdown source only" in r.output


def test_markdown_is_a_report_unless_adopted(tmp_path):
    runner = CliRunner()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "SOUL.md").write_text("---\ntype: soul\nname: Mira\n---\n\nWho I am.\n", encoding="utf-8")
    r = runner.invoke(cli, ["import", "markdown", str(notes)])
    assert r.exit_code == 0 and r.output.splitlines()[:3] == [f"markdown {notes}: a folder of Markdown notes",
                                                                "identity: 1", "  SOUL.md"]
    assert sorted(p.name for p in notes.iterdir()) == ["SOUL.md"]
    r = runner.invoke(cli, ["--instance", "laptop", "import", "markdown", str(notes), "--adopt", "--json"])
    data = json.loads(r.output)
    assert (data["adopted"], data["added"], data["changed"]) == (
        True, [".mirrorfs/config.yaml", "README-mirrorfs.md", "instances/laptop.md"], [])
