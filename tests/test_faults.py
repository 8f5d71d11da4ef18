"""Faults a person can cause, through the CLI as they would type it: one clear line,
exit 1, no traceback, and no byte of an existing file changed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import snapshot_tree

from mirrorfs.cli import cli


@pytest.fixture
def run(vault):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--vault", str(vault.root), "--instance", "laptop", *args], input=input)

    invoke.vault = vault
    return invoke


def test_a_nul_byte_in_a_message_is_refused_and_the_session_stays_readable(run):
    sid = run("session", "new", "Tools").output.strip()
    before = snapshot_tree(run.vault.root)
    r = run("session", "add", sid, "-", "--role", "tool", input="a\0b")
    assert r.exit_code == 1
    assert r.output == ("Error: a message contains a NUL byte: notes are Markdown text, so binary data "
                        "cannot be kept; nothing was written\n")
    assert snapshot_tree(run.vault.root) == before
    assert run("session", "add", sid, "fine", "--role", "tool").exit_code == 0
    listed = run("session", "list")
    assert listed.exit_code == 0 and sid in listed.output


def test_a_nul_byte_in_a_memory_is_refused(run):
    before = snapshot_tree(run.vault.root)
    r = run("remember", "-", input="tea\0coffee")
    assert r.exit_code == 1
    assert r.output == ("Error: a memory contains a NUL byte: notes are Markdown text, so binary data "
                        "cannot be kept; nothing was written\n")
    assert snapshot_tree(run.vault.root) == before


def test_an_empty_message_is_refused(run):
    sid = run("session", "new", "Quiet").output.strip()
    r = run("session", "add", sid, "  ", "--role", "user")
    assert (r.exit_code, r.output) == (1, "Error: a message needs some text; nothing was written\n")


def test_a_message_that_would_pass_the_size_limit_is_refused_with_what_to_do(run):
    sid = run("session", "new", "Huge").output.strip()
    before = snapshot_tree(run.vault.root)
    r = run("session", "add", sid, "-", "--role", "user", input="x" * (11 * 2**20))
    assert r.exit_code == 1
    rel = run.vault.sessions.load(sid).relpath
    assert r.output == (f"Error: {rel} would grow to 11.0 MiB, over the 10 MiB limit for notes; nothing was "
                        f"written. Continue in a new session: mirrorfs session new TITLE --previous {sid}\n")
    assert snapshot_tree(run.vault.root) == before
    assert run("session", "list").exit_code == 0


def test_a_note_over_the_size_limit_is_not_edited(run):
    big = run.vault.root / "memory" / "big.md"
    big.write_bytes(b"---\ntitle: big\n---\n" + b"y" * (50 * 2**20))
    r = run("meta", "set", "memory/big.md", "tier", "working")
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "over the 10485760-byte limit for notes" in r.output
    assert big.stat().st_size == 50 * 2**20 + 19


def test_a_fifo_named_like_a_note_hangs_nothing_and_breaks_no_listing(vault, tmp_path):
    vault.remember("Sam likes tea", title="Tea")
    os.mkfifo(vault.root / "memory" / "pipe.md")
    os.mkfifo(vault.root / "sessions" / "laptop-pipe.md")
    env = dict(os.environ, MIRRORFS_VAULT=str(vault.root), MIRRORFS_INSTANCE="laptop")
    for args in (["memory", "list"], ["session", "list"], ["instances"]):
        done = subprocess.run([sys.executable, "-m", "mirrorfs", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "mirrorfs", "memory", "list"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert "memory/tea.md" in done.stdout
    assert done.stderr == f"warning: {vault.root}/memory/pipe.md: not a regular file (a FIFO, socket or device); skipped\n"


def _in_a_small_tmpfs(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    """Run *script* (sh) with $SMALL a 512 KiB tmpfs, in a private mount namespace."""
    small = tmp_path / "small"
    small.mkdir()
    env = dict(os.environ, SMALL=str(small), PY=sys.executable)
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=512k tmpfs "$SMALL" && ' + script],
        env=env, capture_output=True, text=True, timeout=120)


def test_a_full_disk_is_one_line_and_changes_nothing(tmp_path):
    done = _in_a_small_tmpfs(tmp_path, textwrap.dedent('''
        set -e
        "$PY" -m mirrorfs init "$SMALL/v" --name Mira >/dev/null
        "$PY" -m mirrorfs --vault "$SMALL/v" remember "Sam likes tea" --title Tea >/dev/null
        cp -r "$SMALL/v" "$SMALL/../before" 2>/dev/null || true
        # Fill the disk to the last byte.
        dd if=/dev/zero of="$SMALL/fill" bs=4k 2>/dev/null || true
        set +e
        "$PY" -m mirrorfs --vault "$SMALL/v" remember "a second memory"; echo "rc=$?"
        "$PY" -m mirrorfs --vault "$SMALL/v" meta set memory/tea.md tier working; echo "rc=$?"
        ls -a "$SMALL/v/memory"
        cat "$SMALL/v/memory/tea.md"
    '''))
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert out.count("rc=1") == 2, out
    assert out.count("no space left on the device; free some space and retry; nothing was changed") == 2, out
    assert "tier: long_term" in done.stdout
    assert ".mirrorfs-" not in done.stdout  # no temp file left behind


def test_a_full_disk_under_the_search_index_is_one_line(tmp_path):
    vault_dir = tmp_path / "v"
    done = _in_a_small_tmpfs(tmp_path, textwrap.dedent(f'''
        set -e
        export MIRRORFS_STATE_DIR="$SMALL/state"
        "$PY" -m mirrorfs init "{vault_dir}" --name Mira >/dev/null
        for i in $(seq 1 40); do
            "$PY" -m mirrorfs --vault "{vault_dir}" remember "Sam likes tea number $i and oolong" >/dev/null
        done
        dd if=/dev/zero of="$SMALL/fill" bs=4k 2>/dev/null || true
        set +e
        "$PY" -m mirrorfs --vault "{vault_dir}" search oolong; echo "rc=$?"
        "$PY" -m mirrorfs --vault "{vault_dir}" index rebuild; echo "rc=$?"
    '''))
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert out.count("rc=1") == 2, out
    assert out.count("cannot update the search index in") == 2, out
    assert "no space left on the device" in out, out
    assert len(list((vault_dir / "memory").glob("*.md"))) == 40


def test_a_vault_moved_away_under_a_command_is_one_line(vault, tmp_path):
    env = dict(os.environ, MIRRORFS_INSTANCE="laptop")
    moved = tmp_path / "moved"
    os.rename(vault.root, moved)
    done = subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "memory", "list"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == f"Error: vault folder {vault.root} does not exist\n"
    assert not vault.root.exists()


def test_one_huge_request_cannot_stall_the_watcher(vault):
    import socket
    import threading

    from mirrorfs.daemon import WatchDaemon
    from mirrorfs.errors import QueryError
    from mirrorfs.watch_client import socket_path

    vault.remember("Sam likes oolong tea", title="Tea")
    d = WatchDaemon(vault, echo=lambda line: None, warn=lambda line: None)
    d.start()
    try:
        assert d.wait_ready(30)
        # A megabyte on one line is refused at once, and the connection closed.
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(socket_path(vault.state_dir))
            try:
                sock.sendall(b'{"op": "search", "args": {"query": "' + b"x" * (1 << 20) + b'"}}\n')
            except BrokenPipeError:
                pass  # the watcher stopped reading once the line passed the limit
            reply = sock.makefile("rb").readline()
        assert b"request over 64 KiB refused" in reply
        # A client that never finishes its line does not block the others.
        stalled = socket.socket(socket.AF_UNIX)
        stalled.connect(socket_path(vault.state_dir))
        stalled.sendall(b'{"op": "search", ')
        answers = []
        t = threading.Thread(target=lambda: answers.append(vault.search("oolong")))
        t.start()
        t.join(10)
        stalled.close()
        assert [h.path for h in answers[0]] == ["memory/tea.md"] and answers[0].via == "watcher"
        with pytest.raises(QueryError, match="queries are limited to 2,000"):
            vault.search("tea " * 1000)
    finally:
        d.stop()


def test_a_symbolic_link_loop_is_one_line_and_breaks_no_listing(run):
    memory = run.vault.root / "memory"
    run.vault.remember("Sam likes tea", title="Tea")
    (memory / "loop2.md").symlink_to("loop1.md")
    (memory / "loop1.md").symlink_to("loop2.md")
    listed = run("memory", "list")
    assert listed.exit_code == 0 and "memory/tea.md" in listed.output and "Traceback" not in listed.output
    r = run("meta", "get", "memory/loop1.md", "title")
    assert (r.exit_code, r.output) == (1, "Error: memory/loop1.md: a symbolic link loop: fix or remove the link\n")
    assert run("search", "tea").exit_code == 0
