"""What the import tests share: fixture paths, a vault's bytes, and reading imported sessions back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mirrorfs import messages as msgs
from mirrorfs import note as notes

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def vault_bytes(root: Path) -> dict[str, str]:
    """SHA-256 and mtime of every file of a vault, by relative path."""
    return {
        p.relative_to(root).as_posix(): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {os.stat(p).st_mtime_ns}"
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def imported(root: Path, instance: str = "import") -> dict[str, tuple[dict, list[msgs.Message], str]]:
    """origin_id -> (front matter, messages, preamble) of every session under sessions/<instance>/."""
    out = {}
    for path in sorted((root / "sessions" / instance).glob("*.md")):
        note = notes.parse(path.read_bytes(), path.name)
        assert note.error is None, (path, note.error)
        preamble, messages = msgs.parse(note.body)
        out[str(note.meta["origin_id"])] = (note.meta, messages, preamble)
    return out


def write_secret_file(path: Path, text: str) -> Path:
    """A password or passphrase file only its owner can read (as the CLI expects)."""
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path
