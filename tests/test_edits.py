"""mirrorfs.edits, mirrorfs.session_log and the argument checks of the MCP tools, on their own."""

from __future__ import annotations

import threading

import pytest

from mirrorfs import edits, lookup
from mirrorfs.errors import InvalidValueError, StaleEditError
from mirrorfs.mcp_tools import TOOLS, ToolError, check_arguments, instance_name_for
from mirrorfs.session_log import SessionLog
from mirrorfs.storage import sha256


def _note(vault, body: str, name: str = "memory/n.md", crlf: bool = False) -> tuple[str, str]:
    text = f"---\ntitle: N\ntags: [a]\n---\n{body}"
    data = text.replace("\n", "\r\n").encode() if crlf else text.encode()
    (vault.root / name).write_bytes(data)
    return name, sha256(data)


def test_each_command_changes_only_what_it_names(vault):
    path, sha = _note(vault, "one\ntwo\n")
    r = edits.edit_note(vault, path, sha, "insert", insert_line=1, insert_text="between")
    assert (vault.root / path).read_text() == "---\ntitle: N\ntags: [a]\n---\none\nbetween\ntwo\n"
    r = edits.edit_note(vault, path, r.sha256, "insert", insert_line=0, insert_text="top")
    r = edits.edit_note(vault, path, r.sha256, "append", text="end")
    r = edits.edit_note(vault, path, r.sha256, "str_replace", old_str="two", new_str="2")
    r = edits.edit_note(vault, path, r.sha256, "set_property", key="tags", value=["a", "b"])
    assert (vault.root / path).read_text() == "---\ntitle: N\ntags: [a, b]\n---\ntop\none\nbetween\n2\nend\n"
    r = edits.edit_note(vault, path, r.sha256, "unset_property", key="tags")
    assert r.changed and r.sha256 == sha256((vault.root / path).read_bytes())
    same = edits.edit_note(vault, path, r.sha256, "unset_property", key="tags")
    assert not same.changed and same.sha256 == r.sha256


def test_crlf_notes_keep_their_line_endings(vault):
    path, sha = _note(vault, "one\ntwo\n", crlf=True)
    edits.edit_note(vault, path, sha, "str_replace", old_str="one\ntwo", new_str="uno\ndos")
    assert (vault.root / path).read_bytes() == b"---\r\ntitle: N\r\ntags: [a]\r\n---\r\nuno\r\ndos\r\n"


def test_refusals_write_nothing(vault):
    path, sha = _note(vault, "tea\ntea\n")
    before = (vault.root / path).read_bytes()
    cases = {
        ("str_replace", "tea"): "old_str occurs 2 times in memory/n.md; include more context so it is unique",
        ("str_replace", "coffee"): "old_str was not found in the body of memory/n.md; copy it exactly from "
                                   "memory_read (locked sections cannot be edited here)",
        ("insert", 9): "insert_line must be a line number from 0 (the top) to 2 (the end)",
        ("set_property", "updated_by"): "updated_by is bookkeeping mirrorfs keeps itself; it cannot be changed by "
                                        "an edit",
    }
    for (command, arg), message in cases.items():
        kwargs = {"str_replace": {"old_str": arg, "new_str": "x"}, "insert": {"insert_line": arg, "insert_text": "x"},
                  "set_property": {"key": arg, "value": "x"}}[command]
        with pytest.raises(InvalidValueError) as exc:
            edits.edit_note(vault, path, sha, command, **kwargs)
        assert str(exc.value) == message
    with pytest.raises(InvalidValueError, match="expected_sha256 must be the 64 hex digits"):
        edits.edit_note(vault, path, "abc", "append", text="x")
    assert (vault.root / path).read_bytes() == before


def test_a_stale_sha_says_what_changed_when_the_read_is_known(vault):
    path, sha = _note(vault, "tea\n")
    edits.remember_read(vault, path, (vault.root / path).read_bytes())
    (vault.root / path).write_text("---\ntitle: N\ntags: [a]\n---\ncoffee\n")
    with pytest.raises(StaleEditError) as exc:
        edits.edit_note(vault, path, sha, "append", text="x")
    assert exc.value.summary == "Changes since your version: +1 -1 lines, first at line 5: was 'tea', now 'coffee'."
    assert exc.value.current == sha256((vault.root / path).read_bytes())
    _, unknown = _note(vault, "milk\n", name="memory/m.md")
    (vault.root / "memory/m.md").write_text("---\ntitle: M\n---\nwater\n")
    with pytest.raises(StaleEditError) as exc:
        edits.edit_note(vault, "memory/m.md", unknown, "append", text="x")
    assert exc.value.summary == "The version you read is not known on this device; the note now has 5 lines."


