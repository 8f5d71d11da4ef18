"""Selective sync: which sessions a sync engine carries, from rules on their tags,
categories and instances (`mirrorfs sync-filter`).

mirrorfs does not sync anything itself; it writes the ignore file of the engine
in use, inside a block of its own (`mirrorfs.ignore_files`), so the person's
own patterns stay as they are:

* Syncthing: `.stignore` in the vault folder (per device: Syncthing never
  syncs it, so each device filters for itself);
* git: `.gitignore` (committed: every clone leaves the same sessions out).

Rules: `include` rules keep only the sessions that match one of them; `exclude`
rules leave out the sessions that match any of them (exclude wins). A rule
names a session tag, a category, or an instance (the session's folder,
`sessions/<instance>/`). Tags and categories are read from each session's front
matter when the filter is written, so the block lists session files one by
one; an excluded instance is one folder pattern, which also covers its
sessions to come. The rules are kept in the block's first line, so running
`mirrorfs sync-filter` again without rules brings the list up to date.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from mirrorfs import ignore_files
from mirrorfs import note as notes
from mirrorfs.conflict_names import is_conflict_copy
from mirrorfs.errors import InvalidValueError, MirrorfsError, UnreadableNoteError
from mirrorfs.gitsync import git
from mirrorfs.ignore import is_ignored_name
from mirrorfs.layout import SESSIONS_DIR

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

SYNCTHING = "syncthing"
GIT = "git"
ENGINES = (SYNCTHING, GIT)
IGNORE_FILES = {SYNCTHING: ".stignore", GIT: ".gitignore"}
COMMENTS = {SYNCTHING: "//", GIT: "#"}
BLOCK = "sync-filter"
COMMAND = "sync-filter"
RULES_PREFIX = "rules:"
# Characters both ignore syntaxes read as patterns; escaped with a backslash.
_SPECIAL = re.compile(r"([*?\[\]{}\\!#])")
KINDS = ("tag", "category", "instance")


@dataclass(frozen=True)
class Rules:
    """Include and exclude rules, each a tuple of names."""

    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    include_instances: tuple[str, ...] = ()
    exclude_instances: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())

    @property
    def includes(self) -> bool:
        return bool(self.include_tags or self.include_categories or self.include_instances)

    def to_args(self) -> str:
        """The rules as command-line options (what the block's first line keeps)."""
        parts = []
        for way in ("include", "exclude"):
            for kind, attr in zip(KINDS, ("tags", "categories", "instances")):
                parts += [f"--{way}-{kind} {shlex.quote(v)}" for v in getattr(self, f"{way}_{attr}")]
        return " ".join(parts)

    @classmethod
    def from_args(cls, text: str) -> "Rules":
        values: dict[str, list[str]] = {}
        words = shlex.split(text)
        for flag, value in zip(words[::2], words[1::2]):
            m = re.fullmatch(r"--(include|exclude)-(tag|category|instance)", flag)
            if not m:
                raise InvalidValueError(f"the sync-filter block holds an unknown rule {flag!r}; run sync-filter "
                                        "with the rules you want")
            attr = {"tag": "tags", "category": "categories", "instance": "instances"}[m.group(2)]
            values.setdefault(f"{m.group(1)}_{attr}", []).append(value)
        return cls(**{k: tuple(v) for k, v in values.items()})


@dataclass
class SessionFacts:
    path: str
    instance: str
    tags: frozenset[str]
    category: str | None

    def matches(self, tags: Iterable[str], categories: Iterable[str], instances: Iterable[str]) -> bool:
        lowered = {t.lower() for t in self.tags}
        return (bool(lowered & {t.lower().lstrip("#") for t in tags})
                or (self.category is not None and self.category.lower() in {c.lower() for c in categories})
                or self.instance in set(instances))


@dataclass
class FilterReport:
    """What `sync-filter` wrote (or would write)."""

    engine: str
    file: str
    rules: Rules
    excluded: list[str] = field(default_factory=list)  # session files left out
    folders: list[str] = field(default_factory=list)  # instance folders left out
    lines: list[str] = field(default_factory=list)  # the block's lines
    changed: bool = False
    tracked: list[str] = field(default_factory=list)  # git: excluded files already committed

    def to_dict(self) -> dict:
        return {**asdict(self), "rules": asdict(self.rules)}


def detect_engine(root: Path) -> str:
    """`syncthing` when the folder has Syncthing's `.stfolder`, `git` when it is in a git clone."""
    has_st, has_git = (root / ".stfolder").exists(), any((p / ".git").exists() for p in (root, *root.parents))
    if has_st and has_git:
        raise InvalidValueError("this vault is synced by Syncthing and in a git clone: name one with --engine")
    if has_st:
        return SYNCTHING
    if has_git:
        return GIT
    raise InvalidValueError("no sync engine found here (no .stfolder, no git clone): name one with --engine "
                            + "|".join(ENGINES))


def sessions(vault: "Vault") -> Iterator[SessionFacts]:
    """Tags, category and instance of every session file, read from its front matter."""
    folder = vault.root / SESSIONS_DIR
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*/*.md")):
        rel = path.relative_to(vault.root).as_posix()
        if is_ignored_name(path.name) or is_conflict_copy(rel):
            continue
        try:
            meta = notes.read_front_matter(path)
        except (UnreadableNoteError, OSError):
            meta = {}
        raw = meta.get("tags") if isinstance(meta, dict) else None
        tags = frozenset(str(t) for t in raw) if isinstance(raw, list) else frozenset(str(raw).split()) if raw else frozenset()
        category = meta.get("category") if isinstance(meta, dict) else None
        yield SessionFacts(rel, path.parent.name, tags, None if category is None else str(category))


def _escape(path: str) -> str:
    return _SPECIAL.sub(r"\\\1", path)


def plan(rules: Rules, facts: Iterable[SessionFacts], engine: str) -> FilterReport:
    """What the block holds for *rules*, given the sessions' *facts* (pure)."""
    report = FilterReport(engine, IGNORE_FILES[engine], rules)
    report.folders = sorted(set(rules.exclude_instances))
    for s in facts:
        if s.instance in report.folders:
            continue
        keep = (not rules.includes
                or s.matches(rules.include_tags, rules.include_categories, rules.include_instances))
        if not keep or s.matches(rules.exclude_tags, rules.exclude_categories, ()):
            report.excluded.append(s.path)
    if rules.empty:
        return report
    comment = COMMENTS[engine]
    lines = [f"{comment} {RULES_PREFIX} {rules.to_args()}"]
    slash = "/" if engine == GIT else ""  # a folder pattern in .gitignore ends with /; Syncthing needs none
    lines += [f"/{_escape(SESSIONS_DIR + '/' + name)}{slash}" for name in report.folders]
    lines += [f"/{_escape(path)}" for path in report.excluded]
    report.lines = lines
    return report


def current_rules(vault: "Vault", engine: str) -> Rules:
    """The rules kept in the block of the engine's ignore file (empty without a block)."""
    lines = ignore_files.read_block(vault.root / IGNORE_FILES[engine], BLOCK, COMMENTS[engine]) or []
    head = f"{COMMENTS[engine]} {RULES_PREFIX}"
    for line in lines:
        if line.startswith(head):
            return Rules.from_args(line[len(head):])
    return Rules()


def apply(vault: "Vault", rules: Rules | None = None, engine: str | None = None, dry_run: bool = False,
          clear: bool = False) -> FilterReport:
    """Write the filter block for *rules* (None: the rules already in the block, brought up to date)."""
    engine = engine or detect_engine(vault.root)
    if engine not in ENGINES:
        raise InvalidValueError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if clear:
        rules = Rules()
    elif rules is None or rules.empty:
        rules = current_rules(vault, engine)
        if rules.empty:
            raise InvalidValueError("give at least one rule (e.g. --exclude-tag private), or --clear")
    report = plan(rules, sessions(vault), engine)
    if not dry_run:
        report.changed = ignore_files.write_block(vault.store, vault.root / report.file, BLOCK, report.lines,
                                                  COMMAND, COMMENTS[engine])
    if engine == GIT and report.excluded:
        report.tracked = _tracked(vault, report.excluded)
    return report


def _tracked(vault: "Vault", paths: list[str]) -> list[str]:
    """Which of *paths* git already tracks (ignoring does not untrack them)."""
    try:
        out = git(vault.root, "ls-files", "-z", "--", *paths)
    except MirrorfsError:
        return []
    return sorted(p for p in out.split("\0") if p)
