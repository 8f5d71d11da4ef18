"""The search fields, declared once as a table.

Each row says what a field holds, where its value comes from (a note's facts,
a message's facts, its session's value), how a query names it and how values
compare. From the table come the Whoosh schema (`FieldTable.schema`), the
query's field names and rules (`mirrorfs.query`) and every document
(`mirrorfs.documents`). A new search field is one row in `FIELDS`.

A row's *note* and *message* are functions of the facts `mirrorfs.documents`
gathers (`NoteFacts`, `MessageFacts`); `front("key")` takes a front-matter
property as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from whoosh import fields as wfields
from whoosh.system import pack_uint

from mirrorfs.analysis import ANALYZER, term_positions

# Kinds of field.
TEXT = "text"  # analysed words (phrases, stems, CJK bigrams)
ID = "id"  # one exact term (lowercase when the row says `lower`)
TAGS = "tags"  # comma-separated keywords, for filtering
KEYWORDS = "keywords"  # comma-separated keywords that rank (scored, boosted)
FLAGS = "flags"  # space-separated keywords
STORED = "stored"  # returned with hits, not searchable
DATE = "date"  # a UTC day as one YYYYMMDD term, plus the exact time stored as `<name>_at`

# The field a word without a field searches. A note's document puts the text of
# every row with `in_body` into it, weighted (BM25F); a message's holds its text.
BODY = "body"
# Positions between the weighted parts of a body, so that no phrase spans two.
PART_GAP = 100


class FastText(wfields.TEXT):
    """TEXT indexed through `term_positions` (same terms as its analyzer).

    The value may also be a tuple of (text, weight) parts: a term's posting
    weight is then the weighted sum of its counts in the parts, which is how
    BM25F combines fields before saturating term frequency.
    """

    def index(self, value, **kwargs):
        fb = self.format.field_boost
        encode = self.format.encode
        if isinstance(value, str):
            for w, poslist in term_positions(value).items():
                n = len(poslist)
                yield w.encode("utf-8"), n, n * fb, encode(poslist)
            return
        poses: dict[str, list[int]] = {}
        weights: dict[str, float] = {}
        start = 0
        for text, weight in value:
            last = start
            for w, poslist in term_positions(text).items():
                shifted = [p + start for p in poslist]
                poses.setdefault(w, []).extend(shifted)
                weights[w] = weights.get(w, 0.0) + weight * len(poslist)
                last = max(last, shifted[-1])
            start = last + PART_GAP
        for w, poslist in poses.items():
            yield w.encode("utf-8"), len(poslist), weights[w] * fb, encode(poslist)


class FastID(wfields.ID):
    """An ID whose value is its one term, without Whoosh's analyzer chain."""

    def index(self, value, **kwargs):
        yield value.encode("utf-8"), 1, self.format.field_boost, b""


class FastTags(wfields.KEYWORD):
    """Comma-separated lowercase keywords, without Whoosh's analyzer chain."""

    def index(self, value, **kwargs):
        fb = self.format.field_boost
        counts: dict[str, int] = {}
        for w in value.split(","):
            w = w.strip().lower()
            if w:
                counts[w] = counts.get(w, 0) + 1
        for w, n in counts.items():
            yield w.encode("utf-8"), n, n * fb, pack_uint(n)


Extract = Callable[[Any], Any]


@dataclass(frozen=True)
class SearchField:
    """One search field: a row of the table."""

    name: str  # the schema field
    kind: str  # TEXT, ID, TAGS, KEYWORDS, FLAGS, STORED or DATE
    note: Extract | None = None  # its value in a note's document, from NoteFacts
    message: Extract | None = None  # its value in a message's document, from MessageFacts
    query: tuple[str, ...] = ()  # the names a query may give it (`tag:`, `tags:`); none: not by name
    stored: bool = False  # handed back with each hit
    lower: bool = False  # values compared lowercase (the query's values are lowercased too)
    boost: float = 1.0  # field boost in ranking
    in_body: float = 0.0  # > 0: also part of a note's weighted body, with this weight
    session: bool = False  # a message carries its session note's value
    listed: bool = True  # named in the "known fields" of an unknown-field error

    def whoosh_fields(self) -> dict[str, Any]:
        """The schema field(s) this row makes."""
        kind = self.kind
        if kind == TEXT:
            return {self.name: FastText(analyzer=ANALYZER, stored=self.stored, field_boost=self.boost,
                                        multitoken_query="phrase")}
        if kind == ID:
            return {self.name: FastID(stored=self.stored, field_boost=self.boost)}
        if kind in (TAGS, KEYWORDS):
            return {self.name: FastTags(stored=self.stored, commas=True, lowercase=True,
                                        scorable=kind == KEYWORDS, field_boost=self.boost)}
        if kind == FLAGS:
            return {self.name: wfields.KEYWORD(stored=self.stored, field_boost=self.boost)}
        if kind == STORED:
            return {self.name: wfields.STORED()}
        if kind == DATE:
            return {self.name: FastID(stored=False), self.name + "_at": wfields.STORED()}
        raise ValueError(f"search field {self.name}: unknown kind {kind!r}")

    def value(self, raw: Any) -> Any:
        """A raw value as this field's document value; None when there is none."""
        if raw is None or raw == "" or raw == [] or raw == ():
            return None
        if self.kind in (DATE, STORED):
            return raw
        if isinstance(raw, (list, tuple, set)):
            sep = "," if self.kind in (TAGS, KEYWORDS) else " "
            raw = sep.join(str(v) for v in raw)
        text = str(raw).strip()
        if self.lower:
            text = text.lower()
        return text or None

    def document_values(self, raw: Any) -> dict[str, Any]:
        """{schema field: value} for one document (a DATE row fills two fields)."""
        value = self.value(raw)
        if value is None:
            return {}
        if self.kind == DATE:
            # The exact time as POSIX seconds: a pickled float is a tenth of a datetime.
            at = value.replace(tzinfo=dt.timezone.utc).timestamp() if value.tzinfo is None else value.timestamp()
            return {self.name: value.strftime("%Y%m%d"), self.name + "_at": at}
        return {self.name: value}


