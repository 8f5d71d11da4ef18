"""Selective sync (mirrorfs.syncfilter): rules to ignore-file blocks, a person's lines untouched.

That Syncthing really leaves the filtered sessions alone is checked with the
real daemons in tests/test_e2e_conflicts.py.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

from mirrorfs import ignore_files, syncfilter
from mirrorfs.errors import InvalidValueError
from mirrorfs.syncfilter import Rules, SessionFacts


def facts() -> list[SessionFacts]:
    return [
        SessionFacts("sessions/laptop/2026-11-21-diary-a1b2.md", "laptop", frozenset({"private", "diary"}), None),
        SessionFacts("sessions/laptop/2026-11-21-budget-c3d4.md", "laptop", frozenset({"money"}), "work"),
        SessionFacts("sessions/phone/2026-11-21-trip-e5f6.md", "phone", frozenset(), "travel"),
        SessionFacts("sessions/mcp/2026-11-21-code [draft]-0a0b.md", "mcp", frozenset({"Private"}), "work"),
    ]


def test_exclude_rules_list_each_session_and_instance_folders():
    report = syncfilter.plan(Rules(exclude_tags=("private",), exclude_instances=("phone",)), facts(), "syncthing")
    assert report.lines == [
        "// rules: --exclude-tag private --exclude-instance phone",
        "/sessions/phone",
        "/sessions/laptop/2026-11-21-diary-a1b2.md",
        r"/sessions/mcp/2026-11-21-code \[draft\]-0a0b.md",  # tags match without case; patterns are escaped
    ]
    assert report.folders == ["phone"]


def test_include_rules_keep_only_what_they_name_and_exclude_wins():
    rules = Rules(include_categories=("work",), exclude_tags=("private",))
    report = syncfilter.plan(rules, facts(), "git")
    assert report.excluded == ["sessions/laptop/2026-11-21-diary-a1b2.md", "sessions/phone/2026-11-21-trip-e5f6.md",
                               "sessions/mcp/2026-11-21-code [draft]-0a0b.md"]
    assert report.lines[0] == "# rules: --include-category work --exclude-tag private"
    report = syncfilter.plan(Rules(include_instances=("phone",), exclude_instances=("mcp",)), facts(), "git")
    assert report.lines[1:] == ["/sessions/mcp/", "/sessions/laptop/2026-11-21-diary-a1b2.md",
                                "/sessions/laptop/2026-11-21-budget-c3d4.md"]


def test_rules_read_back_from_their_line():
    rules = Rules(include_tags=("a b",), exclude_categories=("x",), exclude_instances=("phone",))
    assert Rules.from_args(rules.to_args()) == rules
    with pytest.raises(InvalidValueError, match="unknown rule"):
        Rules.from_args("--drop-tag x")


def _session(vault, title, tags=(), category=None, instance=None):
    s = vault.sessions.create(title, tags=list(tags), category=category) if instance is None else \
        type(vault).open(vault.root, instance=instance).sessions.create(title, tags=list(tags), category=category)
    return s.relpath


def test_the_block_goes_into_stignore_and_a_persons_lines_stay(vault):
    (vault.root / ".stfolder").mkdir()
    mine = b"// my own patterns\r\n*.pdf\r\n"
    (vault.root / ".stignore").write_bytes(mine)
    diary = _session(vault, "Diary", tags=["private"])
    _session(vault, "Plans", tags=["work"])
    report = syncfilter.apply(vault, Rules(exclude_tags=("private",)))
    assert (report.engine, report.file, report.excluded, report.changed) == ("syncthing", ".stignore", [diary], True)
    data = (vault.root / ".stignore").read_bytes()
    assert data.startswith(mine + b"\r\n// BEGIN mirrorfs sync-filter ")
    assert data.endswith(f"// rules: --exclude-tag private\r\n/{diary}\r\n// END mirrorfs sync-filter\r\n".encode())
    # A later session with the tag: running again without rules brings the list up to date.
    later = _session(vault, "Dreams", tags=["private"])
    again = syncfilter.apply(vault)
    assert again.excluded == sorted([diary, later]) and again.changed
    assert syncfilter.apply(vault).changed is False
    syncfilter.apply(vault, clear=True)
    assert (vault.root / ".stignore").read_bytes() == mine
    with pytest.raises(InvalidValueError, match="give at least one rule"):
        syncfilter.apply(vault)


def test_git_clones_get_a_gitignore_block_and_a_note_about_tracked_files(vault):
    subprocess.run(["git", "init", "-q", str(vault.root)], check=True)
    diary = _session(vault, "Diary", tags=["private"])
    subprocess.run(["git", "-C", str(vault.root), "add", diary], check=True)
    report = syncfilter.apply(vault, Rules(exclude_tags=("private",)))
    assert (report.engine, report.file, report.tracked) == ("git", ".gitignore", [diary])
    assert ignore_files.read_block(vault.root / ".gitignore", "sync-filter") == \
        ["# rules: --exclude-tag private", f"/{diary}"]
    ignored = subprocess.run(["git", "-C", str(vault.root), "check-ignore", "--no-index", diary],
                             capture_output=True, text=True)
    assert ignored.stdout.strip() == diary  # git reads the pattern as meant


def test_no_engine_or_two_engines_is_a_clear_error(vault):
    with pytest.raises(InvalidValueError, match="no sync engine found"):
        syncfilter.apply(vault, Rules(exclude_tags=("x",)))
    (vault.root / ".stfolder").mkdir()
    (vault.root / ".git").mkdir()
    with pytest.raises(InvalidValueError, match="name one with --engine"):
        syncfilter.apply(vault, Rules(exclude_tags=("x",)))
    assert syncfilter.apply(vault, Rules(exclude_tags=("x",)), engine="git", dry_run=True).file == ".gitignore"


def test_cli_sync_filter(vault):
    from mirrorfs.cli import cli

    (vault.root / ".stfolder").mkdir()
    diary = _session(vault, "Diary", tags=["private"])
    run = CliRunner().invoke
    args = ["--vault", str(vault.root), "--instance", "laptop", "sync-filter"]
    out = run(cli, args + ["--exclude-tag", "private", "--exclude-instance", "phone", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert out.output == f".stignore would leave out 1 session file(s) and the sessions of phone\n  {diary}\n"
    assert not (vault.root / ".stignore").exists()
    out = run(cli, args + ["--exclude-tag", "private", "--json"])
    assert json.loads(out.output)["excluded"] == [diary]
    out = run(cli, args)
    assert out.output == f".stignore leaves out 1 session file(s)\n  {diary}\n  (already so: nothing written)\n"
    out = run(cli, args + ["--clear"])
    assert out.output == ".stignore: no sync filter (every session syncs)\n"
    assert run(cli, args + ["--engine", "dropbox"]).exit_code == 2
