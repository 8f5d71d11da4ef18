"""Bounded snippets give the snippets a whole-file read gives, on real notes
(Obsidian's help in English and Japanese, from the `corpora` fixture's copy)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from mirrorfs import messages as messages_mod
from mirrorfs import note as note_mod
from mirrorfs import search
from mirrorfs.analysis import term_positions
from mirrorfs.crypto import strip_sections
from mirrorfs.highlight import highlight, term_spans
from mirrorfs.snippets import SNIPPET_CHARS, SNIPPET_READ_BYTES, NoteTexts, lead


def _corpus(corpora: Path, limit: int | None = None) -> list[Path]:
    notes = sorted((corpora / "obsidian-help").rglob("*.md"))
    return notes[:limit] if limit else notes


def _whole_body(path) -> str:
    """A note's body as snippets read it before they were bounded: the whole file."""
    return strip_sections(note_mod.body_of(note_mod.decode(path.read_bytes())[1]))


def test_bounded_spans_are_the_whole_text_spans_on_the_corpus(corpora):
    rng = random.Random(7)
    checked = 0
    for path in _corpus(corpora):
        text = _whole_body(path)
        vocabulary = sorted(term_positions(text))
        if not vocabulary:
            continue
        for k in (1, 2, 4):
            terms = frozenset(rng.sample(vocabulary, min(k, len(vocabulary))))
            assert term_spans(text, terms) == term_spans(text, terms, bounded=False), (path, terms)
            assert highlight(text, terms, chars=SNIPPET_CHARS) == highlight(
                text, terms, chars=SNIPPET_CHARS, bounded=False), (path, terms)
            checked += 1
    assert checked > 300


def test_note_hits_have_the_whole_file_snippets(vault, corpora):
    notes = _corpus(corpora)[::3]
    (vault.root / "notes").mkdir(exist_ok=True)
    for i, path in enumerate(notes):
        shutil.copyfile(path, vault.root / "notes" / f"n{i:03d}.md")
    for query in ("link", "plugin", "vault", "ノート", "graph view"):
        hits = search.search(vault, query, limit=20)
        assert hits, query
        terms = frozenset(search.open_index(vault).query_terms(search.open_index(vault).parse(query)))
        for h in hits:
            body = _whole_body(vault.root / h.path)
            expected = highlight(body, terms, chars=SNIPPET_CHARS, bounded=False) or lead(body)
            assert h.snippet == " ".join(expected.split()), (query, h.path)


def test_message_hits_read_their_own_block_and_match_the_whole_session(vault, corpora):
    paragraphs = [p for path in _corpus(corpora)[::4]
                  for p in _whole_body(path).split("\n\n") if len(p) > 80]
    s = vault.sessions.create("Reading the help", tags=["help"])
    for i, p in enumerate(paragraphs[::max(1, len(paragraphs) // 300)]):  # English and Japanese
        s.add_message("user" if i % 2 else "assistant", p)
    text = s.path.read_text("utf-8")
    assert len(text) > 20_000
    for query in ("link", "plugin", "canvas", "ノート"):
        hits = [h for h in search.search(vault, query, limit=20) if h.doc == "message"]
        assert hits, query
        idx = search.open_index(vault)
        terms = idx.query_terms(idx.parse(query))
        for h in hits:
            content = strip_sections(messages_mod.find(text, h.message_id).content)
            expected = highlight(content, terms, chars=SNIPPET_CHARS, bounded=False) or lead(content)
            assert h.snippet == " ".join(expected.split()), (query, h.message_id)


def test_a_stored_block_that_moved_falls_back_to_the_session(vault):
    s = vault.sessions.create("Moving", tags=[])
    s.add_message("user", "the lighthouse keeper waved")
    rel = s.path.relative_to(vault.root).as_posix()
    texts = NoteTexts(vault.root, 10 << 20, {})
    msg_id = messages_mod.parse(note_mod.body_of(s.path.read_text("utf-8")))[1][0].id
    # A block offset that no longer points at the message (the file changed since).
    assert texts.message(rel, msg_id, (0, 40)) == "the lighthouse keeper waved"
    assert texts.message(rel, msg_id, (10 << 20, 40)) == "the lighthouse keeper waved"


@pytest.mark.parametrize("tail", ["é", "検索", "🙂"])
def test_a_bounded_read_never_splits_a_character(vault, tail):
    body = "x" * (SNIPPET_READ_BYTES - 10) + tail * 40 + "\nthe end\n"
    (vault.root / "notes").mkdir(exist_ok=True)
    (vault.root / "notes" / "big.md").write_text(body, "utf-8")
    texts = NoteTexts(vault.root, 10 << 20, {})
    text = texts.text("notes/big.md")
    assert text and body.startswith(text)
    assert len(text.encode("utf-8")) <= SNIPPET_READ_BYTES