def front(key: str) -> Extract:
    """A front-matter property, as it is (the row says whether it is lowercased)."""
    return lambda facts: facts.meta.get(key)


def fact(name: str) -> Extract:
    """An attribute of the facts (`NoteFacts` / `MessageFacts`)."""
    return lambda facts: getattr(facts, name)


FIELDS: tuple[SearchField, ...] = (
    SearchField("path", ID, note=fact("path"), message=fact("path"), query=("path",), stored=True),
    SearchField("id", ID, note=fact("id"), query=("id",), stored=True, listed=False),
    SearchField("type", ID, note=fact("type"), message=lambda m: "message", query=("type",),
                stored=True, lower=True),
    SearchField("title", TEXT, note=fact("title"), query=("title",), stored=True, boost=3.0, in_body=3.0),
    SearchField("aliases", TEXT, note=fact("aliases"), query=("alias", "aliases"), boost=2.0, in_body=2.0),
    # `tags` filters (`tag:x`, also on a session's messages); `keywords` holds a
    # note's own tags for ranking words that are tags.
    SearchField("tags", TAGS, note=fact("tags"), query=("tag", "tags"), stored=True, in_body=2.0,
                session=True),
    SearchField("keywords", KEYWORDS, note=fact("tags"), boost=2.0),
    SearchField("kind", ID, note=front("kind"), query=("kind",), stored=True, lower=True),
    SearchField("tier", ID, note=front("tier"), query=("tier",), stored=True, lower=True),
    SearchField("category", ID, note=front("category"), query=("category",), stored=True, lower=True,
                session=True),
    SearchField("instance", ID, note=front("instance"), message=fact("instance"), query=("instance",),
                stored=True, lower=True),
    SearchField("updated_by", ID, note=front("updated_by"), query=("updated_by",), lower=True),
    SearchField("role", ID, message=fact("role"), query=("role",), stored=True, lower=True),
    SearchField("created", DATE, note=fact("created"), message=fact("time"),
                query=("created", "date", "time")),
    SearchField("updated", DATE, note=fact("updated"), query=("updated",)),
    SearchField(BODY, TEXT, note=fact("preamble"), message=fact("text"), query=("body",), in_body=1.0,
                listed=False),
    SearchField("msg", STORED, message=fact("id")),  # a message's id
    SearchField("at", STORED, message=fact("at")),  # where its block is in the file, for snippets
    SearchField("flags", FLAGS, note=fact("flags"), query=("flag", "flags"), stored=True),
)


class FieldTable:
    """What the rows generate: the schema, the query names, the documents."""

    def __init__(self, rows: Iterable[SearchField] = FIELDS):
        self.rows = tuple(rows)
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names) or BODY not in names:
            raise ValueError("search fields: names must be unique and include the body")
        self.query_fields = {q: r.name for r in self.rows for q in r.query}
        self.lower_names = tuple(q for r in self.rows if r.lower for q in r.query)
        self.date_names = tuple(q for r in self.rows if r.kind == DATE for q in r.query)
        self.tag_names = tuple(q for r in self.rows if r.kind in (TAGS, KEYWORDS) for q in r.query)
        self.listed_names = tuple(sorted({q for r in self.rows if r.listed for q in r.query}))
        self._note_rows = [r for r in self.rows if r.note is not None and r.name != BODY]
        self._body_rows = [r for r in self.rows if r.in_body and r.note is not None]
        self._message_rows = [r for r in self.rows if r.message is not None]
        self._session_rows = [r for r in self.rows if r.session]

    def schema(self) -> wfields.Schema:
        """The Whoosh schema: one document per note file and one per session message."""
        out: dict[str, Any] = {}
        for row in self.rows:
            out.update(row.whoosh_fields())
        return wfields.Schema(**out)

    def aliases(self) -> dict[str, list[str]]:
        """Schema field -> the other names a query may use for it."""
        out: dict[str, list[str]] = {}
        for q, name in self.query_fields.items():
            if q != name:
                out.setdefault(name, []).append(q)
        return out

    def note_document(self, facts: Any) -> dict[str, Any]:
        """A note's document; its body holds the weighted text of every `in_body` row."""
        doc: dict[str, Any] = {}
        for row in self._note_rows:
            doc.update(row.document_values(row.note(facts)))
        parts = []
        for row in self._body_rows:
            raw = row.note(facts)
            text = " ".join(str(v) for v in raw) if isinstance(raw, (list, tuple)) else (raw or "")
            if text:
                parts.append((text, row.in_body))
        if parts:
            doc[BODY] = tuple(parts)
        return doc

    def message_document(self, facts: Any, note_doc: dict[str, Any]) -> dict[str, Any]:
        """A message's document; `session` rows take the session note's value."""
        doc: dict[str, Any] = {}
        for row in self._message_rows:
            doc.update(row.document_values(row.message(facts)))
        for row in self._session_rows:
            if note_doc.get(row.name):
                doc[row.name] = note_doc[row.name]
                # Indexed for filtering, never stored again per message: a
                # message's hit takes its session's values from the catalog.
                doc["_stored_" + row.name] = None
        return doc


TABLE = FieldTable()


def day(t: dt.datetime) -> str:
    """A time as the day term of a DATE field."""
    return t.strftime("%Y%m%d")
