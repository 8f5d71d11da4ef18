"""Encrypted sections wired into the vault, the CLI and the watcher: real files, real CLI, real watcher.

One passphrase for the whole module: every PBKDF2 derivation costs ~0.1 s.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import snapshot_tree

from mirrorfs.cli import cli
from mirrorfs.crypto import Keyring, find_sections
from mirrorfs.daemon import WatchDaemon
from mirrorfs.errors import LockedError
from mirrorfs.vault import Vault

PASSPHRASE = "correct horse battery staple"
SECTION = re.compile(r"%%🔐β [A-Za-z0-9+/]+={0,2} 🔐%%")
TIMEOUT = 20


@pytest.fixture
def pass_file(tmp_path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def run(vault):
    runner = CliRunner()

    def invoke(*args, **kwargs):
        return runner.invoke(cli, ["--vault", str(vault.root), "--instance", "laptop", *args], **kwargs)

    return invoke


def _body_of(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n---\n", 1)[1]


def test_remember_secret_seals_the_body_and_reveal_shows_it(run, vault, pass_file):
    done = run("remember", "Locker code is 4711 quasar", "--secret", "--passphrase-file", str(pass_file))
    assert done.exit_code == 0, done.output
    rel = done.output.strip()
    raw = (vault.root / rel).read_text(encoding="utf-8")
    assert "4711" not in raw and "quasar" not in raw
    assert "title: Secret memory" in raw and "type: memory" in raw
    assert SECTION.fullmatch(_body_of(vault.root / rel).strip())

    revealed = run("reveal", rel, "--passphrase-file", str(pass_file))
    assert revealed.exit_code == 0, revealed.output
    assert "Locker code is 4711 quasar" in revealed.output

    shown = run("memory", "show", rel)
    assert shown.exit_code == 0 and "🔒 [encrypted section]" in shown.output and "quasar" not in shown.output
    as_json = json.loads(run("memory", "show", rel, "--json").output)
    assert as_json["body"] == "🔒 [encrypted section]"


def test_wrong_passphrase_is_one_clear_line_and_changes_nothing(run, vault, pass_file, tmp_path):
    assert run("remember", "Vault opener", "--secret", "--passphrase-file", str(pass_file)).exit_code == 0
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n", encoding="utf-8")
    wrong.chmod(0o600)
    before = snapshot_tree(vault.root)
    for args in (("reveal", "memory/secret-memory.md"), ("remember", "more", "--secret"), ("seal",)):
        done = run(*args, "--passphrase-file", str(wrong))
        assert done.exit_code == 1
        lines = done.output.strip().splitlines()
        assert len(lines) == 1 and "wrong passphrase" in lines[0] and "--passphrase-file" in lines[0]
    assert snapshot_tree(vault.root) == before


def test_first_unlock_appends_salt_and_check_keeping_the_config_bytes(vault):
    config = vault.root / ".mirrorfs" / "config.yaml"
    before = config.read_bytes()
    vault.unlock(PASSPHRASE)
    after = config.read_bytes()
    assert after.startswith(before)
    assert set(re.findall(rb"^(\w+):", after[len(before):], re.M)) == {b"encryption_salt", b"encryption_check"}
    vault.lock()
    assert not vault.unlocked
    again = Vault.open(vault.root, instance="laptop")
    again.unlock(PASSPHRASE)  # verifies against the check
    assert config.read_bytes() == after


def test_a_tampered_section_fails_naming_the_file_and_changes_nothing(run, vault, pass_file):
    rel = run("remember", "Tamper target", "--secret", "--passphrase-file", str(pass_file)).output.strip()
    path = vault.root / rel
    text = path.read_text(encoding="utf-8")
    section = find_sections(text)[0]
    payload_at = section.start + len("%%🔐β ") + 40
    flipped = "A" if text[payload_at] != "A" else "B"
    path.write_text(text[:payload_at] + flipped + text[payload_at + 1:], encoding="utf-8")
    before = path.read_bytes()
    done = run("reveal", rel, "--passphrase-file", str(pass_file))
    assert done.exit_code == 1
    assert rel in done.output and "Tamper target" not in done.output
    assert path.read_bytes() == before


def test_a_locked_write_of_a_secret_block_is_refused_and_writes_nothing(vault):
    before = snapshot_tree(vault.root)
    with pytest.raises(LockedError):
        vault.remember("Note\n```secret\nhidden pin 9931\n```\n")
    with pytest.raises(LockedError):
        vault.remember("hidden pin 9931", secret=True)
    session = vault.sessions.create("Talk")
    mid = snapshot_tree(vault.root)
    with pytest.raises(LockedError):
        session.add_message("user", "pin:\n```secret\nhidden pin 9931\n```")
    with pytest.raises(LockedError):
        session.add_message("user", "hidden pin 9931", secret=True)
    assert snapshot_tree(vault.root) == mid
    assert not any(b"9931" in data for data in snapshot_tree(vault.root).values())
    assert {k for k in mid if mid[k] != before.get(k)} <= {k for k in mid if k.startswith(("sessions/", "instances/"))}


def _wait_sealed(batches: queue.Queue, path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while "```secret" in path.read_text(encoding="utf-8"):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("the watcher did not seal the block")
        try:
            batches.get(timeout=left)
        except queue.Empty:
            pytest.fail("the watcher did not seal the block")


def _watch(vault) -> tuple[WatchDaemon, queue.Queue, list[str]]:
    lines: list[str] = []
    batches: queue.Queue = queue.Queue()
    daemon = WatchDaemon(vault, echo=lines.append, warn=lambda w: lines.append(f"warning: {w}"))
    daemon.on_batch = batches.put
    daemon.start()
    assert daemon.wait_ready(TIMEOUT)
    return daemon, batches, lines


def test_the_watcher_seals_a_secret_block_a_person_saves(vault):
    vault.unlock(PASSPHRASE)
    daemon, batches, lines = _watch(vault)
    try:
        path = vault.root / "memory" / "typed.md"
        path.write_text("---\ntitle: Typed\n---\nBefore\n\n```secret\nthe alarm code is 2468\n```\nAfter\n",
                        encoding="utf-8")
        _wait_sealed(batches, path)
    finally:
        daemon.stop()
    text = path.read_text(encoding="utf-8")
    assert "2468" not in text and text.startswith("---\ntitle: Typed\n---\nBefore\n\n%%🔐β ")
    assert text.endswith(" 🔐%%\nAfter\n")
    assert "the alarm code is 2468" in vault.readable(text)
    assert not any("2468" in line for line in lines)


def test_doctor_finds_an_unsealed_block_and_seal_fixes_it(run, vault, pass_file):
    assert run("doctor").exit_code == 0
    (vault.root / "memory" / "draft.md").write_text("Draft\n\n```secret\nsafe combo 1234\n```\n", encoding="utf-8")
    found = run("doctor")
    assert found.exit_code == 1
    assert "memory/draft.md" in found.output and "mirrorfs seal" in found.output and "1234" not in found.output
    report = json.loads(run("doctor", "--json").output)
    assert [p["check"] for p in report["problems"]] == ["unsealed"]
    sealed = run("seal", "--passphrase-file", str(pass_file))
    assert sealed.exit_code == 0 and sealed.output.strip().endswith("sealed 1 note")
    assert "1234" not in (vault.root / "memory" / "draft.md").read_text(encoding="utf-8")
    assert run("doctor").exit_code == 0


def test_edit_reseals_what_changed_and_leaves_no_temp_file(run, vault, pass_file, tmp_path):
    rel = run("remember", "Wifi password is plum", "--secret", "--title", "Wifi",
              "--passphrase-file", str(pass_file)).output.strip()
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "(tmp := pathlib.Path(sys.argv[0]).with_name('seen.txt')).write_text(str(p.parent))\n"
                      "p.write_text(p.read_text().replace('plum', 'peach'))\n")
    done = run("edit", rel, "--passphrase-file", str(pass_file),
               env={"EDITOR": f"{sys.executable} {editor}"})
    assert done.exit_code == 0, done.output
    raw = (vault.root / rel).read_text(encoding="utf-8")
    assert "peach" not in raw and "plum" not in raw and SECTION.search(raw)
    assert "Wifi password is peach" in run("reveal", rel, "--passphrase-file", str(pass_file)).output
    folder = Path((tmp_path / "seen.txt").read_text())
    assert not folder.exists() and not str(folder).startswith(str(vault.root))


def test_rekey_moves_every_section_to_the_new_passphrase(run, vault, pass_file, tmp_path):
    rel = run("remember", "Rekey me", "--secret", "--passphrase-file", str(pass_file)).output.strip()
    new = tmp_path / "new.txt"
    new.write_text("a brand new passphrase\n", encoding="utf-8")
    new.chmod(0o600)
    done = run("rekey", "--passphrase-file", str(pass_file), "--new-passphrase-file", str(new))
    assert done.exit_code == 0, done.output
    assert "re-encrypted 1 note" in done.output
    assert run("reveal", rel, "--passphrase-file", str(pass_file)).exit_code == 1
    assert "Rekey me" in run("reveal", rel, "--passphrase-file", str(new)).output
    # Run again: nothing left to do (already under the new key).
    again = run("rekey", "--passphrase-file", str(new), "--new-passphrase-file", str(new))
    assert again.exit_code == 0


def _cli(vault_root, env, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(vault_root), "--instance", "laptop",
                           *args], env=env, capture_output=True, text=True, input=stdin, timeout=60)


def _sqlite_blobs(path: Path) -> bytes:
    """Every blob of a SQLite file, zlib-decompressed where it is compressed (the snapshot store is)."""
    if not path.name.endswith(".sqlite3"):
        return b""
    import sqlite3
    import zlib

    out = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            out.append(zlib.decompress(value))
                        except zlib.error:
                            out.append(value)
    return b"".join(out)


def test_no_leak_of_a_planted_secret(vault, pass_file, tmp_path, state_dir):
    word = "xylophonequartz7731"
    temp = tmp_path / "proc-tmp"
    temp.mkdir()
    env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "TMPDIR": str(temp)}
    env.pop("MIRRORFS_PASSPHRASE", None)
    outputs: list[str] = []

    def cli_run(*args):
        done = _cli(vault.root, env, *args)
        assert done.returncode == 0, done.stderr
        outputs.extend([done.stdout, done.stderr])
        return done

    # The CLI: a secret memory and a clear one with a block in it.
    cli_run("remember", f"The {word} is under the mat", "--secret", "--passphrase-file", str(pass_file))
    cli_run("remember", f"Gardening notes\n```secret\n{word} again\n```\nroses need water",
            "--passphrase-file", str(pass_file))
    # The API: a secret message in a session.
    vault.unlock(Keyring(PASSPHRASE))
    session = vault.sessions.create("Chat")
    session.add_message("user", f"remember {word} for me", secret=True)
    session.add_message("assistant", f"ok\n```secret\n{word}\n```\n")
    # The watcher, over a block a person typed.
    daemon, batches, lines = _watch(vault)
    try:
        typed = vault.root / "memory" / "typed.md"
        typed.write_text(f"---\ntitle: Typed\n---\nroses and tulips\n\n```secret\n{word} typed\n```\n",
                         encoding="utf-8")
        _wait_sealed(batches, typed)
    finally:
        daemon.stop()
    outputs.extend(lines)
    # Search for another word, through the index.
    found = cli_run("search", "roses")
    assert "memory/" in found.stdout
    cli_run("memory", "list")
    cli_run("doctor")
    outputs.append(cli_run("session", "show", session.id).stdout)

    needle = word.encode("utf-8")
    files = [p for root in (vault.root, state_dir, temp) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "seen.sqlite3" for p in files)  # the snapshot store exists: the check below means something
    leaks = [p for p in files if needle in p.read_bytes() or needle in _sqlite_blobs(p)]
    assert leaks == [], f"the secret leaked into {leaks}"
    assert not any(word in out for out in outputs)

    revealed = cli_run("reveal", "memory/secret-memory.md", "--passphrase-file", str(pass_file))
    assert word in revealed.stdout
