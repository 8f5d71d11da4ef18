"""The files `init` writes into a new vault (SOUL.md, README-mirrorfs.md), from templates/.

They are mirrorfs's own until a person changes them: reflections do not
report an untouched starter file as anyone's note (`is_untouched`).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

from mirrorfs.clock import time_or_none
from mirrorfs.layout import README_FILE, SOUL_FILE


def template(name: str) -> str:
    """A file of the bundled templates (mirrorfs.templates), as text."""
    return resources.files("mirrorfs.templates").joinpath(name).read_text(encoding="utf-8")


def soul_text(name: str, created: dt.datetime) -> str:
    return template("SOUL.md").replace("{name}", name).replace("{created}", created.isoformat())


def readme_text() -> str:
    return template("README-mirrorfs.md")


def starter_files(name: str, created: dt.datetime) -> list[tuple[str, str]]:
    """(vault-relative path, text) of every file init writes where none exists yet."""
    return [(SOUL_FILE, soul_text(name, created)), (README_FILE, readme_text())]


def is_untouched(relpath: str, text: str, meta: dict[str, Any]) -> bool:
    """True when *text* is exactly what init wrote at *relpath* (nobody edited it since)."""
    if relpath == README_FILE:
        return text == readme_text()
    if relpath == SOUL_FILE:
        created = time_or_none(meta.get("created"))
        return created is not None and text == soul_text(str(meta.get("name", "")), created)
    return False
