"""Index.apply: the watcher's changes update only their documents, with the bytes it read,
and leave the same index a fresh build of the vault would."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from whoosh import index as windex
from whoosh import query as wquery

from mirrorfs import storage
from mirrorfs.index import Index
from mirrorfs.watcher import Change, Watcher

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 20


def note(title: str, body: str, **meta) -> bytes:
    fm = "".join(f"{k}: {v}\n" for k, v in {"type": "memory", "title": title, **meta}.items())
    return f"---\n{fm}---\n\n{body}\n".encode("utf-8")


SESSION = (b"---\ntype: session\ntitle: Trip\ntags: [travel]\ncategory: travel\n---\n\nPlans.\n\n"
           b"### user \xc2\xb7 2026-03-01 10:00\n"
           b'<!-- mirrorfs:message {"id": "m1", "role": "user", "time": "2026-03-01T10:00:00+00:00", '
           b'"instance": "laptop"} -->\n\nShall we take the night train to Lisbon?\n')


def put(root: Path, rel: str, data: bytes) -> Change:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return Change("added", rel, None, storage.sha256(data), data)


def state(idx: Index) -> tuple[dict, list]:
    """Everything the index holds, stat keys aside: catalog rows and every document."""
    files = {p: rec[3:] for p, rec in idx.catalog()["files"].items()}
    docs = sorted((sorted(h.fields.items()) for h in idx.search(wquery.Every(), limit=None)), key=repr)
    return files, docs


def fresh_state(root: Path, tmp_path: Path, vault_id: str) -> tuple[dict, list]:
    """What an index built from scratch over the vault as it is now holds."""
    idx = Index(root, tmp_path / "fresh-state", vault_id)
    try:
        idx.rebuild()
        return state(idx)
    finally:
        idx.close()


def toc_generation(idx: Index) -> int:
    return windex.open_dir(str(idx.layout.gen(idx.layout.current_name()))).latest_generation()


@pytest.fixture
def vault_root(tmp_path) -> Path:
    root = tmp_path / "v"
    put(root, "memory/tea.md", note("Tea", "Sam likes oolong.", tags="[drinks]"))
    put(root, "memory/coffee.md", note("Coffee", "Espresso after lunch."))
    put(root, "memory/old.md", note("Old", "Chicory, once."))
    return root


@pytest.fixture
def idx(vault_root, tmp_path):
    idx = Index(vault_root, tmp_path / "state", "vid")
    idx.ensure()
    yield idx
    idx.close()


def test_add_modify_delete_and_move_in_one_batch_is_one_commit_and_a_fresh_index(idx, vault_root, tmp_path):
    before = toc_generation(idx)
    added = put(vault_root, "sessions/trip.md", SESSION)
    modified = put(vault_root, "memory/tea.md", note("Tea", "Sam now prefers genmaicha.", tags="[drinks]"))
    (vault_root / "memory/old.md").unlink()
    coffee = (vault_root / "memory/coffee.md").read_bytes()
    (vault_root / "drinks").mkdir()
    os.rename(vault_root / "memory/coffee.md", vault_root / "drinks/espresso.md")
    brief = put(vault_root, "memory/brief.md", note("Brief", "Here and gone."))
    (vault_root / "memory/brief.md").unlink()
    report = idx.apply([
        added,
        Change("modified", modified.path, None, modified.sha256, modified.content),
        Change("deleted", "memory/old.md"),
        Change("moved", "drinks/espresso.md", "memory/coffee.md", storage.sha256(coffee), coffee),
        brief, Change("deleted", "memory/brief.md"),
    ])
    assert toc_generation(idx) == before + 1  # one Whoosh commit for the whole batch
    assert report.added == ["sessions/trip.md"] and report.changed == ["memory/tea.md"]
    assert report.deleted == ["memory/coffee.md", "memory/old.md"]
    assert report.renamed == [("memory/coffee.md", "drinks/espresso.md")] and not report.stale
    assert state(idx) == fresh_state(vault_root, tmp_path, "vid")
    assert [h.fields["path"] for h in idx.search(idx.parse("genmaicha"))] == ["memory/tea.md"]
    assert [h.fields["path"] for h in idx.search(idx.parse("espresso"))] == ["drinks/espresso.md"]
    assert [h.fields.get("msg") for h in idx.search(idx.parse("lisbon tag:travel"))] == ["m1"]


def test_apply_indexes_the_bytes_it_is_given_and_a_later_scan_learns_the_file(idx, vault_root):
    # The index must not read the file again: it indexes the change's bytes.
    on_disk = put(vault_root, "memory/tea.md", note("Tea", "Sam likes sencha."))
    read_by_watcher = note("Tea", "Sam likes hojicha.")
    idx.apply([Change("modified", on_disk.path, None, storage.sha256(read_by_watcher), read_by_watcher)])
    assert [h.fields["path"] for h in idx.search(idx.parse("hojicha"))] == ["memory/tea.md"]
    assert idx.search(idx.parse("sencha")) == []
    assert idx.catalog()["files"]["memory/tea.md"][1] == len(read_by_watcher)  # its size, for statistics
    # The row holds no stat of its own, so the next scan reads that file once.
    report = idx.reconcile()
    assert report.changed == ["memory/tea.md"]
    assert [h.fields["path"] for h in idx.search(idx.parse("sencha"))] == ["memory/tea.md"]
    assert idx.reconcile().changes == 0  # learnt: the next scan reads nothing


def test_conflict_copies_and_non_notes_are_left_out_and_a_move_out_is_a_deletion(idx, vault_root):
    copy = put(vault_root, "memory/tea.sync-conflict-20261121-100412-ABCDEFG.md", note("Tea", "kombucha"))
    other = put(vault_root, "memory/tea.txt", b"kombucha")
    assert idx.apply([copy, other]).changes == 0
    assert idx.search(idx.parse("kombucha")) == []
    os.rename(vault_root / "memory/coffee.md", vault_root / "memory/coffee.sync-conflict-20261121-100412-ABCDEFG.md")
    report = idx.apply([Change("moved", "memory/coffee.sync-conflict-20261121-100412-ABCDEFG.md",
                               "memory/coffee.md", copy.sha256, copy.content)])
    assert report.deleted == ["memory/coffee.md"] and idx.search(idx.parse("espresso")) == []


def test_the_bytes_the_index_already_has_are_not_indexed_again(idx, vault_root):
    data = (vault_root / "memory/tea.md").read_bytes()
    before = toc_generation(idx)
    report = idx.apply([Change("modified", "memory/tea.md", None, storage.sha256(data), data)])
    assert report.changes == 0 and toc_generation(idx) == before


HOLDER = textwrap.dedent("""
    import sys
    from mirrorfs.catalog import Layout
    lock = Layout(sys.argv[1]).lock()
    lock.acquire()
    print("holding", flush=True)
    sys.stdin.readline()
    lock.release()
