"""The vector store: incremental, keyed by (embedder id, text sha256), secret-free, two processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from conftest import close_pipes
from counting_embedder import CountingEmbedder

from mirrorfs import chunks, embedders, vectors
from mirrorfs.embed_queue import EmbedQueue
from mirrorfs.errors import EmbedderRequestError
from mirrorfs.vault import Vault
from mirrorfs.vectors import VectorStore

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery staple"
SECRET = "zqmarzipanquokkax"


def _local() -> CountingEmbedder:
    return CountingEmbedder(embedders.get("local"))


def _nearest(vault, emb, text: str, limit: int = 3) -> list[tuple[str, str]]:
    store = VectorStore.for_vault(vault)
    return [(h.path, h.key) for h in store.search(emb, emb.embed([text])[0], limit)]


def _fill(vault) -> list[str]:
    paths = [vault.remember(t).path for t in (
        "Sam drinks green tea every morning.",
        "The spare key is under the blue flower pot.",
        "Lena plays the cello in a string quartet.")]
    s = vault.sessions.create("Trip planning")
    s.add_message("user", "Which train goes to Porto on Friday?")
    s.add_message("assistant", "The 9:00 Alfa Pendular, about three hours.")
    return paths + [s.relpath]


def test_unchanged_text_is_never_embedded_twice(vault):
    paths = _fill(vault)
    emb = _local()
    first = vectors.update(vault, None, emb)
    expected = {c.sha256 for p in Path(vault.root).rglob("*.md")
                for c in chunks.file_chunks(p.relative_to(vault.root).as_posix(), p.read_bytes())}
    assert first.embedded == len(emb.texts) == len(expected) and first.reused == first.chunks - first.embedded

    again = vectors.update(vault, None, emb)
    assert (again.files, again.embedded, len(emb.texts)) == (0, 0, len(expected))

    tea = Path(vault.root) / paths[0]
    os.utime(tea, ns=(tea.stat().st_atime_ns, tea.stat().st_mtime_ns + 10**9))  # touched, same bytes
    touched = vectors.update(vault, None, emb)
    assert (touched.files, touched.changed, touched.embedded) == (1, 0, 0)

    tea.write_bytes(tea.read_bytes() + b"\nHe takes it without sugar.\n")  # an edit, as in an editor
    edited = vectors.update(vault, None, emb)
    assert (edited.changed, edited.embedded) == (1, 1) and "without sugar" in emb.texts[-1]

    session = vault.sessions.load(paths[3])
    session.add_message("user", "And back on Sunday evening?")
    appended = vectors.update(vault, [paths[3]], emb)  # as a watcher hands over the path
    assert (appended.changed, appended.embedded, emb.texts[-1]) == (1, 1, "And back on Sunday evening?")

    moved = Path(vault.root) / "memory" / "renamed.md"
    os.rename(Path(vault.root) / paths[1], moved)  # a rename: same text, new path
    renamed = vectors.update(vault, None, emb)
    assert (renamed.deleted, renamed.changed, renamed.embedded) == (1, 1, 0)
    assert _nearest(vault, emb, "The spare key is under the blue flower pot.", 1) == [("memory/renamed.md", "")]


def test_a_deleted_note_drops_its_chunks(vault):
    paths = _fill(vault)
    emb = _local()
    vectors.update(vault, None, emb)
    store = VectorStore.for_vault(vault)
    before = store.count(emb.id)
    (Path(vault.root) / paths[2]).unlink()
    report = vectors.update(vault, [paths[2]], emb)
    assert report.deleted == 1 and store.count(emb.id) == before - 1
    assert paths[2] not in {p for p, _ in _nearest(vault, emb, "cello quartet", 10)}
    (Path(vault.root) / paths[3]).unlink()  # found by a whole-vault pass too
    assert vectors.update(vault, None, emb).deleted == 1
    assert store.count(emb.id) == before - 4  # its title chunk and two messages


def test_a_changed_model_id_gets_its_own_vectors(vault):
    paths = _fill(vault)
    a, b = _local(), CountingEmbedder(embedders.get("local"), version="0.5-other")
    assert a.id != b.id
    vectors.update(vault, None, a)
    vectors.update(vault, None, b)  # nothing reused across models: all embedded again
    assert len(b.texts) == len(a.texts) > 0
    store = VectorStore.for_vault(vault)
    assert store.stats()["vectors"] == {a.id: len(a.texts), b.id: len(b.texts)}

    tea = Path(vault.root) / paths[0]
    tea.write_bytes(tea.read_bytes().replace(b"green tea", b"black coffee"))
    vectors.update(vault, [paths[0]], a)  # only model a knows the new text
    a_made = len(a.texts)  # (queries below embed their text too)
    assert store.count(b.id) == store.count(a.id) - 1
    assert paths[0] in {p for p, _ in _nearest(vault, a, "black coffee", 1)}
    assert paths[0] not in {p for p, _ in _nearest(vault, b, "black coffee", 5)}
    vectors.update(vault, None, b)  # a whole-vault pass fills in what b lacks
    assert store.count(b.id) == store.count(a.id) and b.texts[-1].endswith("black coffee every morning.")
    assert store.drop(a.id) == a_made and list(store.stats()["vectors"]) == [b.id]


def test_locked_sections_and_secret_blocks_never_reach_the_embedder_or_the_store(vault, state_dir):
    vault.unlock(PASSPHRASE)
    vault.remember(f"The safe code is hidden under the {SECRET} jar", title="Safe code", secret=True)
    vault.remember(f"Visible part about the garden.\n\n```secret\nthe {SECRET} word\n```\n", title="Garden")
    s = vault.sessions.create("Private chat")
    s.add_message("user", f"Remember the {SECRET} thing", secret=True)
    s.add_message("assistant", "Noted, in plain words: the pantry")
    vault.lock()
    # Typed in an editor while locked: not sealed yet, and one block never closed.
    (Path(vault.root) / "notes").mkdir()
    (Path(vault.root) / "notes" / "typed.md").write_text(
        f"# Typed\n\nOpen words.\n\n```secret\n{SECRET}\n```\n\n## Later\n\n```secret\n{SECRET} again\n",
        encoding="utf-8")
    emb = _local()
    report = vectors.update(vault, None, emb)
    assert report.embedded > 0 and not report.warnings
    given = "\n".join(emb.texts)
    assert "Visible part about the garden." in given and "Open words." in given and "the pantry" in given
    assert SECRET not in given and "🔐" not in given
    store_files = [p for p in Path(state_dir).rglob("*") if p.is_file()]
    assert any(p.name == vectors.DB_NAME for p in store_files)
    assert [p for p in store_files if SECRET.encode() in p.read_bytes()] == []


def test_a_query_does_not_wait_for_an_update_in_another_process(vault):
    _fill(vault)
    emb = _local()
    vectors.update(vault, None, emb)
    store = VectorStore.for_vault(vault)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, filelock; l = filelock.FileLock(sys.argv[1]); l.acquire(); "
         "print('locked', flush=True); sys.stdin.read()", str(store.dir / "update.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        vault.remember("Tom runs a marathon every spring.")
        report = vectors.update(vault, None, emb, wait=False)
        assert report.busy and report.embedded == 0
        assert _nearest(vault, emb, "cello quartet", 1)[0][0].startswith("memory/lena")
    finally:
        holder.stdin.close()
        close_pipes(holder)
    assert vectors.update(vault, None, emb, wait=False).embedded == 1


UPDATER = r"""
import json, sys
from mirrorfs import embedders, vectors
from mirrorfs.vault import Vault
vault = Vault.open(sys.argv[1])
r = vectors.update(vault, None, embedders.get("local"))
print(json.dumps({"embedded": r.embedded, "busy": r.busy, "warnings": r.warnings}))
"""


def _run_updaters(vault, n: int) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-c", UPDATER, str(vault.root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_two_processes_updating_at_once_embed_each_text_once(vault):
    for i in range(150):
        vault.remember(f"Memory number {i}: the {['tea', 'train', 'garden'][i % 3]} note, item {i * 7}.")
    got = _run_updaters(vault, 2)
    assert [g["warnings"] for g in got] == [[], []] and not any(g["busy"] for g in got)
    unique = {c.sha256 for p in Path(vault.root).rglob("*.md")
              for c in chunks.file_chunks(p.relative_to(vault.root).as_posix(), p.read_bytes())}
    assert sum(g["embedded"] for g in got) == len(unique)
    db = sqlite3.connect(VectorStore.for_vault(vault).path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_a_warm_store_sees_another_processes_changes(vault):
    paths = _fill(vault)
    emb = embedders.get("local")
    vectors.update(vault, None, emb)
    assert _nearest(vault, emb, "marathon runner", 1)[0][0] != "memory/tom-runs.md"  # warm, in memory
    (Path(vault.root) / "memory" / "tom-runs.md").write_text(
        "---\ntype: memory\ntitle: Tom runs\n---\nTom runs a marathon every spring.\n", encoding="utf-8")
    (Path(vault.root) / paths[2]).unlink()
    _run_updaters(vault, 1)
    near = _nearest(vault, emb, "Tom runs a marathon every spring.", 10)
    assert near[0] == ("memory/tom-runs.md", "") and paths[2] not in {p for p, _ in near}
    ids = [h.cosine for h in VectorStore.for_vault(vault).search(emb, emb.embed(["tea"])[0], 50)]
    assert len(ids) == VectorStore.for_vault(vault).count(emb.id)  # no stale row left in memory


def test_a_damaged_store_file_is_rebuilt(vault, tmp_path):
    _fill(vault)
    emb = embedders.get("local")
    store = VectorStore(vault.state_dir)
    store.update(vault, None, emb)
    path = store.path
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    again = VectorStore(Vault.open(vault.root).state_dir)
    assert again.update(vault, None, emb).embedded > 0
    hits = again.search(emb, emb.embed(["green tea"])[0], 1)
    assert hits and np.isfinite(hits[0].cosine)
    again.close()


class _Failing(CountingEmbedder):
    def embed(self, texts):
        raise EmbedderRequestError("http://127.0.0.1:9/api/embed answered HTTP 500")


def test_the_watchers_changes_are_embedded_in_the_background(vault):
    emb = _local()
    done, errors = [], []
    queue = EmbedQueue(vault, emb, on_done=done.append, on_error=errors.append).start()
    try:
        queue.submit(None)
        assert queue.wait_idle(60) and done[-1].embedded > 0
        rel = vault.remember("Tom runs a marathon every spring.").path
        queue.submit([rel])
        queue.submit({rel: (Path(vault.root) / rel).read_bytes()})  # coalesced with the first
        assert queue.wait_idle(60)
        assert emb.texts[-1] == "Tom runs a marathon every spring.\n\nTom runs a marathon every spring."
        assert _nearest(vault, emb, "Tom runs a marathon every spring.", 1) == [(rel, "")]
    finally:
        queue.stop()
    assert not queue._thread.is_alive() and errors == []


def test_a_failing_embedder_reports_and_keeps_the_queue_alive(vault):
    errors = []
    queue = EmbedQueue(vault, _Failing(embedders.get("local")), on_error=errors.append).start()
    try:
        queue.submit(None)
        assert queue.wait_idle(60)
        queue.submit(None)
        assert queue.wait_idle(60)
    finally:
        queue.stop()
    assert [str(e) for e in errors] == ["http://127.0.0.1:9/api/embed answered HTTP 500"] * 2
    assert VectorStore.for_vault(vault).stats()["files"] == 0  # nothing half-stored


class _Gated(CountingEmbedder):
    """Embeds only once the gate opens; tells when it is waiting."""

    def __init__(self, inner):
        super().__init__(inner)
        self.waiting, self.gate = threading.Event(), threading.Event()

    def embed(self, texts):
        self.waiting.set()
        assert self.gate.wait(60)
        return super().embed(texts)


def test_a_query_in_another_thread_is_answered_while_an_update_runs(vault):
    _fill(vault)
    local = embedders.get("local")
    vectors.update(vault, None, local)
    vault.remember("Tom runs a marathon every spring.")
    gated = _Gated(local)
    worker = threading.Thread(target=vectors.update, args=(vault, None, gated))
    worker.start()
    try:
        assert gated.waiting.wait(60)  # the update is inside the embedder, mid-transaction
        near = _nearest(vault, local, "Sam drinks green tea every morning.", 1)
        assert near[0][0].startswith("memory/sam-drinks")
    finally:
        gated.gate.set()
        worker.join(60)
    assert _nearest(vault, local, "Tom runs a marathon every spring.", 1)[0][0].startswith("memory/tom-runs")
