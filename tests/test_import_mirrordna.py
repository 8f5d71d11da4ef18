"""MirrorDNA files written by mirrorfs's own export: checksums verified, links kept, idempotent."""

from __future__ import annotations

import pytest
from importing import imported, vault_bytes

from mirrorfs.import_sources import import_path
from mirrorfs.session import link_target
from mirrorfs.vault import Vault


@pytest.fixture
def exported(tmp_path):
    """Two linked sessions of another vault, exported as MirrorDNA files."""
    src = Vault.init(tmp_path / "phone-vault", name="Mira", instance="phone")
    first = src.sessions.create("Trip planning", category="travel", tags=["lisbon"])
    first.add_message("user", "Where should we go in March?")
    first.add_message("assistant", "Lisbon.\n\n**user** · phone · 2026-01-01T00:00:00.000+00:00 is not a header here")
    second = src.sessions.create("Trip planning, part 2", previous=first.id)
    second.add_message("user", "Book the night train.", tokens=7)
    out = tmp_path / "exports"
    out.mkdir()

    def write():
        for s in (first, second):
            (out / f"{s.id}.md").write_text(s.export("mirrordna"), encoding="utf-8")

    write()
    return src, first, second, out, write


def test_counts_links_and_a_second_import(vault, exported):
    src, first, second, out, _ = exported
    report = import_path(vault, "mirrordna", out)
    assert (report.sessions_new, report.messages_new, report.skipped) == (2, 3, [])
    found = imported(vault.root)
    assert set(found) == {first.id, second.id}
    meta, messages, preamble = found[first.id]
    assert [(m.role, m.content) for m in messages] == [(m.role, m.content) for m in first.get_messages()]
    assert [m.time for m in messages] == [m.time for m in first.get_messages()]
    assert [m.meta["origin_instance"] for m in messages] == ["phone", "phone"]
    assert (meta["category"], meta["tags"]) == ("travel", ["lisbon", "mirrordna"])
    assert "checksum verified" in preamble
    assert link_target(found[second.id][0]["previous"]) == meta["id"]
    assert link_target(meta["next"]) == found[second.id][0]["id"]
    before = vault_bytes(vault.root)
    again = import_path(vault, "mirrordna", out)
    assert vault_bytes(vault.root) == before and again.sessions_unchanged == 2 and again.written == []


def test_a_newer_export_adds_only_the_new_messages(vault, exported):
    src, first, second, out, write = exported
    import_path(vault, "mirrordna", out)
    second.add_message("assistant", "Booked: 24 March, 21:40.")
    write()
    report = import_path(vault, "mirrordna", out)
    assert (report.sessions_updated, report.sessions_unchanged, report.messages_new, report.messages_unchanged) == (
        1, 1, 1, 3)
    assert [m.content for m in imported(vault.root)[second.id][1]] == [
        "Book the night train.", "Booked: 24 March, 21:40."]


def test_a_checksum_mismatch_is_reported_and_not_imported(vault, exported):
    src, first, second, out, _ = exported
    path = out / f"{first.id}.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Lisbon.", "Porto."), encoding="utf-8")
    (out / "notes.md").write_text("# A plain note\n", encoding="utf-8")
    report = import_path(vault, "mirrordna", out)
    assert [s.line() for s in report.skipped] == [
        f"skipped {first.id}.md: checksum_sha256 does not match its content: it was changed or damaged after "
        "the export; not imported",
        "skipped notes.md: not a MirrorDNA file (no `standard: MirrorDNA` in its front matter)",
    ]
    assert set(imported(vault.root)) == {second.id}
    assert "Porto" not in "".join(str(p.read_bytes()) for p in vault.root.rglob("*.md"))


def test_a_message_that_looks_like_a_header_is_not_split_silently(vault, tmp_path):
    src = Vault.init(tmp_path / "other", name="Mira", instance="phone")
    s = src.sessions.create("Format notes")
    s.add_message("user", "A header looks like this:\n\n**user** · phone · 2026-01-01T00:00:00.000+00:00\n\nthen text.")
    path = tmp_path / "format.md"
    path.write_text(s.export("mirrordna"), encoding="utf-8")
    report = import_path(vault, "mirrordna", path)
    assert [x.line() for x in report.skipped] == [
        "skipped format.md: 2 messages read where message_count says 1; a message text holds a line that looks "
        "like a message header, so it cannot be split safely"]
    assert report.sessions_new == 0
