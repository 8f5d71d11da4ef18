"""Shared fixtures: every test gets its own per-device state folder and vaults, and is checked for leaks."""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import threading
import time
import warnings
from pathlib import Path

import pytest

from mirrorfs import observe
from mirrorfs.vault import Vault

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
SAMPLE_VAULT = REPO / "sample_vault"


# How long threads a test started may take to finish after it (a stopped
# watcher's observer, a server's last handler); anything still alive then leaked.
THREAD_JOIN_WAIT = 2.0


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves a thread running or emits a Python warning.

    Set up before, and torn down after, every other fixture of the test, so
    their cleanup counts. Warnings are recorded from every thread (the warning
    filters are process-wide), so a watcher's or watchdog's warning counts too.
    A test's own `@pytest.mark.filterwarnings("ignore::Category")` is honoured:
    a warning a test expects and names is not a leak.
    """
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # What mirrorfs silences on purpose (a benign watchdog warning) stays silent.
        observe.quiet_warnings()
        for mark in request.node.iter_markers("filterwarnings"):
            for spec in mark.args:
                _apply_filter(spec)
        yield
        # Files and sockets a test dropped inside reference cycles warn only when
        # collected: collect now, so the warning names this test, not a later one.
        gc.collect()
    deadline = time.monotonic() + THREAD_JOIN_WAIT
    leaked = []
    for thread in threading.enumerate():
        if thread in before or isinstance(thread, threading._DummyThread):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaked.append(thread)
    problems = [f"left a thread running: {t.name!r} ({type(t).__module__}.{type(t).__qualname__}"
                f"{', daemon' if t.daemon else ''})" for t in leaked]
    problems += [f"emitted {w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    if problems:
        pytest.fail("this test " + "; ".join(problems), pytrace=False)


def close_pipes(proc, *readers: threading.Thread, timeout: float = 30) -> None:
    """After *proc* ended: let the threads reading its output reach end of file, then close its pipes."""
    proc.wait(timeout)
    for thread in readers:
        thread.join(timeout)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _apply_filter(spec: str) -> None:
    """A warnings filter in pytest's `action:message:category:module:lineno` form."""
    action, message, category, module, lineno = (spec.split(":") + [""] * 5)[:5]
    cls: type[Warning] = Warning
    if category:
        module_name, _, name = category.rpartition(".")
        cls = getattr(importlib.import_module(module_name or "builtins"), name)
    warnings.filterwarnings(action, message=message, category=cls, module=module, lineno=int(lineno or 0))


@pytest.fixture
def clock():
    """A fake monotonic clock for the watcher's pure parts: call it for now, `advance` it by hand."""
    return FakeClock()


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """Point all per-device state at a temp folder, and forget ambient settings."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MIRRORFS_STATE_DIR", str(path))
    # Per-device provider configuration too: no test may read this machine's providers.yaml or keys.
    monkeypatch.setenv("MIRRORFS_CONFIG_DIR", str(path / "config"))
    for name in ("MIRRORFS_VAULT", "MIRRORFS_INSTANCE", "MIRRORFS_PASSPHRASE", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                 "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def vault(tmp_path) -> Vault:
    """A fresh vault opened as instance `laptop`."""
    return Vault.init(tmp_path / "vault", name="Mira", instance="laptop")


@pytest.fixture
def corpora(tmp_path) -> Path:
    """A writable copy of the shared real-world corpora."""
    if not CORPORA.is_dir():
        pytest.fail(f"the shared corpora are missing at {CORPORA}: CI checks out ../shared beside the repo")
    target = tmp_path / "corpora"
    shutil.copytree(CORPORA, target)
    return target


@pytest.fixture
def sample_vault(tmp_path) -> Path:
    """A writable copy of sample_vault/."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_VAULT, target)
    return target


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every file's bytes under *root*, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): os.stat(p).st_mtime_ns for p in root.rglob("*") if p.is_file()}
