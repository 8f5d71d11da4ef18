"""`mirrorfs watch` end to end on one machine: real observer, real index, real socket."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import close_pipes

from mirrorfs import search, server
from mirrorfs.daemon import AlreadyWatchingError, WatchDaemon, read_status
from mirrorfs.vault import Vault

TIMEOUT = 20


def wait_for(q: queue.Queue, predicate, timeout: float = TIMEOUT):
    """Take lines from *q* until one satisfies *predicate*; fail after *timeout*."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out; saw {seen}")
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            pytest.fail(f"timed out; saw {seen}")
        seen.append(item)
        if predicate(item):
            return item


@pytest.fixture
def daemon(vault):
    lines: queue.Queue = queue.Queue()
    d = WatchDaemon(vault, echo=lines.put, warn=lambda w: lines.put(f"warning: {w}"))
    d.lines = lines
    d.start()
    assert d.wait_ready(TIMEOUT)
    yield d
    d.stop()


def test_a_memory_written_by_another_instance_is_reflected_and_searchable(daemon, vault):
    phone = Vault.open(vault.root, instance="phone")
    phone.remember("Sam prefers oolong tea", title="Prefers tea")
    line = wait_for(daemon.lines, lambda l: "added memory" in l)
    assert line == 'phone added memory "Prefers tea" (memory/prefers-tea.md)'
    remote = server.ask(vault.state_dir, "search", {"query": "oolong"})
    local = search.search(Vault.open(vault.root, instance="laptop"), "oolong")
    assert [h["path"] for h in remote["hits"]] == ["memory/prefers-tea.md"]
    assert remote["hits"] == [h.to_dict() for h in local]


def test_own_writes_are_not_reflected_but_are_indexed(daemon, vault):
    batches: queue.Queue = queue.Queue()
    daemon.on_batch = batches.put
    vault.remember("Unique zanzibar word", title="Zanzibar")
    wait_for(batches, lambda b: any(c.path == "memory/zanzibar.md" for c in b))
    assert [h["path"] for h in server.ask(vault.state_dir, "search", {"query": "zanzibar"})["hits"]] == [
        "memory/zanzibar.md"
    ]
    assert daemon.lines.empty()


def test_a_malformed_query_through_the_watcher_is_the_same_one_line_error(daemon, vault):
    from click.testing import CliRunner

    from mirrorfs.cli import cli
    from mirrorfs.errors import QueryError

    with pytest.raises(QueryError, match="unbalanced quote"):
        server.ask(vault.state_dir, "search", {"query": '"unclosed phrase'})
    r = CliRunner().invoke(cli, ["--vault", str(vault.root), "search", '"unclosed phrase'])
    assert r.exit_code == 1 and daemon.requests.get("search") == 2  # the CLI asked the watcher too
    assert len(r.output.strip().splitlines()) == 1 and "unbalanced quote" in r.output


def test_a_second_watcher_refuses_to_start(daemon, vault):
    with pytest.raises(AlreadyWatchingError, match="already runs"):
        WatchDaemon(Vault.open(vault.root, instance="laptop"), echo=lambda l: None).start()


def test_status_reports_the_running_watcher(daemon, vault):
    status = read_status(vault)
    assert status["running"] is True and status["pid"] == os.getpid()
    assert status["instance"] == "laptop"
    assert oct(os.stat(server.socket_path(vault.state_dir)).st_mode & 0o777) == "0o600"


def test_session_conflict_copy_is_merged(daemon, vault):
    s = vault.sessions.create("Chat")
    s.add_message("user", "one")
    base = s.path.read_bytes()
    s.add_message("assistant", "two on laptop")
    other = Vault.open(vault.root, instance="laptop")
    # The losing side's version, as Syncthing would leave it beside the note.
    copy = s.path.with_name(s.path.stem + ".sync-conflict-20261121-100412-ABCDEFG.md")
    from mirrorfs import messages, note

    parsed = note.parse(base)
    extra = messages.make("user", "three from phone", "phone")
    copy.write_bytes(parsed.with_body(parsed.body + messages.render(extra)).render())
    wait_for(daemon.lines, lambda l: "conflict" in l)
    contents = [m.content for m in other.sessions.load(s.id).get_messages()]
    assert sorted(contents) == ["one", "three from phone", "two on laptop"]
    assert not copy.exists()


def test_exec_hook_gets_the_reflection(vault, tmp_path):
    out = tmp_path / "hook.txt"
    lines: queue.Queue = queue.Queue()
    d = WatchDaemon(vault, echo=lines.put, exec_cmd=f'printf "%s\\n" "$MIRRORFS_LINE" >> {out}')
    d.start()
    try:
        assert d.wait_ready(TIMEOUT)
        Vault.open(vault.root, instance="phone").remember("Hook test", title="Hook")
        wait_for(lines, lambda l: "Hook" in l)
    finally:
        d.stop()
    assert out.read_text() == 'phone added memory "Hook" (memory/hook.md)\n'


