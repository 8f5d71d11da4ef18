"""Semantic and hybrid search: find what was meant, not only the words.

    semantic  cosine between the query's vector and each chunk's (mirrorfs.vectors)
    keyword   mirrorfs.search.search (BM25 over the Whoosh index)
    hybrid    both, fused into one ranked list

Every score is in [0, 1] and means the same from one query to the next, so a
`min_score` threshold works:

* semantic: the cosine mapped through the embedder's calibration (lo, hi):
  (cos - lo) / (hi - lo) clipped to [0, 1]; lo is where unrelated texts sit, hi
  where a question and its answer do.
* keyword: BM25 squashed by s / (s + BM25_HALF * n), n the number of words
  in the query: BM25 adds up over the words a hit matches, so a hit matching
  one word of three is weaker evidence than one matching a one-word query.
  (Dividing by the best hit's score instead would call the best of a bad lot
  1.0.) In hybrid mode a question's function words ("what", "does") are left
  out of the keyword side: they match everything.
* hybrid: max(sem, kw) + AGREEMENT * min(sem, kw), clipped to 1: a hit strong
  on either side ranks high (a rare word typed exactly, a paraphrase), a hit
  both sides agree on ranks higher. Measured against the alternatives in
  docs/semantic.md.

Notes are ranked as a whole (the best of their chunks), messages one by one,
as in keyword search. Locked text never reaches the embedder (mirrorfs.chunks)
and snippets are cut from chunk text, which has none either.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mirrorfs import chunks as chunks_mod
from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs import search as search_mod
from mirrorfs.crypto import strip_sections
from mirrorfs.embed import Embedder
from mirrorfs.embedders import get as get_embedder
from mirrorfs.errors import (
    EmbedderError,
    InvalidValueError,
    NotFoundError,
    UnreadableNoteError,
)
from mirrorfs.layout import SEARCH_MODES
from mirrorfs.results import ReconcileReport, SemanticHit
from mirrorfs.vectors import ProgressFn, UpdateReport, VectorHit, VectorStore

MODES = SEARCH_MODES
# search.search or the watcher's search_local: (vault, query, types=, sessions=, limit=, any_word=, reconcile=)
KeywordSearch = Callable[..., "search_mod.SearchResults"]
BM25_HALF = 8.0
AGREEMENT = 0.3
SNIPPET_CHARS = search_mod.SNIPPET_CHARS
_FIELD = re.compile(r"\b\w+:\S+")
_SYNTAX = re.compile(r'["()*:]|\b(?:AND|OR|NOT)\b')
_WORD = re.compile(r"\w+(?:['’]\w+)*")

# English function and question words: in a question typed in plain words they
# match nearly every note, so the keyword side of hybrid search leaves them out.
FUNCTION_WORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each few for from further get gets got had hadn't has hasn't have haven't having he he'd he'll
he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it
it's its itself just let's like me might more most much must mustn't my myself no nor not now of off
on once only or other ought our ours ourselves out over own same shall shan't she she'd she'll she's
should shouldn't so some such than that that's the their theirs them themselves then there there's
these they they'd they'll they're they've this those through to too under until up upon us very was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while who
who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
yourself yourselves
""".split())


