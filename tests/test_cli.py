"""The CLI: a thin adapter with exact output, --json, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mirrorfs.cli import cli


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    root = tmp_path / "vault"

    def invoke(*args, input=None, vault=True):
        prefix = ["--vault", str(root), "--instance", "laptop"] if vault else []
        return runner.invoke(cli, [*prefix, *args], input=input, catch_exceptions=False)

    invoke.root = root
    result = runner.invoke(cli, ["--instance", "laptop", "init", str(root), "--name", "Mira"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Vault Mira ready at {root} (instance laptop)\n"
    return invoke


def test_remember_prints_path_and_memory_list(run):
    r = run("remember", "Sam prefers tea", "--kind", "preference", "--tag", "drinks")
    assert (r.exit_code, r.output) == (0, "memory/sam-prefers-tea.md\n")
    r = run("memory", "list")
    assert r.output == "memory/sam-prefers-tea.md  [preference/long_term] Sam prefers tea  #drinks\n"
    data = json.loads(run("memory", "list", "--json").output)
    assert [d["title"] for d in data] == ["Sam prefers tea"]
    r = run("memory", "show", "sam-prefers-tea")
    assert r.output.endswith("\nSam prefers tea\n")


def test_remember_reads_stdin(run):
    r = run("remember", "-", "--title", "From stdin", input="piped text\n")
    assert r.output == "memory/from-stdin.md\n"
    assert (run.root / "memory/from-stdin.md").read_text().endswith("\npiped text\n")


def test_session_commands(run):
    sid = run("session", "new", "Trip planning", "--category", "travel", "--tag", "lisbon").output.strip()
    assert sid.startswith("20") and sid.endswith(sid[-4:])
    assert run("session", "add", sid, "Where in March?", "--role", "user").exit_code == 0
    assert run("session", "add", sid, "-", "--role", "assistant", input="Lisbon.\n").exit_code == 0
    shown = run("session", "show", sid).output
    assert shown.startswith(f"# Trip planning  ({sid}, open, 2 messages)\n")
    assert "Where in March?" in shown and "Lisbon." in shown
    listed = run("session", "list").output
    assert listed == f"{sid}  open      2 msgs  laptop  Trip planning  #lisbon\n"
    assert run("session", "tag", sid, "spring").output == "#lisbon #spring\n"
    assert run("session", "close", sid).output == f"closed {sid}\n"
    data = json.loads(run("session", "export", sid, "--format", "json").output)
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]


def test_meta_commands(run):
    path = run.root / "note.md"
    path.write_bytes(b"---\ntitle: x # keep me\n---\nbody\n")
    assert run("meta", "set", "note.md", "tags", "[a, b]").output == "note.md: tags set\n"
    assert path.read_bytes() == b"---\ntitle: x # keep me\ntags:\n  - a\n  - b\n---\nbody\n"
    assert run("meta", "set", "note.md", "tags", "[a, b]").output == "note.md: tags unchanged\n"
    assert run("meta", "get", "note.md", "tags").output == "[a, b]\n"
    assert run("meta", "set", "note.md", "tags", "[a, b, c]").exit_code == 0
    assert path.read_bytes() == b"---\ntitle: x # keep me\ntags:\n  - a\n  - b\n  - c\n---\nbody\n"
    assert json.loads(run("meta", "get", "note.md", "tags", "--json").output) == ["a", "b", "c"]
    assert run("meta", "set", "note.md", "n", "007", "--string").exit_code == 0
    assert run("meta", "get", "note.md", "n").output == "007\n"
    assert run("meta", "unset", "note.md", "n").output == "note.md: n removed\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["session", "add", "missing-id", "hi", "--role", "user"], "Error: no session 'missing-id'"),
        (["meta", "set", "../outside.md", "a", "1"], "is outside the vault"),
        (["memory", "show", "nothing-here"], "Error: no memory note 'nothing-here'"),
        (["meta", "get", "missing.md", "a"], "Error: no note at missing.md"),
    ],
)
def test_errors_are_one_line_exit_1(run, args, message):
    r = run(*args)
    assert r.exit_code == 1
    assert message in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_unknown_role_is_a_usage_error(run):
    sid = run("session", "new", "x").output.strip()
    r = run("session", "add", sid, "hi", "--role", "robot")
    assert r.exit_code == 2 and "'robot' is not one of" in r.output


def test_unparseable_note_error_names_the_file(run):
    (run.root / "bad.md").write_bytes(b"---\ntitle: [x\n---\n")
    r = run("meta", "set", "bad.md", "a", "1")
    assert r.exit_code == 1 and "bad.md: cannot parse front matter" in r.output
    assert (run.root / "bad.md").read_bytes() == b"---\ntitle: [x\n---\n"


def test_unreadable_note_error(run):
    (run.root / "bin.md").write_bytes(b"\x00\x01binary")
    r = run("meta", "get", "bin.md", "a")
    assert r.exit_code == 1 and "binary file" in r.output


def test_vault_that_does_not_exist(tmp_path):
    r = CliRunner().invoke(cli, ["--vault", str(tmp_path / "nope"), "memory", "list"])
    assert r.exit_code == 1
    assert r.output == f"Error: vault folder {tmp_path / 'nope'} does not exist\n"


def test_help_has_examples():
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0 and "Examples:" in r.output
    r = CliRunner().invoke(cli, ["session", "add", "--help"])
    assert "Examples:" in r.output


def test_python_dash_m_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mirrorfs", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("mirrorfs, version ")


def test_demo_runs_on_a_copy_and_leaves_the_sample_untouched(tmp_path):
    from conftest import SAMPLE_VAULT, snapshot_tree

    before = snapshot_tree(SAMPLE_VAULT)
    r = CliRunner().invoke(cli, ["demo", "--into", str(tmp_path / "demo")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "== 1. Copy the sample vault" in r.output
    assert "+tier: working" in r.output
    assert "Ask the AI — a dry run" in r.output and "pinned: who you are (SOUL.md)" in r.output
    assert "memory/kyoto-trip-march-2027.md" in r.output  # what the AI would remember about the question
    assert snapshot_tree(SAMPLE_VAULT) == before
    assert (tmp_path / "demo" / "memory" / "demo-leaves-the-sample-untouched.md").is_file()
