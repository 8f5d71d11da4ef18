"""The lean console (mirrorfs.console): the real `mirrorfs` script, a real watcher.

Served through the watcher it prints byte for byte what the full click CLI
prints, without importing click, YAML, filelock, Whoosh or the vault; whenever
it cannot serve, the full CLI answers. `MIRRORFS_LEAN_REPORT` tells which path
ran and which modules it had loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
import yaml

from mirrorfs import locate
from mirrorfs.daemon import WatchDaemon
from mirrorfs.vault import Vault

MIRRORFS = Path(sys.executable).parent / "mirrorfs"
FULL = [sys.executable, "-c", "from mirrorfs.cli import cli; cli(prog_name='mirrorfs')"]
HEAVY = ("click", "yaml", "filelock", "whoosh", "platformdirs", "mirrorfs.vault", "mirrorfs.cli", "mirrorfs.search")
TIMEOUT = 20


@pytest.fixture
def filled(vault):
    vault.remember("Sam drinks oolong tea every morning", title="Oolong", tags=["drinks"])
    vault.remember("Green tea after lunch, never oolong at night", title="Afternoon tea")
    s = vault.sessions.create("Tea talk", tags=["drinks"])
    s.add_message("user", "Which oolong should I buy for Sam? Ünïcode too")
    s.add_message("assistant", "A **Taiwanese** oolong, lightly roasted.")
    return vault


@pytest.fixture
def watcher(filled):
    # A heartbeat that never comes during the test: the status file stays as it is.
    d = WatchDaemon(Vault.open(filled.root, instance="laptop"), echo=lambda line: None, heartbeat=3600)
    d.start()
    assert d.wait_ready(TIMEOUT)
    yield d
    d.stop()


def _run(cmd: list[str], root: Path, args: tuple[str, ...], report: Path | None = None, stdin: str | None = None):
    env = {**os.environ}
    env.pop("MIRRORFS_LEAN_REPORT", None)
    if report is not None:
        env["MIRRORFS_LEAN_REPORT"] = str(report)
    done = subprocess.run([*cmd, "--vault", str(root), *args], capture_output=True, env=env, timeout=60,
                          input=stdin.encode() if stdin is not None else None, cwd=root)
    return done.returncode, done.stdout, done.stderr


def _both(root: Path, tmp_path: Path, *args: str, stdin: str | None = None) -> dict:
    """Run the console script and the full CLI; assert the same bytes out; the lean report."""
    report = tmp_path / "lean.json"
    report.unlink(missing_ok=True)
    lean = _run([str(MIRRORFS)], root, args, report, stdin)
    full = _run(FULL, root, args, stdin=stdin)
    assert lean == full, (args, lean, full)
    return json.loads(report.read_text())


LEAN_COMMANDS = [
    ("search", "oolong"),
    ("search", "oolong", "--json"),
    ("search", "oolong", "--paths"),
    ("search", "oolong", "--type", "memory", "--tag", "drinks", "--limit", "5"),
    ("search", "tea lunch", "--any", "--no-sessions", "--json"),
    ("search", "oolong", "--instance", "laptop", "--mode", "keyword"),
    ("search", "oolong", "--min-score", "0.1", "--json"),  # keyword with a threshold: the watcher's `semantic`
    ("search", "nothingmatchesthis"),
    ("search", "nothingmatchesthis", "--paths"),
    ("search", "taiwanese", "--type", "message"),
    ("--instance", "phone", "search", "--limit=1", "--", "oolong"),
    ("recall", "oolong tea"),
    ("recall", "oolong", "--json", "--half-life", "7", "--limit", "1"),
    ("similar", "memory/oolong.md"),
    ("similar", "memory/oolong.md", "--threshold", "0", "--sessions", "--json"),
    ("similar", "Sam drinks oolong every morning", "--method", "keyword"),
    ("status",),
    ("status", "--json"),
    ("reflections",),  # nothing new for laptop: it wrote everything
    ("--instance", "phone", "reflections"),
    ("--instance", "phone", "reflections", "--json"),
]


@pytest.mark.parametrize("args", LEAN_COMMANDS, ids=" ".join)
def test_the_lean_path_prints_what_the_full_cli_prints_without_its_imports(watcher, tmp_path, args):
    before = dict(watcher.requests)
    report = _both(watcher.vault.root, tmp_path, *args)
    assert report["served"], report["why"]
    assert [m for m in HEAVY if m in report["modules"]] == []
    op = next(a for a in args if a in ("search", "recall", "similar", "status", "reflections"))
    op = "semantic" if "--min-score" in args else op  # a threshold is a score by meaning's scale
    assert watcher.requests.get(op, 0) > before.get(op, 0)  # the lean path asked the watcher


def test_a_relative_note_path_is_the_callers_not_the_watchers(watcher, tmp_path):
    memory = watcher.vault.root / "memory"
    report = tmp_path / "lean.json"
    env = {**os.environ, "MIRRORFS_LEAN_REPORT": str(report)}
    lean = subprocess.run([str(MIRRORFS), "similar", "oolong.md", "--threshold", "0"], cwd=memory,
                          capture_output=True, env=env, timeout=60)
    full = subprocess.run([*FULL, "similar", "oolong.md", "--threshold", "0"], cwd=memory,
                          capture_output=True, timeout=60)
    assert json.loads(report.read_text())["served"]
    assert (lean.returncode, lean.stdout, lean.stderr) == (full.returncode, full.stdout, full.stderr)
    assert b"memory/oolong.md" not in lean.stdout and b"memory/afternoon-tea.md" in lean.stdout


FALLBACKS = [
    (("search", "oolong", "--unlock", "--passphrase-file", "/nonexistent"), "option --unlock"),
    (("search", "oolong", "--min-score", "2"), "out of range"),
    (("search", "oolong", "--mode", "fuzzy"), "--mode value"),
    (("search", "--help"), "option --help"),
    (("--help",), "option --help"),
    (("search", "oolong", "--type", "bogus"), "--type"),
    (("search", "oolong", "--limit", "0"), "out of range"),
    (("search", '"oolong'), "watcher error"),  # the watcher's QueryError: the full CLI words it
    (("search", '"oolong', "--json"), "watcher error"),
    (("search", "x" * 2001), "long query"),
    (("similar", "-"), "standard input"),
    (("similar", "memory/none.md"), "watcher error"),
    (("recent",), "not a command"),
    (("--instance", "phone", "reflections", "--since", "7d"), "option --since"),
    (("--instance", "Not Valid", "search", "oolong"), "instance name"),
]


@pytest.mark.parametrize(("args", "why"), FALLBACKS, ids=lambda a: " ".join(a)[:40] if isinstance(a, tuple) else "")
def test_whatever_the_lean_path_cannot_serve_the_full_cli_answers(watcher, tmp_path, args, why):
    report = _both(watcher.vault.root, tmp_path, *args, stdin="Sam drinks oolong\n")
    assert not report["served"] and why in report["why"]


def test_marking_reflections_read_is_the_full_clis_and_the_lean_path_sees_it(watcher, tmp_path):
    root, report = watcher.vault.root, tmp_path / "lean.json"
    rc, out, _ = _run([str(MIRRORFS)], root, ("--instance", "phone", "reflections", "--mark-read"), report)
    assert rc == 0 and b'laptop added memory "Oolong" (memory/oolong.md)' in out
    assert json.loads(report.read_text())["why"] == "option --mark-read"
    after = _both(root, tmp_path, "--instance", "phone", "reflections")
    assert after["served"]
    assert _run([str(MIRRORFS)], root, ("--instance", "phone", "reflections"))[1].startswith(
        b"nothing new since you last looked (")


def test_one_line_errors_come_from_the_full_cli(watcher, tmp_path):
    root = watcher.vault.root
    rc, out, err = _run([str(MIRRORFS)], root, ("search", "tea", "--type", "bogus"))
    assert (rc, out) == (1, b"")
    assert err == (b"Error: unknown type 'bogus': use one of soul, memory, session, instance, bridge, "
                   b"pattern, note, message\n")
    rc, out, err = _run([str(MIRRORFS)], root, ("search", '"oolong', "--json"))
    assert rc == 1 and json.loads(out)["code"] == "QueryError" and err == b""


def test_without_a_watcher_the_full_cli_answers_the_same(filled, tmp_path):
    for args in (("search", "oolong"), ("search", "oolong", "--paths"), ("status",), ("status", "--json")):
        report = _both(filled.root, tmp_path, *args)
        assert not report["served"] and report["why"].startswith("watcher: ")


def test_searches_by_meaning_are_served_too_once_embeddings_exist(watcher, tmp_path):
    # Where this device keeps vectors, a search without --mode is hybrid: the watcher
    # answers it (the model stays loaded there), and the lean path prints it.
    watcher.vault.embed("local")
    for args in (("search", "oolong"), ("search", "what does Sam have at breakfast", "--json"),
                 ("search", "morning drink", "--mode", "semantic", "--min-score", "0.2", "--paths"),
                 ("search", "oolong", "--mode", "keyword", "--min-score", "0.01"),
                 ("search", "oolong", "--mode", "keyword")):
        report = _both(watcher.vault.root, tmp_path, *args)
        assert report["served"], (args, report["why"])
        assert [m for m in HEAVY if m in report["modules"]] == []
    assert watcher.requests["semantic"] >= 8  # both paths asked the watcher by meaning
    # recall and similar by meaning still run in-process (the full CLI).
    assert _both(watcher.vault.root, tmp_path, "recall", "oolong")["why"] == "embeddings: the default mode is hybrid"


# -- locate: the cheap answers are exact, or none ------------------------------------------


def test_the_vault_id_read_without_yaml_is_yamls_or_none(tmp_path):
    root = tmp_path / "v"
    Vault.init(root, name="Mira", instance="laptop")
    config = root / ".mirrorfs" / "config.yaml"
    written = config.read_bytes()
    assert locate.config_vault_id(root) == yaml.safe_load(written)["vault_id"]
    for text, expect in [
        ("vault_id: '0123456789'\nname: x\n", "0123456789"),
        ('vault_id: "abcdef12" # mine\n', "abcdef12"),
        ("vault_id: 01234567\n", None),  # YAML reads an octal number
        ("vault_id: 0b101010\n", None),  # and a binary one
        ("{vault_id: abcdef12}\n", None),
        ("vault_id: abcdef12\nvault_id: abcdef34\n", None),
        ("---\nvault_id: abcdef12\n", None),
        ("name: x\n", None),
    ]:
        config.write_text(text)
        assert locate.config_vault_id(root) == expect, text
        if expect is not None:
            assert str(yaml.safe_load(text)["vault_id"]) == expect


@pytest.mark.parametrize("env", [{}, {"XDG_STATE_HOME": "/tmp/xdg-state"}, {"XDG_STATE_HOME": ""},
                                 {"HOME": "/home/someone/"}])
def test_the_state_root_guess_is_platformdirs_answer(monkeypatch, env):
    if sys.platform != "linux":
        pytest.skip("the guess is made on Linux only")
    monkeypatch.delenv("MIRRORFS_STATE_DIR")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert locate.guess_state_base() == Path(platformdirs.user_state_dir("mirrorfs", appauthor=False))


def test_a_state_folder_is_only_found_for_the_vault_folder_it_records(vault):
    base = locate.state_override()
    found = locate.existing_state_dir(vault.root, vault.id, base)
    assert found == Path(vault.state_dir)
    assert locate.existing_state_dir(vault.root, "0" * 32, base) is None
    assert locate.existing_state_dir(vault.root.parent, vault.id, base) is None
