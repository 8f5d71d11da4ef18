"""The conftest leak check itself: a real pytest run over tests that leak, with this suite's conftest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LEAKY = textwrap.dedent("""
    import threading
    import warnings

    release = threading.Event()

    def test_leaves_a_thread_running():
        threading.Thread(target=release.wait, name="forgotten-worker", daemon=True).start()

    def test_warns():
        warnings.warn("careless call", UserWarning)

    def test_warns_in_another_thread():
        t = threading.Thread(target=lambda: warnings.warn("from a worker", RuntimeWarning))
        t.start()
        t.join()

    def test_a_thread_still_stopping_is_waited_for():
        done = threading.Event()
        t = threading.Thread(target=done.wait, name="stopping")
        t.start()
        done.set()  # told to stop; it may still run when the test returns

    def test_clean():
        pass

    def test_zz_release():
        release.set()
""")


def test_the_leak_check_fails_tests_that_leak_threads_or_warnings(tmp_path):
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        # Its own --basetemp: by default the inner run would prune the outer runs' old temp
        # folders under /tmp/pytest-of-$USER (seconds to minutes of deleting vaults and indexes).
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE", "--rootdir", str(tmp_path),
         "--basetemp", str(tmp_path / "inner"), str(tmp_path / "test_leaky.py")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    errors = sorted(line.split("::")[1].split(" ")[0] for line in out.splitlines() if line.startswith("ERROR "))
    assert errors == ["test_leaves_a_thread_running", "test_warns", "test_warns_in_another_thread"], out
    assert "left a thread running: 'forgotten-worker'" in out
    assert "emitted UserWarning: careless call" in out
    assert "emitted RuntimeWarning: from a worker" in out
    assert "6 passed, 3 errors" in out
