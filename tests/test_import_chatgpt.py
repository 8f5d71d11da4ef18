"""ChatGPT exports (tests/fixtures/chatgpt: branched turns, images, files, tool calls, hidden and empty messages)."""

from __future__ import annotations

import json
import zipfile

from importing import FIXTURES, imported, vault_bytes

from mirrorfs.import_sources import import_path

EXPORT = FIXTURES / "chatgpt" / "conversations.json"
NEWER = FIXTURES / "chatgpt" / "newer" / "conversations.json"
LISBON = "67cec1a0-0a4c-8003-9a1e-6f1b2c3d4e5f"
TIDES = "67cec2b1-1b5d-8003-8b2f-7a2c3d4e5f60"
EMPTY = "67cec3c2-2c6e-8003-9c3a-8b3d4e5f6071"
PRIME = "67cec4d3-3d7f-8003-8d4b-9c4e5f607182"
PACKING = "67cec5e4-4e80-8003-9e5c-0d5f60718293"


def shown(conv: dict) -> list[dict]:
    """The messages on the branch ChatGPT shows, root first (read independently of the importer)."""
    out, node = [], conv["current_node"]
    while node:
        if conv["mapping"][node]["message"] is not None:
            out.append(conv["mapping"][node]["message"])
        node = conv["mapping"][node]["parent"]
    return out[::-1]


def empty(message: dict) -> bool:
    parts = message["content"].get("parts")
    return parts == [""]


def test_counts_in_equal_counts_out(vault):
    convs = json.loads(EXPORT.read_text(encoding="utf-8"))
    report = import_path(vault, "chatgpt", EXPORT)
    found = imported(vault.root)
    assert set(found) == {c["conversation_id"] for c in convs}
    total = sum(len(shown(c)) for c in convs)
    assert report.messages_new + report.messages_left_out == total
    assert report.messages_left_out == sum(1 for c in convs for m in shown(c) if empty(m)) == 3
    for c in convs:
        meta, messages, _ = found[c["conversation_id"]]
        assert [m.meta["origin_id"] for m in messages] == [m["id"] for m in shown(c) if not empty(m)]
        assert meta["title"] == c["title"] and meta["origin"] == "chatgpt"
    assert report.skipped == [] and report.sessions_new == 4


def test_the_shown_branch_is_imported_and_the_others_are_noted(vault):
    report = import_path(vault, "chatgpt", EXPORT)
    meta, messages, preamble = imported(vault.root)[LISBON]
    assert [m.content for m in messages] == [
        "Where should I go in March? Somewhere warm, by train.",
        "Lisbon: mild, sunny, and the night train from Madrid gets you there.",
        "How long is the night train from Madrid?",
        "About 9 hours, leaving at 21:40.",
    ]
    assert meta["origin_branches"] == 2
    assert ("The export holds 2 other branches of this conversation (3 messages: regenerated or edited turns) "
            "that ChatGPT did not show last; only the shown branch is imported.") in preamble
    assert report.notes == ["1 conversation(s) have other branches (3 message(s): regenerated or edited turns) "
                            "that are not imported; each session's preamble says so"]


