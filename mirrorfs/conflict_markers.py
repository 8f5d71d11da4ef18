"""Git conflict markers left in a note, and the two versions they hold.

A pull without the mirrorfs merge driver (or a merge tool that gave up)
leaves regions like this in a note::

    <<<<<<< HEAD
    Favourite colour: blue
    ||||||| base            (only with merge.conflictStyle diff3 / zdiff3)
    Favourite colour: green
    =======
    Favourite colour: red
    >>>>>>> origin/main

`split` takes such a text apart into *ours* (the text with every region's
first part) and *theirs* (with every region's last part), and the base when
every region carries one; `mirrorfs.conflicts` lists such a note, shows it and
settles it like a sync tool's conflict copy, and the index reads it once
(`indexable`) instead of indexing the marker lines and both halves apart.

Only well-formed regions count: marker lines start at the first column, a
region's markers have the same length (7, or git's `conflict-marker-size`),
and every region is closed. Marker lines inside a fenced code block that was
opened outside any region are an example, not a conflict. A text with a
half-open region is not taken apart at all (nothing is guessed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirrorfs import merge
from mirrorfs import note as notes
from mirrorfs.errors import MirrorfsError, UnreadableNoteError

TOOL = "git"
# The shortest marker git writes (its default `conflict-marker-size`).
MIN_MARKER = 7
_OPEN = re.compile(r"^(<{7,})(?:[ \t]+(?P<label>[^\r\n]*?))?[ \t]*\r?\n?$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Marked:
    """A text with conflict markers, taken apart."""

    ours: str
    theirs: str
    base: str | None  # None unless every region had a `|||||||` part
    regions: int
    ours_label: str  # the label after the first `<<<<<<<` (e.g. HEAD)
    theirs_label: str  # the label after the first `>>>>>>>` (e.g. origin/main)


def _marker(line: str, char: str, size: int) -> str | None:
    """The label of *line* when it is a marker of *char* repeated *size* times, else None."""
    body = line.rstrip("\r\n")
    if not body.startswith(char * size) or body[size:size + 1] == char:
        return None
    rest = body[size:]
    if rest and rest[0] not in " \t":
        return None
    return rest.strip()


def has_markers(data: bytes | str) -> bool:
    """True when *data* holds at least one well-formed conflict region (cheap when it holds none)."""
    if isinstance(data, bytes):
        if b"<<<<<<<" not in data or b"=======" not in data or b">>>>>>>" not in data:
            return False
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    elif "<<<<<<<" not in data or ">>>>>>>" not in data:
        return False
    return split(data) is not None


def _fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after *line* (None: outside any fence)."""
    f = _FENCE.match(line)
    if not f:
        return fence
    if fence is None:
        return f.group(1)
    closing = line.strip()
    if closing[:1] == fence[0] and set(closing) == {fence[0]} and len(closing) >= len(fence):
        return None
    return fence


def split(text: str) -> Marked | None:
    """*text* taken apart into the versions its conflict regions hold; None without (well-formed) regions."""
    lines = text.splitlines(keepends=True)
    ours: list[str] = []
    theirs: list[str] = []
    base: list[str] = []
    regions = 0
    all_bases = True
    labels: list[str] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _OPEN.match(line) if fence is None else None
        if m is None:
            fence = _fence_after(line, fence)
            ours.append(line)
            theirs.append(line)
            base.append(line)
            i += 1
            continue
        region = _region(lines, i, len(m.group(1)))
        if region is None:
            return None  # a region that never closes: take nothing apart
        a, z, b, i, first_label, last_label = region
        labels = labels or [first_label, last_label]
        regions += 1
        ours += a
        theirs += b
        if z is None:
            all_bases = False
        else:
            base += z
    if not regions:
        return None
    return Marked(
        ours="".join(ours), theirs="".join(theirs), base="".join(base) if all_bases else None,
        regions=regions, ours_label=labels[0], theirs_label=labels[1],
    )


def _region(lines: list[str], start: int, size: int):
    """(ours, base or None, theirs, index after the region, ours label, theirs label), or None if unclosed."""
    first = _marker(lines[start], "<", size) or ""
    parts: dict[str, list[str] | None] = {"ours": [], "base": None, "theirs": []}
    part = "ours"
    for j in range(start + 1, len(lines)):
        line = lines[j]
        if part == "ours" and _marker(line, "|", size) is not None:
            part, parts["base"] = "base", []
        elif part != "theirs" and _marker(line, "=", size) == "":
            part = "theirs"
        elif part == "theirs" and _marker(line, ">", size) is not None:
            return parts["ours"], parts["base"], parts["theirs"], j + 1, first, _marker(line, ">", size) or ""
        elif _marker(line, "<", size) is not None:
            return None  # a region inside a region: not something git writes
        else:
            parts[part].append(line)  # type: ignore[union-attr]
    return None


def sides(data: bytes) -> tuple[bytes, bytes, bytes | None, Marked] | None:
    """(ours, theirs, base or None, the split) as bytes, each keeping the file's BOM; None without markers."""
    if not has_markers(data):
        return None
    try:
        bom, text = notes.decode(data)
    except UnreadableNoteError:
        return None  # binary: not a note, whatever it holds
    marked = split(text)
    assert marked is not None
    encode = lambda t: (bom + t).encode("utf-8")  # noqa: E731
    return encode(marked.ours), encode(marked.theirs), \
        (encode(marked.base) if marked.base is not None else None), marked


def source(marked: Marked) -> str:
    """How keep-both renderings name the other version of a marked note."""
    label = f" (`{marked.theirs_label}`)" if marked.theirs_label else ""
    return f"the other side of a git merge{label}"


def indexable(data: bytes) -> bytes:
    """What the index reads of *data*: the bytes themselves, or for a note with conflict
    markers one version holding each side's text once and no marker line.

    Sessions: the union of both sides' messages (a message edited on both sides
    holds both versions); other notes: ours, with the lines only theirs has
    added after the line they follow.
    """
    found = sides(data) if b"<<<<<<<" in data else None
    if found is None:
        return data
    ours, theirs, _, marked = found
    try:
        m, t = merge.read_side(ours, "ours"), merge.read_side(theirs, "theirs")
        if m.is_session and t.is_session:
            assert m.note is not None and t.note is not None
            return merge.merge_sessions(m.note, t.note, None, both_from=source(marked)).note.render()
        usable = [s.note for s in (m, t) if s.note is not None and s.problem is None]
        if not usable:
            text = "".join(merge.union_lines(marked.ours.splitlines(True), marked.theirs.splitlines(True)))
            return ours[: len(ours) - len(marked.ours.encode("utf-8"))] + text.encode("utf-8")
        first = usable[0]
        other = t.note if first is m.note else m.note
        assert other is not None
        body = merge.union_lines(first.body.splitlines(True), merge.same_newlines(other.body, first.newline)
                                 .splitlines(True))
        return first.with_body("".join(body)).render()
    except MirrorfsError:
        return data