def calibrate(cosines, embedder: Embedder) -> np.ndarray:
    """Cosines mapped to [0, 1] by the embedder's (unrelated, same-meaning) calibration."""
    lo, hi = embedder.calibration
    return np.clip((np.asarray(cosines, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def keyword_score(bm25: float, words: int = 1) -> float:
    """A BM25 score in [0, 1): half at BM25_HALF per query word."""
    return bm25 / (bm25 + BM25_HALF * max(1, words)) if bm25 > 0 else 0.0


def query_words(query: str) -> int:
    """How many words a query searches for (fields like `tag:x` and operators not counted)."""
    return len([w for w in _WORD.findall(_FIELD.sub(" ", query)) if w not in ("AND", "OR", "NOT")])


def fuse(semantic: float | None, keyword: float | None) -> float:
    """The hybrid score of a hit found semantically and/or by keyword (each in [0, 1])."""
    s, k = semantic or 0.0, keyword or 0.0
    return min(1.0, max(s, k) + AGREEMENT * min(s, k))


def keyword_query(query: str) -> str:
    """The keyword side's query for hybrid search: a plain-words question without its
    function words; a query written in the query syntax (quotes, fields, operators) as is."""
    if _SYNTAX.search(query):
        return query
    words = [w for w in _WORD.findall(query) if w.lower().replace("’", "'") not in FUNCTION_WORDS]
    return " ".join(words)


def _keep(types: Iterable[str] | None, sessions: bool) -> Callable[[str, str], bool]:
    """The (doc, type) filter that mirrors search.search's *types*/*sessions* rules."""
    wanted = {t.lower() for t in types} if types else None
    messages = sessions and (wanted is None or "session" in wanted or "message" in wanted)

    def keep(doc: str, type_: str) -> bool:
        if doc == "message":
            return messages
        return wanted is None or type_ in wanted

    return keep


def _unit(hit_path: str, doc: str, key: str) -> tuple[str, str]:
    """What a result is: a note (path, "") or a message (path, id)."""
    return (hit_path, key if doc == "message" else "")


# Front matter of files described lately, by (path, mtime_ns, size): the same
# sessions come up query after query, and parsing YAML is most of describing one.
_META: dict[tuple[str, int, int], dict] = {}
_META_MAX = 4096


def _front_matter(full: Path, st: os.stat_result, text: str) -> dict:
    key = (str(full), st.st_mtime_ns, st.st_size)
    meta = _META.get(key)
    if meta is None:
        n = note_mod.parse_text(text, path=full)
        meta = n.meta if n.error is None else {}
        if len(_META) >= _META_MAX:
            _META.pop(next(iter(_META)))
        _META[key] = meta
    return meta


class _Describer:
    """Titles and snippets for hits the keyword side did not find: each file read once per query."""

    def __init__(self, vault):
        self.root = Path(vault.root)
        self._files: dict[str, tuple[str, dict] | None] = {}

    def file(self, path: str) -> tuple[str, dict] | None:
        """(text, front matter) of a note, None when it cannot be read any more."""
        if path not in self._files:
            full = self.root / path
            try:
                st = os.stat(full)
                text = note_mod.decode(note_mod.read_bytes(full), path)[1]
                self._files[path] = (text, _front_matter(full, st, text))
            except (OSError, UnreadableNoteError):
                self._files[path] = None
        return self._files[path]


    def hit(self, v: VectorHit, score: float, semantic: float) -> SemanticHit | None:
        got = self.file(v.path)
        if got is None:
            return None  # gone since it was embedded
        text, meta = got
        name = v.path.rsplit("/", 1)[-1][:-3]
        tags = meta.get("tags")
        hit = SemanticHit(path=v.path, title=str(meta.get("title") or name), type=v.type,
                          score=round(score, 4), doc=v.doc, id=_str(meta.get("id")),
                          tags=[str(t) for t in tags] if isinstance(tags, list) else [],
                          kind=_str(meta.get("kind")), instance=_str(meta.get("instance")),
                          created=_time(meta.get("created")), updated=_time(meta.get("updated")),
                          semantic=round(semantic, 4), chunk=None if v.doc == "message" else v.key)
        if v.doc != "message":
            hit.snippet = _lead(chunks_mod.chunk_text(v.path, text, v.key))
            return hit
        # One message, found by its id without parsing the whole session.
        m = messages_mod.find(text, v.key)
        hit.message_id = v.key
        hit.session = _str(meta.get("id")) or name
        hit.session_title = _str(meta.get("title"))
        if m is not None:
            hit.snippet = _lead(strip_sections(m.content))
            hit.role, hit.time, hit.instance = m.role, m.time, m.instance
        return hit


def _time(value) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return messages_mod.parse_time(value)
    except (TypeError, ValueError):
        return None


def _str(value) -> str | None:
    return None if value is None else str(value)


def _lead(text: str, chars: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"


def _embedder(embedder: Embedder | str | None) -> Embedder:
    return embedder if isinstance(embedder, Embedder) else get_embedder(embedder)


def has_embeddings(vault, embedder: Embedder | str | None = None) -> bool:
    """True when this device has vectors of *embedder* (default: this device's) for the vault.

    False, not an error, when the embedder cannot be used here (the local model's
    package is not installed, an embedding server does not answer): then a search
    without a mode is a keyword search, as before embeddings existed.
    """
    try:
        emb = _embedder(embedder)
        emb_id = emb.id
    except EmbedderError:
        return False
    return VectorStore.for_vault(vault).has(emb_id)


def update(vault, changed_paths=None, embedder: Embedder | str | None = None,
           progress: ProgressFn | None = None, wait: bool = True) -> UpdateReport:
    """Embed what changed (None: scan the vault); see VectorStore.update."""
    return VectorStore.for_vault(vault).update(vault, changed_paths, _embedder(embedder), progress, wait)


def _vector_units(vault, query: str, emb: Embedder, pool: int, keep) -> dict[tuple[str, str], tuple[float, VectorHit]]:
    """Best calibrated score per note/message among the *pool* nearest chunks."""
    text = " ".join(_FIELD.sub(" ", query).split()) or query
    qvec = emb.embed([text])[0]
    if not qvec.any():
        return {}
    found = VectorStore.for_vault(vault).search(emb, qvec, pool, keep)
    scores = calibrate([v.cosine for v in found], emb)
    best: dict[tuple[str, str], tuple[float, VectorHit]] = {}
    for v, s in zip(found, scores):
        unit = _unit(v.path, v.doc, v.key)
        if unit not in best or s > best[unit][0]:
            best[unit] = (float(s), v)
    return best


def _check(limit: int, min_score: float | None) -> None:
    if limit < 1:
        raise InvalidValueError("limit must be at least 1")
    if min_score is not None and not 0 <= min_score <= 1:
        raise InvalidValueError("min_score must be between 0 and 1")


def semantic_search(vault, query: str, limit: int = 20, types: Iterable[str] | None = None,
                    min_score: float | None = None, embedder: Embedder | str | None = None,
                    sessions: bool = True, refresh: bool = True) -> search_mod.SearchResults:
    """Notes and messages closest in meaning to *query*; `score` is the calibrated cosine.

    With *refresh*, changed notes are embedded first (without waiting for a
    watcher that is embedding at the same time).
    """
    _check(limit, min_score)
    emb = _embedder(embedder)
    report = update(vault, None, emb, wait=False) if refresh else None
    units = _vector_units(vault, query, emb, max(50, limit * 3), _keep(types, sessions))
    describe = _Describer(vault)
    hits = []
    for score, v in sorted(units.values(), key=lambda sv: -sv[0]):
        if min_score is not None and score < min_score:
            break
        hit = describe.hit(v, score, score)
        if hit is not None:
            hits.append(hit)
        if len(hits) >= limit:
            break
    return search_mod.SearchResults(hits, query, _report(report))


def _report(update_report: UpdateReport | None, base: ReconcileReport | None = None) -> ReconcileReport:
    report = base or ReconcileReport()
    if update_report is not None:
        report.warnings.extend(update_report.warnings)
    return report


def hybrid_search(vault, query: str, limit: int = 20, types: Iterable[str] | None = None,
                  min_score: float | None = None, embedder: Embedder | str | None = None,
                  sessions: bool = True, refresh: bool = True,
                  keyword: KeywordSearch | None = None) -> search_mod.SearchResults:
    """Keyword and semantic hits fused (see the module docstring); any word of the query may match.

    *keyword* answers the keyword side (default `search.search`; the watcher
    passes its in-process search, so that it never asks itself)."""
    keyword_search = keyword or search_mod.search
    _check(limit, min_score)
    emb = _embedder(embedder)
    pool = max(50, limit * 3)
    kw_query = keyword_query(query)
    words = query_words(kw_query)
    report = update(vault, None, emb, wait=False) if refresh else None
    # The vector side runs beside the keyword side: numpy and the tokenizer let
    # go of the GIL, Whoosh (pure Python) does not.
    vector = _Beside(lambda: _vector_units(vault, query, emb, pool, _keep(types, sessions)))
    try:
        if kw_query.strip():
            # The keyword side's own top *limit* only: highlighting a snippet for each
            # keyword hit is what a larger pool would cost (docs/semantic.md).
            keyword = keyword_search(vault, kw_query, types=types, sessions=sessions, limit=limit,
                                     any_word=True, reconcile=refresh)
        else:  # nothing but function words: meaning only
            keyword = search_mod.SearchResults([], query)
    finally:
        units = vector.result()
    fused: list[tuple[float, SemanticHit | None, VectorHit | None, float | None, float | None]] = []
    for h in keyword:
        unit = (h.path, h.message_id or "") if h.doc == "message" else (h.path, "")
        sem, v = units.pop(unit, (None, None))
        kw = keyword_score(h.score, words)
        fused.append((fuse(sem, kw), SemanticHit(**vars(h)), v, sem, kw))
    for sem, v in units.values():
        fused.append((fuse(sem, None), None, v, sem, None))
    hits = _finish(vault, fused, limit, min_score)
    return search_mod.SearchResults(hits, query, _report(report, keyword.report))


class _Beside:
    """Run a function on a thread of its own; `result()` joins it and returns (or raises) what it did."""

    def __init__(self, fn: Callable):
        self._fn = fn
        self._value = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mirrorfs-hybrid-vectors")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _finish(vault, fused: list, limit: int, min_score: float | None) -> list[SemanticHit]:
    """The best *limit* of (score, keyword hit or None, vector hit or None, sem, kw), described."""
    fused.sort(key=lambda f: -f[0])
    describe = _Describer(vault)
    hits: list[SemanticHit] = []
    for score, hit, v, sem, kw in fused:
        if min_score is not None and score < min_score:
            break
        if hit is None:
            hit = describe.hit(v, score, sem)
            if hit is None:
                continue
        hit.score, hit.relevance = round(score, 4), None
        hit.semantic = None if sem is None else round(sem, 4)
        hit.keyword = None if kw is None else round(kw, 4)
        if v is not None and v.doc != "message":
            hit.chunk = v.key
        hits.append(hit)
        if len(hits) >= limit:
            break
    return hits


def default_mode(vault, embedder: Embedder | str | None = None) -> str:
    """`hybrid` when this device has embeddings for the vault, else `keyword`."""
    return "hybrid" if has_embeddings(vault, embedder) else "keyword"


def search(vault, query: str, mode: str | None = None, limit: int = 20,
           types: Iterable[str] | None = None, min_score: float | None = None,
           embedder: Embedder | str | None = None, sessions: bool = True,
           refresh: bool = True, keyword: KeywordSearch | None = None,
           **keyword_args) -> search_mod.SearchResults:
    """Search in *mode* (keyword | semantic | hybrid; None: `default_mode`).

    In keyword mode the query syntax of docs/search.md applies as it is (all
    words must match) and `min_score` compares the squashed BM25 score; with
    no mode and no threshold on a device without embeddings, this is plain
    `search.search` (taking *keyword_args*: tags, instances, snippets, any_word).
    *keyword* answers the keyword side (see `hybrid_search`).
    """
    keyword_search = keyword or search_mod.search
    if search_mod.plain_keyword(mode, min_score, lambda: has_embeddings(vault, embedder)):
        return keyword_search(vault, query, types=types, sessions=sessions, limit=limit, reconcile=refresh,
                              **keyword_args)
    mode = mode or default_mode(vault, embedder)
    if mode not in MODES:
        raise InvalidValueError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "semantic":
        return semantic_search(vault, query, limit, types, min_score, embedder, sessions, refresh)
    if mode == "hybrid":
        return hybrid_search(vault, query, limit, types, min_score, embedder, sessions, refresh, keyword_search)
    _check(limit, min_score)
    results = keyword_search(vault, query, types=types, sessions=sessions, limit=limit, reconcile=refresh)
    words = query_words(query)
    hits = []
    for h in results:
        kw = keyword_score(h.score, words)
        if min_score is not None and kw < min_score:
            continue
        hit = SemanticHit(**vars(h))
        hit.score, hit.keyword = round(kw, 4), round(kw, 4)
        hits.append(hit)
    return search_mod.SearchResults(hits, query, results.report)


def recall(vault, query: str, limit: int = 10, half_life_days: float = 30.0, recency_weight: float = 0.3,
           now: dt.datetime | None = None, embedder: Embedder | str | None = None,
           min_score: float | None = None, refresh: bool = True) -> search_mod.SearchResults:
    """Memory notes for *query* by hybrid relevance plus recency, as `search.recall` does with BM25.

    score = (1 - w) * hybrid + w * 0.5 ** (age_days / half_life_days); `relevance`
    keeps the hybrid part, and *min_score* applies to it (what was meant, not how new).
    """
    _check(limit, min_score)
    pool = hybrid_search(vault, query, limit=max(50, limit * 5), types=["memory"], sessions=False,
                         min_score=min_score, embedder=embedder, refresh=refresh)
    now = now or dt.datetime.now(dt.timezone.utc)
    for h in pool:
        when = h.updated or h.created
        age = max(0.0, (now - when).total_seconds() / 86400) if when else 10 * half_life_days
        h.relevance = h.score
        h.score = round((1 - recency_weight) * h.score + recency_weight * 0.5 ** (age / half_life_days), 4)
    pool.sort(key=lambda h: h.score, reverse=True)
    return search_mod.SearchResults(pool[:limit], query, pool.report)


def _source(vault, text_or_path: str) -> tuple[str | None, str]:
    """(vault-relative path or None, text to compare) of similar()'s argument; a note's
    text is what was embedded for it (its chunks), so nothing locked is compared."""
    candidate = str(text_or_path)
    if "\n" in candidate or not candidate.endswith(".md"):
        return None, candidate
    full = vault.resolve(candidate)
    if not full.is_file():
        raise NotFoundError(f"no note at {candidate}")
    rel = vault.relpath(full)
    text = note_mod.decode(note_mod.read_bytes(full), rel)[1]
    return rel, "\n\n".join(c.text for c in chunks_mod.note_chunks(rel, text))


METHODS = MODES


def similar(vault, text_or_path: str, limit: int = 10, method: str = "hybrid",
            min_score: float | None = None, sessions: bool = False,
            embedder: Embedder | str | None = None, refresh: bool = True) -> search_mod.SearchResults:
    """Notes like a note (a path ending in .md) or a text; the note itself is never returned.

    keyword: `search.find_similar` (the share of its key terms a hit holds, in [0, 1]);
    semantic: the calibrated cosine to the note's text; hybrid: both, fused.
    """
    if method not in METHODS:
        raise InvalidValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    _check(limit, min_score)
    if method == "keyword":
        return search_mod.find_similar(vault, text_or_path, limit, threshold=min_score or 0.0,
                                       sessions=sessions)
    emb = _embedder(embedder)
    source, text = _source(vault, text_or_path)
    report = update(vault, None, emb, wait=False) if refresh else None
    pool = max(50, limit * 3)
    units = {u: sv for u, sv in _vector_units(vault, text, emb, pool + 1, _keep(None, sessions)).items()
             if u != (source, "")}
    keyword = (search_mod.find_similar(vault, text_or_path, pool, threshold=0.0, sessions=sessions)
               if method == "hybrid" else search_mod.SearchResults([], text_or_path))
    fused = []
    for h in keyword:
        unit = (h.path, h.message_id or "") if h.doc == "message" else (h.path, "")
        sem, v = units.pop(unit, (None, None))
        fused.append((fuse(sem, h.score), SemanticHit(**vars(h)), v, sem, h.score))
    for sem, v in units.values():
        fused.append((sem, None, v, sem, None))
    hits = _finish(vault, fused, limit, min_score)
    return search_mod.SearchResults(hits, text_or_path, _report(report, keyword.report))