def test_images_files_tool_calls_and_hidden_context(vault, tmp_path):
    # The export zip, as ChatGPT sends it: the JSON and the uploaded files side by side.
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(EXPORT, "conversations.json")
        z.writestr("file-Wq5Yd9bH2kLm3-tide-table.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
        z.writestr("user.json", "{}")
    import_path(vault, "chatgpt", archive)
    _, messages, _ = imported(vault.root)[TIDES]
    by_id = {m.meta["origin_id"]: m for m in messages}
    custom = by_id["b1"]
    assert (custom.role, custom.meta["hidden"], custom.meta["content_type"]) == ("user", True, "user_editable_context")
    assert "Be brief." in custom.content
    photo = by_id["b2"]
    assert photo.content == (
        "[image: tide-table.jpg · image/jpeg · 1536×1152] (in the export: `file-Wq5Yd9bH2kLm3-tide-table.jpg`)\n\n"
        "Here is a photo of the tide table and my notes. Plot the heights for me.\n\n"
        "[file: notes.csv · text/csv · 1843 bytes]")
    assert [a["id"] for a in photo.meta["attachments"]] == ["file-Wq5Yd9bH2kLm3", "file-Pq7Rt2Vx9Zb4N"]
    assert photo.meta["attachments"][0]["file"] == "file-Wq5Yd9bH2kLm3-tide-table.jpg"
    call = by_id["b3"]
    assert (call.role, call.meta["recipient"], call.meta["content_type"]) == ("assistant", "python", "code")
    assert call.content.startswith("```\nimport matplotlib.pyplot as plt\n")
    output = by_id["b4"]
    assert (output.role, output.meta["tool"], output.content) == ("tool", "python", "```\nSaved tides.png\n```")
    chart = by_id["b5"]
    assert chart.content == "[image: file_00000000a1b2c3d4e5f6a7b8c9d0e1f2 · 640×480]"
    drawing = by_id["b9"]
    assert drawing.meta["tool"] == "dalle.text2im" and drawing.meta["attachments"][0]["generated"] is True
    assert "b10" not in by_id  # the empty reply after the drawing
    assert by_id["b13"].content.endswith("Spring tide: 29 March 2025")
    assert by_id["b12"].meta["recipient"] == "web"


def test_empty_conversation_reasoning_and_missing_times(vault):
    import_path(vault, "chatgpt", EXPORT)
    found = imported(vault.root)
    meta, messages, preamble = found[EMPTY]
    assert messages == [] and "The source holds no messages for this conversation." in preamble
    _, messages, _ = found[PRIME]
    assert [m.meta.get("content_type") for m in messages] == [None, "thoughts", "reasoning_recap", None]
    assert messages[1].content == "**Checking small factors**\n1001 = 7 × 143 = 7 × 11 × 13."
    # A message without a time takes the one before it: order and merges stay by time.
    assert messages[3].time == messages[2].time
    assert messages[3].meta["model"] == "o3"


def test_a_second_import_changes_no_byte(vault):
    import_path(vault, "chatgpt", EXPORT)
    before = vault_bytes(vault.root)
    report = import_path(vault, "chatgpt", EXPORT)
    assert vault_bytes(vault.root) == before
    assert (report.sessions_new, report.sessions_updated, report.sessions_unchanged) == (0, 0, 4)
    assert (report.messages_new, report.messages_unchanged, report.written) == (0, 21, [])


def test_a_newer_export_adds_only_what_is_new(vault):
    import_path(vault, "chatgpt", EXPORT)
    old = imported(vault.root)
    files = {p: (vault.root / p).read_bytes() for p in vault_bytes(vault.root)}
    report = import_path(vault, "chatgpt", NEWER)
    now = imported(vault.root)
    assert (report.sessions_new, report.sessions_updated, report.sessions_unchanged) == (1, 1, 3)
    assert report.messages_new == 4
    assert [m.meta["origin_id"] for m in now[LISBON][1]] == [m.meta["origin_id"] for m in old[LISBON][1]] + ["a5", "a6"]
    assert [m.id for m in now[LISBON][1][:4]] == [m.id for m in old[LISBON][1]]
    assert [m.content for m in now[PACKING][1]] == ["What should I pack for Lisbon?", "Layers, a rain jacket, good shoes."]
    lisbon = f"sessions/import/{now[LISBON][0]['id']}.md"
    assert {p for p, data in files.items() if (vault.root / p).read_bytes() != data} == {lisbon}
    # The old bytes of the Lisbon session are all still there: only front matter values changed, messages appended.
    old_body = files[lisbon].split(b"\n---\n", 1)[1]
    assert (vault.root / lisbon).read_bytes().split(b"\n---\n", 1)[1].startswith(old_body)
    assert now[LISBON][0]["origin_updated"] == "1741603610.0"


def test_a_truncated_export_keeps_whole_conversations_and_says_where_it_broke(vault, tmp_path):
    data = EXPORT.read_bytes()
    cut = tmp_path / "conversations.json"
    end = data.index(b'"Is 1001 prime?"')
    cut.write_bytes(data[:end])
    report = import_path(vault, "chatgpt", cut)
    assert [s.line() for s in report.skipped] == [
        f"skipped conversations.json: ends early (truncated) after 3 conversations, near byte {end}; "
        "the rest is not imported"]
    found = imported(vault.root)
    assert set(found) == {LISBON, TIDES, EMPTY}
    assert len(found[TIDES][1]) == 13  # every file written is whole


def test_bad_json_and_bad_conversations_are_one_line_each(vault, tmp_path):
    garbage = tmp_path / "garbage" / "conversations.json"
    garbage.parent.mkdir()
    garbage.write_text("[{\"title\": \"x\", \"mapping\": {}}, nonsense]", encoding="utf-8")
    report = import_path(vault, "chatgpt", garbage)
    assert [s.line() for s in report.skipped] == [
        "skipped conversation #1 \"x\": it has no \"conversation_id\"",
        "skipped conversations.json: is not valid JSON (lexical error: invalid string in json text) after 1 "
        "conversations, near byte 41; the rest is not imported",
    ]
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([
        {"conversation_id": "c1", "title": "No mapping"},
        {"conversation_id": "c2", "title": "Bad mapping", "mapping": {"n": {"message": {"content": 5}, "parent": None}},
         "current_node": "n"},
        "a string",
    ]), encoding="utf-8")
    report = import_path(vault, "chatgpt", odd)
    assert [s.line() for s in report.skipped] == [
        "skipped conversation #1 \"No mapping\": it has no \"mapping\" of messages",
        "skipped conversation #3: not a JSON object",
    ]
    assert report.sessions_new == 1  # the odd message of #2 has no text: an empty session, its message left out
    assert report.messages_left_out == 1
    top = tmp_path / "object.json"
    top.write_text('{"conversations": []}', encoding="utf-8")
    assert [s.line() for s in import_path(vault, "chatgpt", top).skipped] == [
        "skipped object.json: not a JSON list of conversations (it does not start with '[')"]


def test_a_dry_run_counts_and_writes_nothing(vault):
    before = vault_bytes(vault.root)
    dry = import_path(vault, "chatgpt", EXPORT, dry_run=True)
    assert vault_bytes(vault.root) == before
    real = import_path(vault, "chatgpt", EXPORT)
    assert dry.to_dict() | {"dry_run": False, "written": []} == real.to_dict() | {"written": []}
    assert len(real.written) == 4
