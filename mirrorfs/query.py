"""mirrorfs query syntax (docs/search.md) to Whoosh queries.

The field names a query may use, which of them compare lowercase, which are
dates and which are tags all come from the field table (`mirrorfs.fields`).
Checks run before Whoosh sees the text, so a malformed query is one clear
QueryError instead of a silent miss.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

from whoosh import qparser
from whoosh import query as wquery

from mirrorfs.analysis import is_run
from mirrorfs.errors import QueryError
from mirrorfs.fields import BODY, TABLE, FieldTable, day

_FIELD = re.compile(r"(?<![\w:])([A-Za-z_]+):")
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?(?:Z|[+-]00:?00)?")
_AGO = re.compile(r"(\d+)([dwmy])")
_OPERATOR = re.compile(r'"[^"]*"|\(|\)|[^\s()"]+')
_FIRST_DAY, _LAST_DAY = "00000101", "99991231"


def _names(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "(?!)"


def date_value(value: str, field: str, now: dt.datetime | None = None) -> str:
    """A Whoosh date string (YYYYMMDDhhmmss, as precise as given) from mirrorfs syntax."""
    now = now or dt.datetime.now(dt.timezone.utc)
    v = value.strip().lower()
    if v == "now":
        return now.strftime("%Y%m%d%H%M%S")
    if v == "today":
        return now.strftime("%Y%m%d")
    if v == "yesterday":
        return (now - dt.timedelta(days=1)).strftime("%Y%m%d")
    m = _AGO.fullmatch(v)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        days = {"d": 1, "w": 7, "m": 30, "y": 365}[unit] * n
        try:
            return (now - dt.timedelta(days=days)).strftime("%Y%m%d")
        except OverflowError:
            pass
    m = _ISO.fullmatch(value.strip())
    if m:
        parts = [p for p in m.groups() if p is not None]
        try:  # reject 2026-13-45 here, with a clear message
            dt.datetime(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1,
                        int(parts[2]) if len(parts) > 2 else 1)
            return "".join(parts)
        except ValueError:
            pass
    raise QueryError(
        f"bad date {value!r} in {field}: use YYYY, YYYY-MM, YYYY-MM-DD, "
        "YYYY-MM-DDTHH:MM, today, yesterday, now or an age like 7d, 2w, 3m, 1y"
    )


def bounds(value: str) -> tuple[dt.datetime, dt.datetime]:
    """(first instant, first instant after) of the period a Whoosh date string names."""
    n = len(value)
    y = int(value[:4])
    mo = int(value[4:6]) if n >= 6 else 1
    d = int(value[6:8]) if n >= 8 else 1
    h = int(value[8:10]) if n >= 10 else 0
    mi = int(value[10:12]) if n >= 12 else 0
    sec = int(value[12:14]) if n >= 14 else 0
    start = dt.datetime(y, mo, d, h, mi, sec)
    if n <= 4:
        end = start.replace(year=y + 1)
    elif n <= 6:
        end = start.replace(year=y + (mo == 12), month=mo % 12 + 1)
    elif n <= 8:
        end = start + dt.timedelta(days=1)
    elif n <= 10:
        end = start + dt.timedelta(hours=1)
    elif n <= 12:
        end = start + dt.timedelta(minutes=1)
    else:
        end = start + dt.timedelta(seconds=1)
    return start, end


def check_operators(text: str) -> None:
    """AND, OR, NOT and parentheses each with a word or group where they need one."""
    items = []
    for tok in _OPERATOR.findall(text):
        if tok in ("AND", "OR", "NOT", "(", ")"):
            items.append(tok)
        else:
            items.append("TERM")
    if "TERM" not in items:
        raise QueryError("empty query: give at least one word, phrase or field:value")
    for i, tok in enumerate(items):
        before = items[i - 1] if i else None
        after = items[i + 1] if i + 1 < len(items) else None
        if tok in ("AND", "OR"):
            if before not in ("TERM", ")") or after not in ("TERM", "(", "NOT"):
                raise QueryError(f"{tok} needs a word or group on both sides")
        elif tok == "NOT" and after not in ("TERM", "("):
            raise QueryError("NOT needs a word or group after it")
        elif tok == "(" and after == ")":
            raise QueryError("empty parentheses")


def _errors(q) -> list[str]:
    found = []
    stack = [q]
    while stack:
        node = stack.pop()
        error = getattr(node, "error", None)
        if error:
            found.append(str(error))
        if hasattr(node, "children"):
            stack.extend(node.children())
    return found


def _single_cjk_prefix(q):
    """A one-character CJK term also matches the bigrams starting with it."""
    if isinstance(q, wquery.Term) and isinstance(q.text, str) and len(q.text) == 1 and is_run(q.text):
        return wquery.Or([q, wquery.Prefix(q.fieldname, q.text, boost=q.boost)])
    return q


class QuerySyntax:
    """The query language over one field table."""

    def __init__(self, table: FieldTable = TABLE):
        self.table = table
        self.fields = table.query_fields
        self._date_clause = re.compile(
            rf"(?<![\w:])({_names(table.date_names)}):"
            r"(?:(>=|<=|>|<)?([^\s()\[\]{}]+)|([\[{])\s*(\S*?)\s+[Tt][Oo]\s*(\S*?)\s*([\]}]))",
            re.I,
        )
        self._lower_clause = re.compile(rf"(?<![\w:])({_names(table.lower_names)}):([^\s()\"]+)", re.I)
        self._tag_hash = re.compile(rf"(?<![\w:])({_names(table.tag_names)}):#")
        self._parsers: dict[bool, qparser.QueryParser] = {}

    def parser(self, any_word: bool = False) -> qparser.QueryParser:
        if any_word not in self._parsers:
            group = qparser.OrGroup.factory(0.9) if any_word else qparser.AndGroup
            parser = qparser.QueryParser(BODY, self.table.schema(), group=group)
            parser.add_plugin(qparser.FieldAliasPlugin(self.table.aliases()))
            parser.add_plugin(qparser.GtLtPlugin())
            # `+word`/`-word` are not part of mirrorfs syntax (a leading - is common in text).
            parser.remove_plugin_class(qparser.PlusMinusPlugin)
            self._parsers[any_word] = parser
        return self._parsers[any_word]

    def rewrite_dates(self, segment: str) -> str:
        """Date clauses as term ranges over the indexed `YYYYMMDD` days (UTC)."""
        tick = dt.timedelta(microseconds=1)

        def repl(m: re.Match) -> str:
            field = self.fields[m.group(1).lower()]
            if m.group(4):  # [a TO b] or {a TO b}
                lo = day(bounds(date_value(m.group(5), field))[0]) if m.group(5) else _FIRST_DAY
                hi = day(bounds(date_value(m.group(6), field))[1] - tick) if m.group(6) else _LAST_DAY
            else:
                op = m.group(2) or ""
                start, end = bounds(date_value(m.group(3), field))
                lo, hi = day(start), day(end - tick)
                if op == ">":
                    lo, hi = day(end), _LAST_DAY
                elif op == "<":
                    lo, hi = _FIRST_DAY, day(start - tick)
                elif op == ">=":
                    hi = _LAST_DAY
                elif op == "<=":
                    lo = _FIRST_DAY
            return f"{field}:[{lo} TO {hi}]"

        return self._date_clause.sub(repl, segment)

    def _check_fields(self, piece: str) -> None:
        for m in _FIELD.finditer(piece):
            name = m.group(1)
            if name.lower() in self.fields:
                continue
            if piece[m.end():m.end() + 2] == "//":  # a URL, searched as text
                continue
            raise QueryError(
                f"unknown field {name}: (known fields: {', '.join(self.table.listed_names)}); "
                f'put text containing a colon in quotes, e.g. "{name}:..."'
            )

    def preprocess(self, text: str) -> str:
        """Check mirrorfs query syntax and rewrite dates, lowercase values and `tag:#x` for Whoosh."""
        if not text or not text.strip():
            raise QueryError("empty query: give at least one word, phrase or field:value")
        if text.count('"') % 2:
            raise QueryError('unbalanced quote: a phrase needs a closing "')
        pieces = re.split(r'("[^"]*")', text)
        depth = 0
        out = []
        for i, piece in enumerate(pieces):
            if i % 2:  # inside quotes: literal text
                out.append(piece)
                continue
            for ch in piece:
                depth += ch == "("
                depth -= ch == ")"
                if depth < 0:
                    raise QueryError("unbalanced parentheses: a ) without its (")
            self._check_fields(piece)
            piece = _FIELD.sub(lambda m: m.group(1).lower() + ":", piece)
            piece = self._tag_hash.sub(r"\1:", piece)
            piece = self._lower_clause.sub(lambda m: m.group(1) + ":" + m.group(2).lower(), piece)
            for m in re.finditer(r"(?:^|[\s(])([*?][^\s()]*)", piece):
                raise QueryError(f"{m.group(1)!r}: a word cannot start with * or ?")
            out.append(self.rewrite_dates(piece))
        if depth:
            raise QueryError("unbalanced parentheses: a ( without its )")
        result = "".join(out)
        check_operators(result)
        return result

    def parse(self, text: str, any_word: bool = False):
        """A Whoosh query from mirrorfs query syntax; QueryError when malformed.

        Words without an operator must all match, or with *any_word* any of them
        (documents matching more rank higher)."""
        cooked = self.preprocess(text)
        try:
            q = self.parser(any_word).parse(cooked)
        except QueryError:
            raise
        except Exception as exc:  # Whoosh's parser errors share no base class
            raise QueryError(f"cannot parse query {text!r}: {exc}") from None
        errors = _errors(q)
        if errors:
            raise QueryError(f"bad query {text!r}: {errors[0]}")
        if q is wquery.NullQuery or isinstance(q, wquery.qcore._NullQuery):
            raise QueryError(f"query {text!r} has only stop words (like 'the', 'and'); add a word")
        return q.accept(_single_cjk_prefix)


SYNTAX = QuerySyntax()


def parse_query(text: str, any_word: bool = False):
    """A Whoosh query from mirrorfs query syntax (see QuerySyntax.parse)."""
    return SYNTAX.parse(text, any_word)


def filters(types: Iterable[str] | None, messages: bool, tags: Iterable[str] | None,
            instances: Iterable[str] | None, paths: Iterable[str] | None):
    """The filter of a search: note *types* (all when None), message documents
    when *messages*, and any of *tags*, *instances*, *paths*."""
    parts = []
    if types:
        wanted = [t.lower() for t in types if t.lower() != "message"]
        if messages:
            wanted.append("message")
        parts.append(wquery.Or([wquery.Term("type", t) for t in wanted]) if wanted else wquery.NullQuery)
    elif not messages:
        parts.append(wquery.Not(wquery.Term("type", "message")))
    if tags:
        parts.append(wquery.Or([wquery.Term("tags", t.lstrip("#").lower()) for t in tags]))
    if instances:
        parts.append(wquery.Or([wquery.Term("instance", i.lower()) for i in instances]))
    if paths is not None:
        paths = list(paths)
        parts.append(wquery.Or([wquery.Term("path", p) for p in paths]) if paths else wquery.NullQuery)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else wquery.And(parts)
