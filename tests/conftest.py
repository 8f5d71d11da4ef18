"""Shared fixtures: every test gets its own per-device state folder and vaults."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mirrorfs.vault import Vault

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
SAMPLE_VAULT = REPO / "sample_vault"


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
