"""Line-by-line merges of two texts, with or without a common base (the classic diff3).

The lowest layer of `mirrorfs.merge`: plain strings in, strings out, no
notes, no front matter. A git merge driver and the sync-conflict merger use
the same functions through `mirrorfs.merge`.
"""

from __future__ import annotations

import difflib
from typing import Iterable


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def union_lines(a: list[str], b: list[str]) -> list[str]:
    """Every line of *a* and *b*, shared runs once, *a*'s lines first where they differ."""
    out: list[str] = []
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out += a[i1:i2]
        else:
            out += a[i1:i2] + b[j1:j2]
    return out


def same_newlines(text: str, newline: str) -> str:
    """*text* with every line ending made *newline*."""
    if newline == "\n":
        return text.replace("\r\n", "\n")
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def merge_text(base: str | None, mine: str, theirs: str, newline: str = "\n") -> tuple[str, int]:
    """Three-way merge of two texts line by line: (result, conflicting regions).

    Conflicting regions come out as *mine*'s lines. Where both sides inserted
    different lines at the same place (nothing of the base changed there) both
    insertions are kept, mine's first: nothing is lost and nothing is in doubt
    but the order. Without a base the merge succeeds only when one side holds
    every line of the other in order (a pure addition).
    """
    if mine == theirs:
        return mine, 0
    a = mine.splitlines(keepends=True)
    b = theirs.splitlines(keepends=True)
    if base is None:
        if is_subsequence(b, a):
            return mine, 0
        if is_subsequence(a, b):
            return theirs, 0
        return mine, 1
    # A last line without its line ending must still equal the same line with one.
    a, b, z = (_end_lines(x, newline) for x in (a, b, base.splitlines(keepends=True)))
    out: list[str] = []
    conflicts = 0
    for zs, xs, ys in diff3(z, a, b):
        if xs == zs:
            out += ys  # changed on their side only (or nowhere)
        elif ys == zs or xs == ys:
            out += xs  # changed on our side only, or the same way on both
        elif not zs:
            out += union_lines(xs, ys)  # both inserted at the same place: keep both
        else:
            conflicts += 1
            out += xs
    text = "".join(out)
    if not mine.endswith("\n") and not theirs.endswith("\n") and text.endswith(newline):
        text = text[: -len(newline)]
    return text, conflicts


def _matches(base: list[str], side: list[str]) -> list[tuple[int, int, int]]:
    return difflib.SequenceMatcher(None, base, side, autojunk=False).get_matching_blocks()


def diff3(base: list[str], a: list[str], b: list[str]) -> Iterable[tuple[list[str], list[str], list[str]]]:
    """Chunks (base, a, b) of a three-way diff, in order (the classic diff3).

    Lines of the base that both sides kept unchanged ("sync regions", where
    the base-to-a and base-to-b matches overlap) anchor the alignment; the
    chunks between them are what either side changed. A sync region comes out
    as a chunk with all three parts equal.
    """
    ma, mb = _matches(base, a), _matches(base, b)
    syncs: list[tuple[int, int, int, int]] = []  # (base start, a start, b start, length)
    i = j = 0
    while i < len(ma) and j < len(mb):
        za, xa, na = ma[i]
        zb, yb, nb = mb[j]
        start, end = max(za, zb), min(za + na, zb + nb)
        if start < end:
            syncs.append((start, xa + start - za, yb + start - zb, end - start))
        if za + na < zb + nb:
            i += 1
        else:
            j += 1
    syncs.append((len(base), len(a), len(b), 0))
    z0 = x0 = y0 = 0
    for zs, xs, ys, n in syncs:
        if zs > z0 or xs > x0 or ys > y0:
            yield base[z0:zs], a[x0:xs], b[y0:ys]
        if n:
            yield base[zs:zs + n], a[xs:xs + n], b[ys:ys + n]
        z0, x0, y0 = zs + n, xs + n, ys + n


def _end_lines(lines: list[str], newline: str) -> list[str]:
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1] + [lines[-1] + newline]
    return lines
