"""Claude.ai exports (tests/fixtures/claude: attachments, thinking, tool use, a branch, an empty chat)."""

from __future__ import annotations

import json
import zipfile

from importing import FIXTURES, imported, vault_bytes

from mirrorfs.import_sources import import_path

EXPORT = FIXTURES / "claude" / "conversations.json"
NEWER = FIXTURES / "claude" / "newer" / "conversations.json"
BREAD = "0b6e2a4c-1d3f-4a5b-8c7d-9e0f1a2b3c4d"
EMPTY = "1c7f3b5d-2e4a-4b6c-9d8e-0f1a2b3c4d5e"
HAIKU = "2d8a4c6e-3f5b-4c7d-8e9f-1a2b3c4d5e6f"
JAM = "3e9b5d7f-4a6c-4d8e-9fa0-2b3c4d5e6f70"


def test_counts_in_equal_counts_out(vault, tmp_path):
    archive = tmp_path / "claude-export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(EXPORT, "conversations.json")
        z.writestr("users.json", "[]")
    convs = json.loads(EXPORT.read_text(encoding="utf-8"))
    report = import_path(vault, "claude", archive)
    found = imported(vault.root)
    assert set(found) == {c["uuid"] for c in convs}
    shown = {BREAD: ["6c1d-0001", "6c1d-0002", "6c1d-0003", "6c1d-0004"], EMPTY: [], HAIKU: ["7e2f-0001", "7e2f-0003"]}
    for cid, ids in shown.items():
        assert [m.meta["origin_id"] for m in found[cid][1]] == ids
    assert (report.sessions_new, report.messages_new, report.messages_left_out, report.skipped) == (3, 6, 0, [])
    assert report.notes == ["1 conversation(s) have other branches (1 message(s): regenerated or edited turns) "
                            "that are not imported; each session's preamble says so"]


def test_messages_keep_attachments_thinking_and_tool_use(vault):
    import_path(vault, "claude", EXPORT)
    meta, messages, preamble = imported(vault.root)[BREAD]
    assert meta["title"] == "Sourdough schedule" and meta["created"].isoformat().startswith("2025-02-14T")
    first, second, _, fourth = messages
    assert first.role == "user" and first.content.startswith("Plan a sourdough bake for Saturday morning.")
    # The extracted text of an attachment is kept, in a fence its own backticks cannot close.
    assert "[attachment: starter-notes.txt · txt · 118 bytes]\n\n````\nStarter fed at 20:00" in first.content
    assert first.content.endswith("[file: kitchen.jpg]")
    assert [a["type"] for a in first.meta["attachments"]] == ["attachment", "file"]
    assert second.content == ("_Thinking:_\n\n> Six hours to double, so feed the night before.\n\n"
                              "Feed the starter Friday 20:00, mix at 08:00, bake at 15:00.")
    assert second.meta["content_types"] == ["text", "thinking"]
    assert "Tool call `artifacts`:" in fourth.content and '"title": "Bake checklist"' in fourth.content
    assert fourth.content.endswith("Tool result `artifacts`:\n\n```\nOK\n```")
    assert first.time.isoformat().startswith("2025-02-14T08:01:12.901")


def test_empty_and_branched_conversations(vault):
    import_path(vault, "claude", EXPORT)
    found = imported(vault.root)
    meta, messages, preamble = found[EMPTY]
    assert (meta["title"], messages) == ("Untitled conversation", [])
    assert "The source holds no messages for this conversation." in preamble
    meta, messages, preamble = found[HAIKU]
    assert messages[-1].content.startswith("Salt breath of the moon")
    assert "Summary: A short poem." in preamble
    assert "The export holds 1 message(s) on other branches of this conversation" in preamble


def test_a_second_import_changes_no_byte_and_a_newer_one_adds_only_new(vault):
    import_path(vault, "claude", EXPORT)
    before = vault_bytes(vault.root)
    same = import_path(vault, "claude", EXPORT)
    assert vault_bytes(vault.root) == before and same.written == []
    old = imported(vault.root)
    report = import_path(vault, "claude", NEWER)
    now = imported(vault.root)
    assert (report.sessions_new, report.sessions_updated, report.sessions_unchanged, report.messages_new) == (1, 1, 2, 4)
    assert [m.meta["origin_id"] for m in now[BREAD][1]] == [m.meta["origin_id"] for m in old[BREAD][1]] + [
        "6c1d-0005", "6c1d-0006"]
    assert [m.content for m in now[JAM][1]] == ["Fruit to sugar ratio for plum jam?", "About 1:0.75 by weight."]
    after = vault_bytes(vault.root)
    assert {p for p in after if after[p] != before.get(p)} == {
        f"sessions/import/{now[BREAD][0]['id']}.md", f"sessions/import/{now[JAM][0]['id']}.md"}


def test_bad_conversations_are_one_line_each(vault, tmp_path):
    odd = tmp_path / "conversations.json"
    odd.write_text(json.dumps([{"name": "No id"}, {"uuid": "u1", "name": "Bad", "chat_messages": "x"}, 7,
                               {"uuid": "u2", "name": "Ok", "chat_messages": [{"uuid": "m", "sender": "human",
                                                                               "text": "hi"}]}]), encoding="utf-8")
    report = import_path(vault, "claude", odd)
    assert [s.line() for s in report.skipped] == [
        'skipped conversation #1 "No id": it has no "uuid"',
        'skipped conversation #2 "Bad" (u1): "chat_messages" is not a list',
        "skipped conversation #3: not a JSON object",
    ]
    assert report.sessions_new == 1 and report.messages_new == 1
