"""Edit one property of YAML front matter as text, leaving every other line alone.

PyYAML (and python-frontmatter on top of it) can only load and dump a whole
document: dumping loses comments, quoting, key order and the user's list style.
Here a top-level key owns its line plus the indented or `- item` lines below
it; setting a key replaces exactly those lines, unsetting removes them, and a
new key is appended at the end of the block. The caller re-loads the result to
prove that nothing else changed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

_PLAIN_KEY = re.compile(r"""^(?P<key>[^\s#'"\-?:,\[\]{}&*!|>%@`][^#]*?)[ \t]*:(?=[ \t]|\r?\n|$)""")
_DQ_KEY = re.compile(r'^(?P<key>"(?:[^"\\]|\\.)*")[ \t]*:(?=[ \t]|\r?\n|$)')
_SQ_KEY = re.compile(r"^(?P<key>'(?:[^']|'')*')[ \t]*:(?=[ \t]|\r?\n|$)")


class _IndentlessDumper(yaml.SafeDumper):
    """Block lists with `- ` at the key's column, for notes already written that way."""

    def ignore_aliases(self, data):
        # `created` and `updated` are often one object: never `&id001` / `*id001` in a note.
        return True


class _Dumper(_IndentlessDumper):
    """Obsidian-style output: block lists indented by two spaces, ISO times with a T."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_datetime(dumper, value: dt.datetime):
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


def _represent_str(dumper, value: str):
    # Multi-line text reads best (and diffs best) as a literal block.
    style = "|" if "\n" in value and not value[:1].isspace() else None
    if value.startswith("[["):
        style = '"'  # wikilinks quoted the way Obsidian writes them
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_IndentlessDumper.add_representer(dt.datetime, _represent_datetime)
_IndentlessDumper.add_representer(str, _represent_str)


def _key_of(line: str):
    """(key object, key text) for a top-level `key:` line, else None."""
    for rx in (_DQ_KEY, _SQ_KEY, _PLAIN_KEY):
        m = rx.match(line)
        if m:
            text = m.group("key")
            try:
                loaded = yaml.safe_load(text + ": 0")
            except yaml.YAMLError:
                return None
            if isinstance(loaded, dict) and len(loaded) == 1:
                return next(iter(loaded)), text
            return None
    return None


def _matches(found, key) -> bool:
    return found == key or str(found) == str(key)


def blocks(fm_text: str) -> list[tuple[Any, str, int, int]]:
    """Top-level keys as (key, key text, first line, end line exclusive)."""
    lines = fm_text.splitlines(keepends=True)
    result = []
    i = 0
    while i < len(lines):
        k = _key_of(lines[i]) if lines[i][:1] not in (" ", "\t") else None
        if k is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and _continues(lines[j]):
            j += 1
        end = j
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        result.append((k[0], k[1], i, end))
        i = j
    return result


def _continues(line: str) -> bool:
    if not line.strip():
        return True
    if line[0] in (" ", "\t"):
        return True
    return line.startswith("-") and (len(line) == 1 or line[1] in " \t\r\n")


def render(
    key: Any,
    value: Any,
    newline: str = "\n",
    flow: bool = False,
    key_text: str | None = None,
    indentless: bool = False,
) -> str:
    """The YAML line(s) for one property, ending with *newline*."""
    if isinstance(value, tuple):
        value = list(value)
    dumped = yaml.dump(
        {key: value},
        Dumper=_IndentlessDumper if indentless else _Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=True if flow else False,
        width=math.inf,
    )
    if flow:
        dumped = dumped.strip()
        if dumped.startswith("{") and dumped.endswith("}"):
            dumped = dumped[1:-1].strip() + "\n"
    if key_text is not None:
        # Keep the user's spelling of the key (its quoting) when replacing.
        original = yaml.dump({key: 0}, Dumper=_Dumper, width=math.inf).split(":")[0]
        if dumped.startswith(original + ":"):
            dumped = key_text + dumped[len(original):]
    if not dumped.endswith("\n"):
        dumped += "\n"
    return dumped.replace("\n", newline)


def render_new(meta: dict, newline: str = "\n") -> str:
    """The front matter of a note mirrorfs creates from scratch, key order kept, Obsidian style.

    python-frontmatter's YAML handler does the dumping (with the dumper above),
    so a new file reads exactly as one `set_key` per property would write it.
    """
    if not meta:
        return ""
    text = YAMLHandler().export(meta, Dumper=_Dumper, sort_keys=False, width=math.inf)
    return text.replace("\n", newline) + newline


def set_key(fm_text: str, key: Any, value: Any, newline: str = "\n") -> str:
    """Front matter text with *key* set to *value* (last copy of a duplicated key)."""
    lines = fm_text.splitlines(keepends=True)
    found = [b for b in blocks(fm_text) if _matches(b[0], key)]
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += newline
        return "".join(lines) + render(key, value, newline)
    k, key_text, start, end = found[-1]
    first = lines[start]
    rest = first[len(key_text):].lstrip(" \t")[1:].strip()
    flow = rest.startswith("[") or rest.startswith("{")
    indentless = end > start + 1 and lines[start + 1].startswith("-")
    new_lines = render(
        k,
        value,
        newline,
        flow=flow and isinstance(value, (list, tuple, dict)),
        key_text=key_text,
        indentless=indentless,
    )
    tail = lines[end - 1]
    if not tail.endswith("\n"):
        new_lines = new_lines[: -len(newline)]
    return "".join(lines[:start]) + new_lines + "".join(lines[end:])


def unset_key(fm_text: str, key: Any) -> str:
    """Front matter text without *key* (every copy)."""
    lines = fm_text.splitlines(keepends=True)
    for _, _, start, end in reversed([b for b in blocks(fm_text) if _matches(b[0], key)]):
        del lines[start:end]
    return "".join(lines)
