"""Snippets: the passages of a text around its matched index terms, terms in `**bold**`.

A lean stand-in for Whoosh's highlighter, which costs more than the search
itself: the same tokens as the analyzer, found in the text as it is on disk.
"""

from __future__ import annotations

import re
from typing import Iterable

from mirrorfs.analysis import MAX_WORD, MIN_WORD, STOP, TOKEN, stem


def _tokens(text: str, lo: int, hi: int, terms: frozenset, heads: set, spans: list, limit: int) -> None:
    """Append to *spans* the matched tokens of text[lo:hi], up to *limit* spans."""
    for m in TOKEN.finditer(text, lo, hi):
        run, word = m.groups()
        if word is not None:
            w = word.lower()
            if w[:2] not in heads or not MIN_WORD <= len(w) <= MAX_WORD or w in STOP:
                continue
            term = stem(w)
            if term in terms:
                spans.append((m.start(), m.end(), term))
        else:
            base = m.start()
            if len(run) == 1:
                if run in terms:
                    spans.append((base, base + 1, run))
                continue
            for i in range(len(run) - 1):
                if run[i:i + 2] in terms:
                    spans.append((base + i, base + i + 2, run[i:i + 2]))
        if len(spans) >= limit:
            return


def _head_finder(heads: set) -> re.Pattern | None:
    """A regex finding every place a token with one of *heads* could start
    (a superset), or None when case folding could hide one (heads in cased
    scripts other than ASCII: `str.lower` and the regex's folding differ there)."""
    if not heads or not all(h.isascii() or h.lower() == h.upper() for h in heads):
        return None
    return re.compile("|".join(re.escape(h) for h in sorted(heads)), re.IGNORECASE)


def term_spans(text: str, terms: frozenset, limit: int = 300,
               bounded: bool = True) -> list[tuple[int, int, str]]:
    """(start, end, term) of the tokens of *text* whose index term is in *terms*.

    Same tokens as MirrorAnalyzer, but a word whose first two letters start no
    wanted term is dropped before stemming (stemming never changes them).
    *bounded*: only the lines where such a word can occur are tokenized (no
    token spans a line, so the spans are those of the whole text); a long
    session or note is mostly lines without one.
    """
    heads = {t[:2] for t in terms}
    spans: list[tuple[int, int, str]] = []
    finder = _head_finder(heads) if bounded else None
    if finder is None:
        _tokens(text, 0, len(text), terms, heads, spans, limit)
        return spans
    pos, n = 0, len(text)
    while len(spans) < limit:
        m = finder.search(text, pos)
        if m is None:
            break
        lo = text.rfind("\n", 0, m.start()) + 1
        hi = text.find("\n", m.end())
        hi = n if hi < 0 else hi
        _tokens(text, lo, hi, terms, heads, spans, limit)
        pos = hi + 1
    return spans


def highlight(text: str, terms: Iterable[str], top: int = 2, chars: int = 180,
              bounded: bool = True) -> str:
    """Up to *top* passages of *text* with the most distinct matched terms,
    each about *chars* long, terms marked `**term**` (*bounded*: see term_spans)."""
    terms = frozenset(terms)
    if not terms or not text:
        return ""
    spans = term_spans(text, terms, bounded=bounded)
    if not spans:
        return ""
    # Best windows: most distinct terms, then most occurrences, earliest first.
    chosen: list[tuple[int, int]] = []
    candidates = []
    for i, (start, _, _) in enumerate(spans):
        lo = max(0, start - chars // 4)
        hi = lo + chars
        inside = []
        for s in spans[i:]:
            if s[0] >= hi:  # spans come by start: none further ends by hi
                break
            if s[1] <= hi:
                inside.append(s)
        candidates.append((-len({s[2] for s in inside}), -len(inside), lo, hi))
    candidates.sort()
    for _, _, lo, hi in candidates:
        if len(chosen) >= top:
            break
        if all(hi <= a or lo >= b for a, b in chosen):
            chosen.append((lo, hi))
    chosen.sort()
    out = []
    for lo, hi in chosen:
        # Widen to word boundaries so no word is cut in half.
        while lo > 0 and not text[lo - 1].isspace() and hi - lo < chars + 30:
            lo -= 1
        while hi < len(text) and not text[hi].isspace() and hi - lo < chars + 60:
            hi += 1
        marks: list[list[int]] = []
        for s, e, _ in spans:
            if s < lo or e > hi:
                continue
            if marks and s <= marks[-1][1]:  # overlapping CJK bigrams: one mark
                marks[-1][1] = max(marks[-1][1], e)
            else:
                marks.append([s, e])
        pieces, pos = [], lo
        for s, e in marks:
            pieces.append(text[pos:s])
            pieces.append("**" + text[s:e] + "**")
            pos = e
        pieces.append(text[pos:hi])
        snippet = "".join(pieces).strip()
        out.append(("… " if lo > 0 else "") + snippet + (" …" if hi < len(text) else ""))
    # Adjacent CJK bigrams come out as **検索****機能**: one mark reads better.
    return " ".join(out).replace("****", "").replace("… …", "…")
