"""A vault synced with git: `mirrorfs git setup` registers the mirrorfs merge driver.

Obsidian users often sync a vault with git (the Obsidian Git plugin commits,
pulls and pushes on a timer). Two clones that changed the same note meet in a
merge; without help git leaves `<<<<<<<` markers in the note. Setup makes
git merge notes the way mirrorfs merges sync-conflict copies
(`mirrorfs.gitdriver`), in two places, because git keeps them in two:

* `.gitattributes` in the vault folder (committed, so every clone has it): a
  block `*.md merge=mirrorfs` that names the driver for every note;
* the clone's `.git/config` (never committed, so each clone runs setup once):
  `merge.mirrorfs.driver`, the command git runs, with this device's Python.
  A clone that has the attribute but not the command merges as git always
  does (markers), which mirrorfs recognises (`mirrorfs conflicts list`).

It also writes a block of ignore patterns into `.gitignore`: the temporaries
editors and sync tools leave in a folder. Nothing per-device lives in the
vault (the index, locks, cursors and last-seen versions are in the state
folder outside it), so nothing of mirrorfs's needs ignoring; its trash and
open-conflict records under `.mirrorfs/` are meant to be committed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mirrorfs import ignore_files
from mirrorfs.errors import SyncEngineError
from mirrorfs.gitdriver import DRIVER
from mirrorfs.ignore import IGNORED_FILE_PATTERNS

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

ATTRIBUTES = ".gitattributes"
GITIGNORE = ".gitignore"
BLOCK = "git-setup"
COMMAND = "git setup"
ATTRIBUTE_LINES = [f"*.md merge={DRIVER}"]
# Temporaries of editors, sync tools and mirrorfs itself (the ones mirrorfs.ignore
# never reads as notes; `*.backup` may be a person's own file, so it is kept), and
# Obsidian's per-device window layout.
IGNORE_LINES = [p for p in IGNORED_FILE_PATTERNS if p != "*.backup"] + [
    "sed??????",
    ".obsidian/workspace.json",
    ".obsidian/workspace-mobile.json",
]
DRIVER_NAME = "mirrorfs: sessions as the union of messages, cards by each instance's latest, notes three ways"


def git(root: str | os.PathLike, *args: str, check: bool = True) -> str:
    """Run `git -C root ARGS`; its stdout. SyncEngineError with git's message when it fails."""
    if shutil.which("git") is None:
        raise SyncEngineError("git is not installed (or not on PATH); install git first")
    done = subprocess.run(["git", "-C", os.fspath(root), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SyncEngineError(f"git {' '.join(args)}: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout


def work_tree(root: str | os.PathLike) -> Path:
    """The top of the git work tree holding the vault folder *root*."""
    try:
        return Path(git(root, "rev-parse", "--show-toplevel").strip())
    except SyncEngineError:
        raise SyncEngineError(f"{root} is not inside a git clone; run `git init` or `git clone` first") from None


def driver_command(python: str | None = None) -> str:
    """The command git runs to merge a note (with this device's Python, which has mirrorfs)."""
    return f"{shlex.quote(python or sys.executable)} -m mirrorfs.gitdriver %O %A %B %P"


@dataclass
class GitSetup:
    """What `mirrorfs git setup` found and changed."""

    work_tree: str
    driver: str
    changed: list[str] = field(default_factory=list)  # files and settings written
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"work_tree": self.work_tree, "driver": self.driver, "changed": self.changed, "advice": self.advice}


def setup(vault: "Vault", ignore: bool = True, python: str | None = None) -> GitSetup:
    """Register the mirrorfs merge driver for the vault's clone (see the module docstring)."""
    top = work_tree(vault.root)
    command = driver_command(python)
    report = GitSetup(str(top), command)
    if ignore_files.write_block(vault.store, vault.root / ATTRIBUTES, BLOCK, ATTRIBUTE_LINES, COMMAND):
        report.changed.append(ATTRIBUTES)
    settings = {
        f"merge.{DRIVER}.name": DRIVER_NAME,
        f"merge.{DRIVER}.driver": command,
        # Inner merges of a criss-cross history build a virtual base: git's own text merge does.
        f"merge.{DRIVER}.recursive": "text",
    }
    for key, value in settings.items():
        if git(vault.root, "config", "--local", "--get", key, check=False).strip() != value:
            git(vault.root, "config", "--local", key, value)
            report.changed.append(f".git/config {key}")
    if ignore and ignore_files.write_block(vault.store, vault.root / GITIGNORE, BLOCK, IGNORE_LINES, COMMAND):
        report.changed.append(GITIGNORE)
    report.advice = [
        f"commit {ATTRIBUTES} (and {GITIGNORE}) so every clone merges notes alike; "
        "run `mirrorfs git setup` once in every clone (the command lives in its .git/config)",
        "commit .mirrorfs/ too: config.yaml, the trash and the open-conflict records are shared by design; "
        "nothing per-device is in the vault",
        "commit with `git add -A` (as Obsidian Git does) so a conflict copy the driver keeps reaches the "
        "other clones",
    ]
    return report


def is_set_up(vault: "Vault") -> bool:
    """True when this clone has the driver command and the vault names it for notes."""
    lines = ignore_files.read_block(vault.root / ATTRIBUTES, BLOCK) or []
    command = git(vault.root, "config", "--local", "--get", f"merge.{DRIVER}.driver", check=False).strip()
    return bool(command) and ATTRIBUTE_LINES[0] in lines
