"""Text analysis: how a text becomes index terms (documents and queries alike).

English words are lowercased, stop words dropped, and stemmed; words of other
alphabets are lowercased; runs of scripts written without spaces (Chinese,
Japanese, Korean, Thai) become overlapping character bigrams, so any substring
of two or more characters is findable (a query's run becomes a phrase of the
same bigrams).
"""

from __future__ import annotations

import re

from whoosh import analysis as wanalysis
from whoosh.lang.porter import stem as _porter_stem

# Scripts written without spaces between words.
_NOSPACE = (
    "\u0e00-\u0e7f"  # Thai
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035"  # 々〆〇, Hangzhou numerals, kana marks
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compat, Katakana ext
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\ua960-\ua97f\uac00-\ud7af"  # Hangul
    "\uff66-\uff9f"  # halfwidth Katakana
    "\U00020000-\U0003134f"  # Han extensions
)
# One token: a run of no-space script (group "run") or a word (group "word").
TOKEN = re.compile(
    rf"(?P<run>[{_NOSPACE}]+)|(?P<word>[^\W{_NOSPACE}]+(?:\.[^\W{_NOSPACE}]+)*)"
)
STOP = frozenset(wanalysis.STOP_WORDS)
MIN_WORD = 2
MAX_WORD = 40
_STEM_CACHE: dict[str, str] = {}


def stem(word: str) -> str:
    """The index term of a lowercased word (Porter stem for ASCII words)."""
    s = _STEM_CACHE.get(word)
    if s is None:
        s = _porter_stem(word) if word.isascii() and word.isalpha() else word
        if len(_STEM_CACHE) > 200_000:
            _STEM_CACHE.clear()
        _STEM_CACHE[word] = s
    return s


def is_run(text: str) -> bool:
    """True when *text* is one run of a script written without spaces."""
    m = TOKEN.fullmatch(text)
    return bool(m and m.group("run"))


class MirrorAnalyzer(wanalysis.Analyzer):
    """Tokenize, lowercase, drop English stop words, stem; CJK runs as bigrams.

    One fused loop instead of Whoosh's chain of generator filters: indexing
    spends most of its time here.
    """

    def __init__(self, minsize: int = MIN_WORD, maxsize: int = MAX_WORD):
        self.minsize = minsize
        self.maxsize = maxsize

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", **kwargs):
        t = wanalysis.Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        t.boost = 1.0
        t.stopped = False
        if not tokenize:
            # Prefix and wildcard queries: lowercase only, never stem a fragment.
            t.original = t.text = value.lower()
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar = start_char
                t.endchar = start_char + len(value)
            yield t
            return
        minsize, maxsize = self.minsize, self.maxsize
        pos = start_pos
        for m in TOKEN.finditer(value):
            word = m.group("word")
            if word is not None:
                w = word.lower()
                n = len(w)
                if n < minsize or n > maxsize:
                    continue
                if w in STOP:
                    if removestops:
                        continue
                    t.stopped = True
                    t.text = w
                else:
                    t.stopped = False
                    t.text = stem(w)
                if keeporiginal:
                    t.original = word
                if positions:
                    t.pos = pos
                    pos += 1
                if chars:
                    t.startchar = start_char + m.start()
                    t.endchar = start_char + m.end()
                yield t
            else:
                run = m.group("run")
                base = start_char + m.start()
                t.stopped = False
                if len(run) == 1:
                    grams = ((run, 0),)
                else:
                    grams = ((run[i:i + 2], i) for i in range(len(run) - 1))
                for gram, i in grams:
                    t.text = gram
                    if keeporiginal:
                        t.original = gram
                    if positions:
                        t.pos = pos
                        pos += 1
                    if chars:
                        t.startchar = base + i
                        t.endchar = base + i + len(gram)
                    yield t


ANALYZER = MirrorAnalyzer()


def term_positions(value: str, minsize: int = MIN_WORD, maxsize: int = MAX_WORD) -> dict[str, list[int]]:
    """The terms of *value* with their positions, exactly as MirrorAnalyzer
    yields them, in one loop without Token objects (indexing's hot path)."""
    poses: dict[str, list[int]] = {}
    pos = 0
    stop = STOP
    cached = _STEM_CACHE.get
    for m in TOKEN.finditer(value):
        run, word = m.groups()
        if word is not None:
            w = word.lower()
            if not minsize <= len(w) <= maxsize or w in stop:
                continue
            w = cached(w) or stem(w)
            grams = (w,)
        elif len(run) == 1:
            grams = (run,)
        else:
            grams = [run[i:i + 2] for i in range(len(run) - 1)]
        for g in grams:
            lst = poses.get(g)
            if lst is None:
                poses[g] = [pos]
            else:
                lst.append(pos)
            pos += 1
    return poses


def analyze(text: str) -> list[str]:
    """The index terms of *text* as a query sees them."""
    return [t.text for t in ANALYZER(text, mode="query")]