def test_locked_text_never_reaches_a_summary(vault):
    vault.unlock("pw")
    # Words, not digits: a digit run could turn up by chance in the sha256 the error names.
    m = vault.remember("PIN tangerine", secret=True, title="Pin")
    data = (vault.root / m.path).read_bytes()
    edits.remember_read(vault, m.path, data)
    (vault.root / m.path).write_bytes(data + b"\n```secret\nnew PIN persimmon\n```\n")
    with pytest.raises(StaleEditError) as exc:
        edits.edit_note(vault, m.path, sha256(data), "append", text="x")
    assert "persimmon" not in str(exc.value) and "tangerine" not in str(exc.value)


def test_session_log_shares_one_session_between_threads(vault):
    log = SessionLog(vault)
    out = []
    threads = [threading.Thread(target=lambda i=i: out.append(log.append("user", f"m{i}"))) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({o.session.id for o in out}) == 1 and sum(o.created for o in out) == 1
    assert sorted(m.content for m in out[0].session.get_messages()) == sorted(f"m{i}" for i in range(20))
    other = vault.sessions.create("theirs")
    phone = type(vault).open(vault.root, instance="phone")
    with pytest.raises(InvalidValueError, match="belongs to instance laptop"):
        SessionLog(phone).append("user", "hi", session=other.id)


def test_argument_checks_and_aliases():
    schema = {t["name"]: t["inputSchema"] for t in TOOLS}
    args = check_arguments("memory_edit", {"path": "p", "expected_sha256": "x", "command": "append",
                                           "content": "hello"}, schema["memory_edit"])
    assert args["text"] == "hello"
    args = check_arguments("memory_edit", {"path": "p", "expected_sha256": "x", "command": "str_replace",
                                           "find": "a", "content": "b"}, schema["memory_edit"])
    assert (args["old_str"], args["new_str"]) == ("a", "b")
    with pytest.raises(ToolError, match="memory_search needs query"):
        check_arguments("memory_search", {}, schema["memory_search"])
    with pytest.raises(ToolError, match="limit of memory_search must be an integer"):
        check_arguments("memory_search", {"query": "x", "limit": "5"}, schema["memory_search"])


def test_instance_names_from_client_names():
    assert instance_name_for("Claude Desktop") == "claude-desktop"
    assert instance_name_for("cursor-vscode") == "cursor-vscode"
    assert instance_name_for("Visual Studio Code") == "visual-studio-code"
    assert instance_name_for("Zéd  Éditeur!") == "zed-editeur"
    assert instance_name_for("日本語") == "mcp" and instance_name_for(None) == "mcp"


def test_since_days():
    import datetime as dt

    today = dt.date(2026, 11, 21)
    assert lookup.since_day("7d", today) == "2026-11-14" and lookup.since_day("2w", today) == "2026-11-07"
    assert lookup.since_day("2026-11-01T10:00") == "2026-11-01"
    with pytest.raises(InvalidValueError, match="since must be a date like 2026-11-21 or an age like 7d"):
        lookup.since_day("last tuesday")


def test_results_are_bounded_and_page(vault):
    import json

    from mirrorfs.mcp_calls import Toolbox
    from mirrorfs.mcp_tools import RESULT_BYTES

    words = " ".join(f"lighthouse{i % 50} keeper" for i in range(4000))
    (vault.root / "memory" / "long.md").write_text(f"---\ntitle: Long\n---\n{words}\n")
    for i in range(30):
        vault.remember(f"lighthouse keeper log {i} " + "x" * 900, title=f"Log {i}")
    tb = Toolbox(vault)
    seen, offset = "", 0
    while offset is not None:
        page = tb.call("memory_read", {"path": "memory/long.md", "offset": offset})
        assert not page.is_error
        assert len(json.dumps(page.data, ensure_ascii=False).encode()) <= RESULT_BYTES
        assert len(page.text.encode()) <= RESULT_BYTES
        seen += page.data["text"]
        offset = page.data["next_offset"]
    assert seen == f"{words}\n"
    hits = tb.call("memory_search", {"query": "lighthouse keeper", "limit": 25})
    assert len(json.dumps(hits.data, ensure_ascii=False).encode()) <= RESULT_BYTES
    assert len(hits.text.encode()) <= RESULT_BYTES
    description, text = tb.prompt("continue_conversation", {"topic": "lighthouse"})
    assert description == "Continue the conversation about lighthouse" and "mirror_status" in text
