"""The git merge driver of mirrorfs: `python -m mirrorfs.gitdriver %O %A %B %P`.

`mirrorfs git setup` registers it for every note (`*.md merge=mirrorfs` in
`.gitattributes`, the command in the clone's `.git/config`); git runs it for a
note that both sides of a merge changed, with the common version (%O), ours
(%A, where the result goes), theirs (%B) and the note's path (%P). It uses the
same merges as the sync-conflict merger (`mirrorfs.merge`), with git's common
version as the base:

* a session: the union of both sides' messages by id, ordered by time;
* an instance card: each instance's own latest card (`merge._plan_card`);
* any other note: three ways, front matter key by key, body line by line.

When the merge is not certain (the same line changed on both sides) the note
keeps our version, and theirs is written beside it as a conflict copy,
`<name>.git-conflict-<YYYYMMDD>-<HHMMSS>-<hex7>.md`, exactly as a sync tool
keeps both versions: the note stays readable in Obsidian (no `<<<<<<<`
markers), the conflict is recorded in `.mirrorfs/conflicts/` and listed by
`mirrorfs conflicts list` on every clone once committed, and `mirrorfs
conflicts resolve` settles it. The vault's `conflict_strategy` applies too:
`latest` keeps the newer side (the other goes to the vault's trash), `manual`
merges nothing (ours stays, theirs becomes a copy).

The driver exits 0 whenever it wrote a result, so a pull never stops half way;
nothing is lost, because both versions stay in git's history and a clash keeps
the other version as a file. If it fails unexpectedly it falls back to git's
own `git merge-file` (markers, exit 1), which mirrorfs recognises too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mirrorfs import conflict_records, conflict_strategy, storage, trash
from mirrorfs.clock import now as local_now
from mirrorfs.clock import timestamp
from mirrorfs.conflict_names import GIT, git_copy_name
from mirrorfs.errors import MirrorfsError
from mirrorfs.layout import CONFIG_FILE
from mirrorfs.merge import KEPT_BOTH, MERGED, plan_merge
from mirrorfs.vault import Vault

USAGE = "usage: python -m mirrorfs.gitdriver BASE OURS THEIRS PATH [MARKER_SIZE]"
DRIVER = "mirrorfs"  # the driver's name in .gitattributes and .git/config


@dataclass
class Outcome:
    """What the driver does with one note: the result for %A, and the other side to keep beside it."""

    data: bytes  # the note's merged bytes (git's %A)
    status: str  # merged | kept_both | needs_person | kept_latest
    reason: str
    conflict: str | None = None
    copy: bytes | None = None  # theirs, kept as a conflict copy beside the note
    replaced: bytes | None = None  # ours, put in the trash (strategy latest)


def decide(base: bytes | None, ours: bytes, theirs: bytes, relpath: str,
           strategy: str = conflict_strategy.DEFAULT) -> Outcome:
    """The driver's decision for one note (pure: bytes in, bytes out)."""
    if ours == theirs:
        return Outcome(ours, MERGED, "both sides are the same")
    if strategy == conflict_strategy.MANUAL:
        return Outcome(ours, "needs_person", "the conflict strategy is manual: a person settles every copy",
                       conflict="manual", copy=theirs)
    if strategy == conflict_strategy.LATEST:
        if conflict_strategy.newer_side(ours, theirs) == "theirs":
            return Outcome(theirs, "kept_latest", "kept the newer side (theirs)", replaced=ours)
        return Outcome(ours, "kept_latest", "kept the newer side (ours)", replaced=theirs)
    plan = plan_merge(ours, theirs, [base] if base else [], relpath, "the other side of the git merge")
    if plan.status == MERGED and plan.data is not None:
        return Outcome(plan.data, MERGED, plan.reason)
    # Not certain: ours (with the other side's new messages, for a session) stays,
    # theirs is kept beside it for a person.
    data = plan.data if plan.status == KEPT_BOTH and plan.data is not None else ours
    return Outcome(data, plan.status, plan.reason, conflict=plan.conflict, copy=theirs)


def find_vault(path: Path) -> Path | None:
    """The vault folder holding *path*: the nearest folder above it with .mirrorfs/config.yaml."""
    for folder in path.parents:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def _keep(root: Path, relpath: str, outcome: Outcome) -> None:
    """Write the other side as a conflict copy, or the replaced side to the trash, and record it."""
    vault = Vault.open(root)
    when = local_now().replace(tzinfo=None, microsecond=0)
    if outcome.replaced is not None:
        trash.put(vault, relpath, outcome.replaced,
                  entry=trash.merge_entry(relpath, storage.sha256(outcome.replaced), when))
        return
    assert outcome.copy is not None
    sha = storage.sha256(outcome.copy)
    copy = git_copy_name(relpath, sha, when)
    try:
        vault.store.create(root / copy, outcome.copy)
    except MirrorfsError:
        if storage.read(root / copy).data != outcome.copy:
            raise
    conflict_records.record(vault.store, root, conflict_records.OpenConflict(
        copy=copy, original=relpath, tool=GIT, device=sha[:7], time=when.isoformat(), status=outcome.status,
        conflict=outcome.conflict, reason=f"git merge: {outcome.reason}", detected=timestamp().isoformat(),
        detected_by=vault.instance, copy_sha256=sha,
    ))


def run(base_path: str, ours_path: str, theirs_path: str, relpath: str, cwd: Path | None = None) -> int:
    """Merge the three files git hands over; the result replaces *ours_path*. Returns the exit status."""
    worktree = Path(cwd or os.getcwd())
    full = (worktree / relpath).resolve()
    root = find_vault(full)
    ours = Path(ours_path).read_bytes()
    theirs = Path(theirs_path).read_bytes()
    base = Path(base_path).read_bytes() or None  # an add/add conflict has an empty base
    if root is None:
        return _merge_file(base_path, ours_path, theirs_path)  # not a vault's note: git's own merge
    rel = full.relative_to(root).as_posix()
    try:
        strategy = conflict_strategy.current(root)
    except MirrorfsError:
        strategy = conflict_strategy.MANUAL  # a broken setting: merge nothing, keep both
    outcome = decide(base, ours, theirs, rel, strategy)
    if outcome.copy is not None or outcome.replaced is not None:
        _keep(root, rel, outcome)
    Path(ours_path).write_bytes(outcome.data)
    return 0


def _merge_file(base_path: str, ours_path: str, theirs_path: str) -> int:
    """git's own three-way merge into *ours_path* (markers where it clashes); its exit status."""
    done = subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
                           ours_path, base_path, theirs_path], stdin=subprocess.DEVNULL)
    return 1 if done.returncode else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (4, 5):
        print(USAGE, file=sys.stderr)
        return 2
    base_path, ours_path, theirs_path, relpath = args[:4]
    try:
        return run(base_path, ours_path, theirs_path, relpath)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, git's own merge keeps both sides
        print(f"mirrorfs merge driver: {relpath}: {exc}; using git's own merge (conflict markers)", file=sys.stderr)
        return _merge_file(base_path, ours_path, theirs_path)


if __name__ == "__main__":
    sys.exit(main())
