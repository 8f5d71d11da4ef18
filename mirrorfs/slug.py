"""File names from titles: readable, safe on every OS and sync tool."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^\w\s-]", re.UNICODE)
_SPACES = re.compile(r"[\s_-]+")


def slugify(text: str, max_length: int = 60) -> str:
    """`Prefers tea (mornings)` -> `prefers-tea-mornings`; keeps letters of any script."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = _SPACES.sub("-", _UNSAFE.sub("", text)).strip("-")
    return text[:max_length].rstrip("-") or "note"


def title_from_text(text: str, words: int = 8) -> str:
    """A short title from the first line of a text."""
    first = next((line.strip(" #>*-\t") for line in text.splitlines() if line.strip()), "")
    parts = first.split()
    title = " ".join(parts[:words])
    return title + ("…" if len(parts) > words else "") or "Untitled"