def test_watch_command_runs_and_stops_cleanly_on_sigterm(vault, state_dir):
    env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "--instance", "laptop", "watch"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True)
    reader.start()
    try:
        wait_for(lines, lambda l: l.startswith("watching "))
        Vault.open(vault.root, instance="phone").remember("From the phone", title="Phone note")
        wait_for(lines, lambda l: l == 'phone added memory "Phone note" (memory/phone-note.md)')
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "status", "--json"],
            capture_output=True, text=True, env=env, check=True).stdout)
        assert status["running"] is True and status["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    wait_for(lines, lambda l: l == "watcher stopped")
    close_pipes(proc, reader)
    assert read_status(vault)["running"] is False
    card = Vault.open(vault.root, instance="laptop").instances.get("laptop")
    assert card.meta["status"] == "idle"


def test_cli_search_goes_through_the_watcher_with_identical_results(vault, state_dir):
    from click.testing import CliRunner

    from mirrorfs.cli import cli

    vault.remember("Sam keeps a sourdough starter called Clint", title="Sourdough")
    s = vault.sessions.create("Baking")
    s.add_message("user", "How often should I feed the sourdough starter?")
    args = ["--vault", str(vault.root), "search", "sourdough"]
    d = WatchDaemon(Vault.open(vault.root, instance="laptop"), echo=lambda l: None)
    d.start()
    try:
        assert d.wait_ready(TIMEOUT)
        through = json.loads(CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False).output)
        text = CliRunner().invoke(cli, args, catch_exceptions=False).output
        assert d.requests.get("search") == 2  # both CLI runs were answered by the watcher
        local = [h.to_dict() for h in search.search(Vault.open(vault.root, instance="laptop"), "sourdough")]
    finally:
        d.stop()
    assert through == local
    assert sorted(h["path"] for h in through) == sorted([s.relpath, "memory/sourdough.md"])
    assert "memory/sourdough.md  [memory] Sourdough" in text
    # Without a watcher the CLI answers itself, with the same hits.
    alone = json.loads(CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False).output)
    assert [h["path"] for h in alone] == [h["path"] for h in through]


def test_a_query_during_the_first_index_answers_at_once_with_its_progress(tmp_path, state_dir):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import generate

    from mirrorfs import watch_client

    root = tmp_path / "big"
    manifest = generate.generate(root, **generate.SIZES["small"], seed=5)
    word, where = next(iter(sorted(manifest.items())))
    env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorfs", "--vault", str(root), "--instance", "laptop", "watch"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True)
    reader.start()
    vault_state = Vault.open(root, instance="tester").state_dir
    during, after = [], None
    try:
        deadline = time.monotonic() + 120
        while after is None:
            assert time.monotonic() < deadline, (during, list(lines.queue))
            try:
                # Each answer comes at once (the client gives up after 5 s, not the 30 s default).
                reply = watch_client.ask(vault_state, "search", {"query": word}, timeout=5)
            except ConnectionError:
                continue  # the watcher is not listening yet
            building = [w for w in reply["warnings"] if w.startswith("the first index is still being built")]
            if building:
                assert reply["stale"] is True
                during.append((building[0], [h["path"] for h in reply["hits"]]))
            else:
                after = reply
        assert during, "the first index was done before any query landed: use a bigger vault"
        # Marked incomplete, with how far the build is; nothing found yet that is wrong.
        assert any(re.search(r"\(\d[\d,]* of [\d,]+ files\)", w) for w, _ in during), sorted({w for w, _ in during})
        assert all(paths in ([], [where["path"]]) for _, paths in during), during
        assert [h["path"] for h in after["hits"]] == [where["path"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        close_pipes(proc, reader)
    assert not any("Traceback" in line for line in lines.queue)


def test_a_look_since_a_time_is_answered_by_the_watcher_as_it_would_be_here(daemon, vault):
    from mirrorfs.reflections import vault_reflections

    phone = Vault.open(vault.root, instance="phone")
    phone.remember("Sam prefers oolong tea", title="Prefers tea")
    wait_for(daemon.lines, lambda l: "added memory" in l)
    before = daemon.requests.get("reflections", 0)
    served = vault.reflections(since="1d")
    assert daemon.requests["reflections"] == before + 1
    here = vault_reflections(vault, since="1d")
    assert [r.to_dict() for r in served] == [r.to_dict() for r in here]
    assert 'phone added memory "Prefers tea" (memory/prefers-tea.md)' in [r.line() for r in served]
    # Only notes the watcher saw modified since then are read: a week-old cutoff lists them all,
    # a cutoff in the future none.
    known = daemon._watcher.modified_since(time.time() + 3600)
    assert known == []
    assert "memory/prefers-tea.md" in daemon._watcher.modified_since(time.time() - 7 * 86400)
