"""The index catalog: a base plus a journal of changed rows, read back the same by any process."""

from __future__ import annotations

import pickle

from mirrorfs import catalog


def row(n: int) -> tuple:
    return (n, n, n, f"{n:064x}", {"status": "ok", "title": f"Note {n}"})


def fresh_load(gen):
    """What another process would load (this process's cache forgotten)."""
    catalog.forget(gen)
    return catalog.load(gen)


def test_a_change_is_one_journal_record_and_every_reader_sees_it(tmp_path):
    base = catalog.save(tmp_path, {"files": {f"n{i}.md": row(i) for i in range(100)}, "schema": 4})
    base_bytes = (tmp_path / catalog.CATALOG_FILE).read_bytes()
    new = catalog.update(tmp_path, catalog.load(tmp_path), {"n1.md": row(1001), "x.md": row(7)}, ["n2.md"])
    assert (tmp_path / catalog.CATALOG_FILE).read_bytes() == base_bytes  # the base is not rewritten
    assert new["files"]["n1.md"] == row(1001) and "n2.md" not in new["files"] and len(new["files"]) == 100
    assert catalog.load(tmp_path) is new
    assert fresh_load(tmp_path) == new
    assert base["files"]["n1.md"] == row(1)  # what a reader held stays as it was


def test_a_torn_last_record_is_ignored_and_overwritten(tmp_path):
    catalog.save(tmp_path, {"files": {"a.md": row(1)}})
    catalog.update(tmp_path, catalog.load(tmp_path), {"b.md": row(2)}, [])
    with open(tmp_path / catalog.JOURNAL_FILE, "ab") as f:
        f.write(pickle.dumps((0.0, {"c.md": row(3)}, []))[:-5])  # a crash mid-append
    loaded = fresh_load(tmp_path)
    assert sorted(loaded["files"]) == ["a.md", "b.md"]
    catalog.update(tmp_path, loaded, {"d.md": row(4)}, [])
    assert sorted(fresh_load(tmp_path)["files"]) == ["a.md", "b.md", "d.md"]


def test_a_journal_left_beside_a_newer_base_is_ignored(tmp_path):
    catalog.save(tmp_path, {"files": {"a.md": row(1)}})
    catalog.update(tmp_path, catalog.load(tmp_path), {"a.md": row(99)}, [])
    old_journal = (tmp_path / catalog.JOURNAL_FILE).read_bytes()
    catalog.save(tmp_path, {"files": {"a.md": row(2)}})
    # A crash between writing the new base and removing the old journal:
    (tmp_path / catalog.JOURNAL_FILE).write_bytes(old_journal)
    assert fresh_load(tmp_path)["files"]["a.md"] == row(2)


def test_a_long_journal_is_folded_into_a_new_base(tmp_path):
    first = catalog.save(tmp_path, {"files": {}})["epoch"]
    for i in range(20):
        catalog.update(tmp_path, catalog.load(tmp_path), {f"n{i}.md": row(i)}, [], compact_bytes=500)
    assert catalog.load(tmp_path)["epoch"] != first  # a new base was written
    journal = tmp_path / catalog.JOURNAL_FILE
    assert (journal.stat().st_size if journal.exists() else 0) < (tmp_path / catalog.CATALOG_FILE).stat().st_size
    assert fresh_load(tmp_path)["files"] == {f"n{i}.md": row(i) for i in range(20)}
