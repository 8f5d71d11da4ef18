"""Reflective patterns as Markdown notes: `patterns/<name>.md` in the vault, or a built-in.

A pattern note has front matter ``type: pattern`` (or none), ``name`` (else the
file name), ``glyph``, ``style`` — at least one of these three, which tells a
reflective pattern from other notes a person keeps in patterns/ — optionally ``title``, ``compose_with`` (patterns
to run after it when it is chosen alone) and ``cues`` (words and phrases that
make `suggest` pick it); its body is the instruction template, where
``{{name}}`` (the AI's name), ``{{glyph}}`` and ``{{style}}`` are filled in.
The four built-ins (exploratory ◊, analytical ✦, creative ★, strategic ⬢)
ship in ``templates/patterns/`` and are used when the vault has no pattern of
that name: a person overrides one, or adds a new one, by saving a file.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs import note as notes
from mirrorfs.errors import InvalidValueError, MirrorfsError, NotFoundError
from mirrorfs.layout import PATTERNS_DIR
from mirrorfs.markers import GLYPHS
from mirrorfs.slug import slugify
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

BUILTIN = ("exploratory", "analytical", "creative", "strategic")
DEFAULT = "exploratory"
AUTO = "auto"

CONVENTIONS = (
    "How to write your reflection:\n"
    "{start}"
    "- Mark uncertainty where it applies: ⟨low⟩ (adjust), ⟨medium⟩ (gather more information), ⟨⟨high⟩⟩ "
    "(experiment first); no marker means you are confident enough to act.\n"
    "- ◈ marks what matters most, ⬡ a question worth asking."
)


@dataclass(frozen=True)
class Pattern:
    """One reflective pattern. ``path`` is its note in the vault (None for a built-in)."""

    name: str
    title: str
    glyph: str
    style: str
    template: str
    compose_with: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    path: str | None = None
    sha256: str = ""
    overrides: bool = False  # a vault note that replaces the built-in of the same name

    @property
    def builtin(self) -> bool:
        return self.path is None

    @property
    def source(self) -> str:
        return self.path or f"built-in (templates/patterns/{self.name}.md)"

    def to_dict(self, template: bool = False) -> dict[str, Any]:
        data = {"name": self.name, "title": self.title, "glyph": self.glyph, "style": self.style,
                "compose_with": list(self.compose_with), "cues": list(self.cues), "path": self.path,
                "builtin": self.builtin, "overrides_builtin": self.overrides, "source": self.source,
                "sha256": self.sha256}
        if template:
            data["template"] = self.template
        return data


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else re.split(r"[,\n]", str(value))
    return tuple(s for s in (str(v).strip() for v in items) if s)


def _from_note(data: bytes, relpath: str | None, stem: str) -> Pattern | None:
    note = notes.parse(data, relpath or stem)
    if note.error:
        raise InvalidValueError(f"{relpath}: cannot parse front matter: {note.error}")
    meta = note.meta
    if meta.get("type") not in (None, "pattern"):
        return None
    name = slugify(str(meta.get("name") or stem), 64)
    body = note.body.strip()
    title = str(meta.get("title") or name.replace("-", " ").capitalize())
    return Pattern(name=name, title=title, glyph=str(meta.get("glyph") or "").strip(),
                   style=str(meta.get("style") or "").strip(), template=body,
                   compose_with=tuple(slugify(n, 64) for n in _strings(meta.get("compose_with"))),
                   cues=tuple(c.lower() for c in _strings(meta.get("cues"))), path=relpath, sha256=sha256(data))


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[Pattern, ...]:
    folder = resources.files("mirrorfs.templates").joinpath("patterns")
    return tuple(p for p in (_from_note(folder.joinpath(f"{n}.md").read_bytes(), None, n) for n in BUILTIN) if p)


def builtins() -> dict[str, Pattern]:
    """The shipped patterns, by name."""
    return {p.name: p for p in _shipped()}


# Notes read before, by path: (mtime_ns, size, the pattern or None). A long-running entrance (the MCP
# server lists prompts often) then reads only what changed.
_seen: dict[str, tuple[int, int, Pattern | None]] = {}


def _vault_pattern(path, rel: str) -> Pattern | None:
    """The reflective pattern in ``path``, or None for a note that is not one: a pattern declares at
    least one of ``name``, ``glyph`` and ``style`` (other notes in patterns/ describe other patterns)."""
    st = path.stat()
    cached = _seen.get(str(path))
    if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
        return cached[2]
    meta = notes.read_front_matter(path)
    declared = meta.get("type") in (None, "pattern") and any(meta.get(k) for k in ("name", "glyph", "style"))
    p = _from_note(notes.read_bytes(path), rel, path.stem) if declared else None
    _seen[str(path)] = (st.st_mtime_ns, st.st_size, p)
    return p


def load(vault: "Vault", problems: list[str] | None = None) -> dict[str, Pattern]:
    """Every pattern of the vault by name: the built-ins, overridden or joined by `patterns/*.md`.

    A note that cannot be read is left out and described in ``problems``.
    """
    found = builtins()
    folder = vault.root / PATTERNS_DIR
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        rel = vault.relpath(path)
        try:
            p = _vault_pattern(path, rel)
        except (MirrorfsError, OSError) as exc:
            if problems is not None:
                problems.append(f"{rel}: {exc}")
            continue
        if p is None:
            continue
        if p.name in found and not found[p.name].builtin:
            if problems is not None:
                problems.append(f"{rel}: another note ({found[p.name].path}) already names pattern {p.name!r}")
            continue
        found[p.name] = replace(p, overrides=p.name in BUILTIN)
    return found


def get(vault: "Vault", name: str, known: dict[str, Pattern] | None = None) -> Pattern:
    known = known if known is not None else load(vault)
    key = slugify(str(name), 64)
    if key not in known:
        raise NotFoundError(f"no pattern {name!r} (patterns: {', '.join(sorted(known))}); "
                            f"write {PATTERNS_DIR}/{key}.md to make one")
    return known[key]


def chain(vault: "Vault", names: Iterable[str] | str, known: dict[str, Pattern] | None = None) -> list[Pattern]:
    """The patterns ``names`` asks for ("a,b" or a list); one pattern alone brings its ``compose_with``."""
    known = known if known is not None else load(vault)
    listed = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n and n.strip()]
    if not listed:
        raise InvalidValueError("name at least one pattern (or auto)")
    out = [get(vault, n, known) for n in listed]
    if len(out) == 1:
        out += [get(vault, n, known) for n in out[0].compose_with if n != out[0].name]
    return out


def _cue_hits(text: str, cue: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(cue), text) is not None


def suggest(vault: "Vault", text: str, known: dict[str, Pattern] | None = None) -> tuple[Pattern, str]:
    """The pattern that fits ``text`` best, and why: the one whose cues it mentions most (a pattern
    without cues is judged by the words of its style)."""
    known = known if known is not None else load(vault)
    lowered = " ".join(text.lower().split())
    best, best_score, best_hits = None, 0.0, []
    for p in known.values():
        cues = p.cues or tuple(w for w in re.findall(r"\w{5,}", p.style.lower()))
        weight = 1.0 if p.cues else 0.5
        hits = [c for c in cues if _cue_hits(lowered, c)]
        score = weight * len(hits)
        if score > best_score:
            best, best_score, best_hits = p, score, hits
    if best is None:
        fallback = known.get(DEFAULT) or next(iter(known.values()))
        return fallback, f"{fallback.name}: no pattern's cues appear in the input, and {fallback.name} is the open default"
    quoted = ", ".join(f'"{h}"' for h in best_hits)
    return best, f"{best.name}: the input mentions {quoted} (its cues)"


def instructions(pattern: Pattern, name: str) -> str:
    """The pattern's template filled in for the AI called ``name``, then the shared conventions
    (uncertainty markers and glyphs)."""
    body = (pattern.template.replace("{{name}}", name).replace("{{glyph}}", pattern.glyph)
            .replace("{{style}}", pattern.style))
    start = f"- Begin with the glyph {pattern.glyph} of this pattern.\n" if pattern.glyph else ""
    head = f"## Reflective pattern: {pattern.title}" + (f" {pattern.glyph}" if pattern.glyph else "")
    style = f"\n\nStyle: {pattern.style}." if pattern.style else ""
    return f"{head}{style}\n\n{body}\n\n{CONVENTIONS.format(start=start)}"


def glyphs(vault: "Vault", known: dict[str, Pattern] | None = None) -> dict[str, str]:
    """Every glyph a reply may carry: the standard ones and the vault's patterns'."""
    found = dict(GLYPHS)
    for p in (known if known is not None else load(vault)).values():
        if p.glyph:
            found.setdefault(p.glyph, p.name)
    return found
