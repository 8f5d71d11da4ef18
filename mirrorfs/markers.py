"""Reading a reflective reply: uncertainty markers, glyphs and depth (LingOS Lite, as docs/patterns.md says).

Uncertainty markers: ``⟨low⟩``, ``⟨medium⟩``, ``⟨⟨high⟩⟩`` (any number of angle
brackets and any case are read the same); no marker means confident. The
highest present wins, and every marker is removed from the clean text without
leaving a double space or a space before punctuation. What each level means:
none = act, low = adjust, medium = gather more information, high = experiment
first. Glyphs are listed in order of first appearance and stay in the text:
◊ exploratory, ✦ analytical, ★ creative, ⬢ strategic, ◈ emphasis, ⬡ a
question (plus the glyphs of the vault's own patterns). Depth: "deep" (more
than 100 words and more than 2 questions), "moderate" (more than 50 words or
any question), else "surface".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

LEVELS = ("none", "low", "medium", "high")
ADVICE = {"none": "act", "low": "adjust", "medium": "gather more information", "high": "experiment first"}
GLYPHS: dict[str, str] = {"◊": "exploratory", "✦": "analytical", "★": "creative", "⬢": "strategic",
                          "◈": "emphasis", "⬡": "question"}
MARKERS = {"low": "⟨low⟩", "medium": "⟨medium⟩", "high": "⟨⟨high⟩⟩"}

_MARKER = re.compile(r"[ \t]*⟨+[ \t]*(low|medium|high)[ \t]*⟩+[ \t]*", re.I)
_NO_SPACE_BEFORE = set(".,;:!?)]}…»")
_NO_SPACE_AFTER = set("([{«")


@dataclass(frozen=True)
class Parsed:
    """A reflection: the clean response, its uncertainty, glyphs (in order), pattern and meta."""

    response: str
    uncertainty: str
    glyphs: list[str]
    pattern: str
    reflection_depth: str

    @property
    def advice(self) -> str:
        return ADVICE[self.uncertainty]

    @property
    def meta(self) -> dict[str, Any]:
        return {"has_uncertainty": self.uncertainty != "none", "has_glyphs": bool(self.glyphs),
                "reflection_depth": self.reflection_depth}

    def to_dict(self) -> dict[str, Any]:
        return {"response": self.response, "uncertainty": self.uncertainty, "advice": self.advice,
                "glyphs": self.glyphs, "pattern": self.pattern, "meta": self.meta}


def strip_markers(text: str) -> tuple[str, list[str]]:
    """(``text`` without uncertainty markers, the levels found in order)."""
    found: list[str] = []

    def replace(m: re.Match) -> str:
        found.append(m.group(1).lower())
        before = text[m.start() - 1] if m.start() > 0 else "\n"
        after = text[m.end()] if m.end() < len(text) else "\n"
        if before.isspace() or after.isspace() or after in _NO_SPACE_BEFORE or before in _NO_SPACE_AFTER:
            return ""
        return " "

    return _MARKER.sub(replace, text), found


def highest(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index) if levels else "none"


def depth(text: str) -> str:
    words = len(text.split())
    questions = text.count("?")
    if words > 100 and questions > 2:
        return "deep"
    if words > 50 or questions > 0:
        return "moderate"
    return "surface"


def glyphs_in(text: str, glyphs: Mapping[str, str] | None = None) -> list[str]:
    """The glyphs of ``glyphs`` (default: the standard ones) in ``text``, in order of first appearance."""
    known = sorted(glyphs or GLYPHS, key=len, reverse=True)
    if not known:
        return []
    order: list[str] = []
    for m in re.finditer("|".join(map(re.escape, known)), text):
        if m.group(0) not in order:
            order.append(m.group(0))
    return order


def parse(text: str, pattern: str = "", glyphs: Mapping[str, str] | None = None) -> Parsed:
    """The `Parsed` reflection of a reply ``text`` made with ``pattern``."""
    clean, levels = strip_markers(text)
    clean = clean.strip()
    return Parsed(clean, highest(levels), glyphs_in(clean, glyphs), pattern, depth(clean))
