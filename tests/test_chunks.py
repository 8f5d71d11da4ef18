"""What is embedded: memory notes whole or by heading, sessions by message, secrets never."""

from __future__ import annotations

from mirrorfs import chunks, messages

SECRET = "zqplumtartx"


def _memory(body: str, title: str = "Tea") -> str:
    return f"---\ntype: memory\ntitle: {title}\n---\n{body}"


def test_short_memory_is_one_chunk_with_its_title():
    (c,) = chunks.note_chunks("memory/tea.md", _memory("Sam drinks green tea.\n\n## Why\n\nHe likes it.\n"))
    assert (c.path, c.key, c.type, c.doc) == ("memory/tea.md", "", "memory", "note")
    assert c.text == "Tea\n\nSam drinks green tea.\n\n## Why\n\nHe likes it."
    assert c.sha256 == chunks.sha256(c.text)


def test_long_memory_and_other_notes_are_cut_by_heading_outside_code_fences():
    para = "word " * 200
    body = f"Lead text.\n\n## Morning\n\n{para}\n\n```\n## not a heading\n```\n\n## Empty\n\n## Morning\n\n{para}\n"
    got = chunks.note_chunks("memory/long.md", _memory(body, "Routine"))
    assert [c.key for c in got] == ["", "#Morning", "#Morning~2"]
    assert got[0].text == "Routine\n\nLead text."
    assert got[1].text.startswith("Routine › Morning\n\n") and "## not a heading" in got[1].text
    plain = chunks.note_chunks("notes/x.md", "# Title\n\nshort\n")
    assert [(c.key, c.text, c.type) for c in plain] == [("#Title", "x › Title\n\nshort", "note")]


def test_a_long_section_is_cut_at_paragraphs_with_numbered_keys():
    paras = "\n\n".join(f"Paragraph {i} " + "text " * 150 for i in range(6))
    got = chunks.note_chunks("notes/big.md", f"## Part\n\n{paras}\n")
    assert [c.key for c in got] == ["#Part"] + [f"#Part~{i}" for i in range(2, len(got) + 1)]
    assert len(got) >= 3 and all(len(c.text) <= chunks.MAX_CHARS + 40 for c in got)


def test_a_session_is_one_chunk_per_message_keyed_by_id():
    t = messages.parse_time("2026-11-21T10:04:00+00:00")
    a = messages.Message("m1", "user", t, "laptop", "Where is the key?")
    b = messages.Message("m2", "assistant", t, "laptop", "Under the pot.")
    empty = messages.Message("m3", "tool", t, "laptop", "")
    text = "---\ntype: session\ntitle: Keys\n---\n" + "".join(messages.render(m) for m in (a, b, empty))
    got = chunks.note_chunks("sessions/laptop/keys.md", text)
    assert [(c.key, c.doc, c.text) for c in got] == [
        ("", "note", "Keys"), ("m1", "message", "Where is the key?"), ("m2", "message", "Under the pot.")]


def test_locked_sections_and_secret_blocks_are_left_out():
    body = (f"Visible words.\n\n%%🔐β {'A' * 64} 🔐%%\n\n```secret hint: the jar\n{SECRET}\n```\n\n"
            f"Also 🔐β {'B' * 48} 🔐 inline.\n\n```secret\nunterminated {SECRET}\n")
    for path, text in (("memory/m.md", _memory(body)), ("notes/n.md", body)):
        got = chunks.note_chunks(path, text)
        assert got, path
        joined = "\n".join(c.text for c in got)
        assert SECRET not in joined and "🔐" not in joined and "AAAA" not in joined
        assert "Visible words." in joined