""")


def test_changes_wait_while_another_process_holds_the_writer(idx, vault_root, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "state")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert child.stdout.readline().strip() == "holding"
        change = put(vault_root, "memory/mate.md", note("Mate", "Yerba mate in the gourd."))
        report = idx.apply([change], wait=0.2)
        assert report.stale and any("another process" in w for w in report.warnings)
        assert idx.search(idx.parse("yerba")) == []
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        assert child.wait(timeout=TIMEOUT) == 0
        child.stdout.close()
    assert idx.apply([]).added == ["memory/mate.md"]  # kept, and applied with the next batch
    assert [h.fields["path"] for h in idx.search(idx.parse("yerba"))] == ["memory/mate.md"]


def test_a_real_watchers_batches_leave_the_index_a_fresh_build_would(idx, vault_root, tmp_path):
    batches: queue.Queue = queue.Queue()
    watcher = Watcher(vault_root, batches.put).start()
    try:
        assert watcher.wait_ready(TIMEOUT)
        expected: set[str] = set()

        def apply_until(predicate) -> None:
            while True:
                batch = batches.get(timeout=TIMEOUT)
                idx.apply(batch)
                seen.update(c.path for c in batch)
                if predicate():
                    return

        seen: set[str] = set()
        (vault_root / "memory/tea.md").write_bytes(note("Tea", "Now rooibos, caffeine free."))
        put(vault_root, "sessions/trip.md", SESSION)
        expected |= {"memory/tea.md", "sessions/trip.md"}
        apply_until(lambda: expected <= seen)
        (vault_root / "memory/coffee.md").unlink()
        os.rename(vault_root / "sessions/trip.md", vault_root / "sessions/lisbon.md")
        expected |= {"memory/coffee.md", "sessions/lisbon.md"}
        apply_until(lambda: expected <= seen)
    finally:
        watcher.stop()
    assert state(idx) == fresh_state(vault_root, tmp_path, "vid")
    assert [h.fields["path"] for h in idx.search(idx.parse("rooibos"))] == ["memory/tea.md"]
