"""Markdown memory folders of other tools, adopted in place: reported, never rewritten."""

from __future__ import annotations

from pathlib import Path

from importing import vault_bytes

from mirrorfs import import_markdown
from mirrorfs.vault import Vault


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return root


def openclaw(tmp_path) -> Path:
    return write(tmp_path / "workspace", {
        "AGENTS.md": "# Operating instructions\n\nRead SOUL.md first.\n",
        "SOUL.md": "# Soul\r\n\r\nCurious, kind, brief.\r\n",  # CRLF: must stay CRLF
        "USER.md": "# User\n\nSam, lives by the sea.\n",
        "MEMORY.md": "# Long-term memory\n\n- Sam prefers tea.\n",
        "memory/2026-01-15.md": "# 2026-01-15\n\n- Booked the night train.\n",
        "memory/heartbeat-state.json": '{"lastChecks": {}}\n',
        ".git/HEAD": "ref: refs/heads/main\n",
    })


def test_an_openclaw_workspace_is_reported_as_mirrorfs_will_read_it(tmp_path):
    root = openclaw(tmp_path)
    before = vault_bytes(root)
    report = import_markdown.survey(root)
    assert vault_bytes(root) == before
    assert report.kinds == ["an OpenClaw workspace"]
    roles = {f.path: f.role for f in report.files}
    assert roles == {
        "AGENTS.md": "note", "MEMORY.md": "note", "SOUL.md": "identity", "USER.md": "note",
        "memory/2026-01-15.md": "memory", "memory/heartbeat-state.json": "not_read",
    }
    assert report.lines() == [
        f"markdown {root}: an OpenClaw workspace",
        "identity: 1",
        "  SOUL.md  (no `type: soul` front matter: `mirrorfs soul` and every instance read it as it is)",
        "memories: 1",
        "  memory/2026-01-15.md  (an OpenClaw daily log; listed by `memory list` and found by `search`; `recall` "
        "finds it once it has `type: memory`)",
        "sessions: 0",
        "notes: 3",
        "  AGENTS.md  (an OpenClaw workspace file: a note, found by `search`)",
        "  MEMORY.md  (OpenClaw's long-term memory: a note, found by `search`, not by `recall`)",
        "  USER.md  (an OpenClaw workspace file: a note, found by `search`)",
        "not read: 1",
        "  memory/heartbeat-state.json  (mirrorfs reads only .md files)",
        "problems: 0",
        "dry run: nothing was changed. `mirrorfs import markdown PATH --adopt` (or `mirrorfs init PATH`) makes "
        "this folder a vault: it adds .mirrorfs/config.yaml, the vault folders and SOUL.md / README-mirrorfs.md "
        "where missing, and changes no existing file.",
    ]


def test_adopting_a_folder_adds_files_and_changes_no_byte(tmp_path):
    root = openclaw(tmp_path)
    before = {p: (root / p).read_bytes() for p in vault_bytes(root)}
    mtimes = {p: (root / p).stat().st_mtime_ns for p in before}
    report = import_markdown.adopt(root, instance="laptop")
    assert report.adopted and report.changed == []
    assert all((root / p).read_bytes() == data for p, data in before.items())
    assert all((root / p).stat().st_mtime_ns == t for p, t in mtimes.items())
    assert report.added == [".mirrorfs/config.yaml", "README-mirrorfs.md", "instances/laptop.md"]
    vault = Vault.open(root, instance="laptop")
    assert vault.soul.body == "# Soul\r\n\r\nCurious, kind, brief.\r\n"
    assert [m.path for m in vault.memory.list()] == ["memory/2026-01-15.md"]
    assert vault.search("night train", sessions=False)[0].path == "memory/2026-01-15.md"


def test_basic_memory_and_memory_tool_folders(tmp_path):
    basic = write(tmp_path / "basic", {
        "notes/coffee.md": "---\ntitle: Coffee brewing\ntype: note\npermalink: coffee-brewing\ntags:\n- coffee\n---\n\n"
                           "# Coffee\n\n## Observations\n- [method] Pour over #brewing\n\n## Relations\n- relates_to [[Tea]]\n",
        "memory/tea.md": "---\ntitle: Tea\ntype: memory\nkind: preference\n---\n\nSam prefers tea.\n",
        "broken.md": "---\ntitle: [unclosed\n---\nbody\n",
        "binary.md": b"\x00\x01\x02",
    })
    report = import_markdown.survey(basic)
    assert report.kinds == ["a basic-memory project"]
    by_path = {f.path: (f.role, f.remark) for f in report.files}
    assert by_path["notes/coffee.md"] == (
        "note", "a basic-memory note: read as a note; its observations and relations stay text")
    assert by_path["memory/tea.md"] == ("memory", None)
    assert by_path["binary.md"] == ("problem", "binary file (contains NUL bytes)")
    role, remark = by_path["broken.md"]
    assert role == "note" and remark.startswith("front matter unparseable (") and "never edited by mirrorfs" in remark
    memories = write(tmp_path / "memories", {"preferences.md": "Sam likes tea.\n", "project/notes.xml": "<n/>\n"})
    report = import_markdown.survey(memories)
    assert report.kinds == ["an Anthropic memory-tool /memories folder"]
    assert [(f.path, f.role) for f in report.files] == [("preferences.md", "note"), ("project/notes.xml", "not_read")]
