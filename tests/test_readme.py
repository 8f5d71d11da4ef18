"""The README's tour, as a new user types it: every `$ ` line of its console blocks runs, in
order, in a fresh HOME, and exits 0 (a `watch` line only has to stay alive)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A session id as the README spells one; the id `session new` printed stands in for it.
SESSION_ID = re.compile(r"\b\d{4}-\d\d-\d\d-[a-z0-9-]+-[0-9a-f]{4}\b")


def console_lines(readme: str) -> list[str]:
    """The commands of the README's ```console blocks, in order, without their comments."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            m = re.match(r"^(?:\w+)?\$ (.*)$", line)
            if m:
                out.append(re.sub(r"\s+#\s.*$", "", m.group(1)).strip())
    return out


def _run(cmd: str, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_every_console_line_of_the_readme_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home", numbered=True)
    home = Path(os.path.realpath(home))
    env = dict(os.environ, HOME=str(home), MIRRORFS_STATE_DIR=str(home / ".state"), EDITOR="true", VISUAL="true")
    for name in ("MIRRORFS_VAULT", "MIRRORFS_INSTANCE", "MIRRORFS_PASSPHRASE"):
        env.pop(name, None)
    lines = console_lines((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(lines) > 20
    cwd, session_id, failures = home, None, []
    for cmd in lines:
        if cmd.startswith("cd "):
            cwd = Path(os.path.expanduser(cmd[3:].strip().replace("~", str(home), 1)))
            continue
        if not cmd.startswith(("mirrorfs", "echo", "cat")):
            continue
        cmd = cmd.replace("~/", f"{home}/")
        if session_id:
            cmd = SESSION_ID.sub(session_id, cmd)
        watching = re.search(r"\bwatch\b", cmd) is not None
        try:
            done = _run(cmd, cwd, env, timeout=8 if watching else 120)
        except subprocess.TimeoutExpired:
            if not watching:  # a watcher runs until stopped: alive after the timeout is right
                failures.append(f"{cmd}: timed out")
            continue
        if "session new" in cmd and done.returncode == 0 and done.stdout.split():
            session_id = done.stdout.split()[-1]
        if done.returncode != 0:
            failures.append(f"{cmd}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    if failures:
        pytest.fail("README console lines that fail:\n" + "\n".join(failures))
