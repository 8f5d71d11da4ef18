"""Real editors and file tools driven non-interactively, for the watcher's save-pattern tests.

Each function saves a note the way the real program does; none emulates it. A
missing program fails the test with the Debian package to install, never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Debian package that provides each program the tests run.
PACKAGES = {"vim": "vim", "emacs": "emacs-nox", "rsync": "rsync", "sed": "sed", "cp": "coreutils"}


def require(program: str) -> str:
    """The program's path, or a test failure naming the package to install."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed; the watcher's save-pattern tests run the real program: "
            f"apt-get install -y {PACKAGES.get(program, program)}",
            pytrace=False,
        )
    return path


def editor_folder() -> Path:
    """A fresh folder where vim and emacs save the way they do in a user's vault.

    Both editors skip their backup (and so write in place) under the temp dir:
    vim's 'backupskip' covers /tmp and $TMPDIR, emacs's backup predicate covers
    temporary-file-directory. So the folder must be outside both.
    """
    temp_dirs = {Path("/tmp").resolve(), Path(tempfile.gettempdir()).resolve()}
    for var in ("TMPDIR", "TMP", "TEMP"):
        if os.environ.get(var):
            temp_dirs.add(Path(os.environ[var]).resolve())
    for candidate in (Path("/var/tmp"), Path.home() / ".cache"):
        candidate = candidate.resolve()
        if any(candidate == t or t in candidate.parents for t in temp_dirs):
            continue
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="mirrorfs-editor-", dir=candidate))
        except OSError:
            continue
    pytest.fail("no writable folder outside the temp dir for the editor tests (tried /var/tmp, ~/.cache)")


def _run(args: list[str], **kwargs) -> None:
    result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")


def vim_substitute(path: Path, old: str, new: str, *, compatible: bool = False) -> None:
    """Edit with real vim in silent Ex mode and write with ':wq'.

    With -N (what every vimrc gives) vim's default 'backupcopy=auto' renames the
    note away to note.md~, writes a new note.md and deletes the backup. In
    Vi-compatible mode ('backupcopy=yes') it copies the note to note.md~ and
    overwrites the note in place.
    """
    args = [require("vim"), "-u", "NONE", "-i", "NONE", "-es"]
    if not compatible:
        args.insert(1, "-N")
    _run(args + ["-c", f"%s/{old}/{new}/", "-c", "wq", str(path)])


def emacs_append(path: Path, text: str) -> None:
    """Append with real emacs in batch mode and save: it renames the note to note.md~ first."""
    lisp = f'(progn (goto-char (point-max)) (insert {_elisp_string(text)}) (save-buffer))'
    _run([require("emacs"), "--batch", "-Q", str(path), "--eval", lisp])


def _elisp_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sed_in_place(path: Path, expression: str) -> None:
    """GNU sed -i: writes a temp file sedXXXXXX beside the note, then renames it onto the note."""
    _run([require("sed"), "-i", expression, str(path)])


def cp(src: Path, dest: Path, *, recursive: bool = False) -> None:
    """coreutils cp: over an existing file it truncates and writes in place."""
    _run([require("cp")] + (["-r"] if recursive else []) + [str(src), str(dest)])


def rsync_inplace(src: Path, dest: Path) -> None:
    """rsync --inplace: rewrites the destination's changed blocks in place."""
    _run([require("rsync"), "--inplace", "--no-whole-file", str(src), str(dest)])
