"""The table of search fields: one row makes a field of the schema, of the query and of the documents."""

from __future__ import annotations

import pytest
from whoosh.filedb.filestore import RamStorage

from mirrorfs import documents, query
from mirrorfs.clock import naive_utc
from mirrorfs.errors import QueryError
from mirrorfs.fields import DATE, FIELDS, ID, TABLE, FieldTable, SearchField, front

NOTE = b"---\ntype: memory\ntitle: Walk\nmood: Cheerful\ndue: 2026-05-02\n---\n\nA walk by the river.\n"
SESSION = (b"---\ntype: session\ntitle: Chat\ncategory: Travel\nmood: Calm\n---\n\n"
           b"### user \xc2\xb7 2026-03-01 10:00\n"
           b'<!-- mirrorfs:message {"id": "m1", "role": "User", "time": "2026-03-01T10:00:00+00:00", '
           b'"instance": "Phone"} -->\n\nA walk tomorrow?\n')

MOOD = SearchField("mood", ID, note=front("mood"), query=("mood", "feeling"), stored=True, lower=True,
                   session=True)
DUE = SearchField("due", DATE, note=lambda facts: naive_utc(facts.meta.get("due")), query=("due",))
TABLE_PLUS = FieldTable(FIELDS + (MOOD, DUE))


def hits(table: FieldTable, text: str) -> list[tuple[str, str | None]]:
    ix = RamStorage().create_index(table.schema())
    writer = ix.writer()
    for rel, data in (("memory/walk.md", NOTE), ("sessions/chat.md", SESSION)):
        for doc in documents.file_documents(rel, data, table).docs:
            writer.add_document(**doc)
    writer.commit()
    with ix.searcher() as s:
        found = s.search(query.QuerySyntax(table).parse(text))
        return sorted(((h["path"], h.get("msg")) for h in found), key=lambda pm: (pm[0], pm[1] or ""))


def test_a_new_row_shows_up_in_the_schema_the_query_names_and_the_documents():
    assert {"mood", "due", "due_at"} <= set(TABLE_PLUS.schema().names())
    assert TABLE_PLUS.query_fields["feeling"] == "mood" and TABLE_PLUS.aliases()["mood"] == ["feeling"]
    note, = documents.file_documents("memory/walk.md", NOTE, TABLE_PLUS).docs
    assert note["mood"] == "cheerful" and note["due"] == "20260502"  # lowercased, a day term
    session, message = documents.file_documents("sessions/chat.md", SESSION, TABLE_PLUS).docs
    assert message["mood"] == "calm"  # a `session` row: the message carries its session's value
    assert hits(TABLE_PLUS, "feeling:CHEERFUL") == [("memory/walk.md", None)]
    assert hits(TABLE_PLUS, "mood:calm") == [("sessions/chat.md", None), ("sessions/chat.md", "m1")]
    assert hits(TABLE_PLUS, "mood:calm walk") == [("sessions/chat.md", "m1")]
    assert hits(TABLE_PLUS, "due:>=2026-05") == [("memory/walk.md", None)]
    with pytest.raises(QueryError, match=r"known fields: .*\bfeeling\b"):
        query.QuerySyntax(TABLE_PLUS).parse("colour:blue")


def test_the_default_table_does_not_know_a_field_it_has_no_row_for():
    assert "mood" not in TABLE.schema().names()
    with pytest.raises(QueryError, match="unknown field mood"):
        query.parse_query("mood:calm")


def test_rows_give_messages_their_own_values_lowercased():
    _, message = documents.file_documents("sessions/chat.md", SESSION).docs
    assert (message["type"], message["role"], message["instance"], message["category"]) == \
        ("message", "user", "phone", "travel")
    assert message["created"] == "20260301" and message["msg"] == "m1"


def test_a_table_needs_unique_names_and_a_body():
    with pytest.raises(ValueError):
        FieldTable(FIELDS + (SearchField("tags", ID),))
    with pytest.raises(ValueError):
        FieldTable([row for row in FIELDS if row.name != "body"])
