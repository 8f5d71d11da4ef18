"""The search index: always fresh without a watcher, never touches the vault,
survives deletion, corruption and a concurrent rebuild in another process."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import close_pipes

from mirrorfs import index as index_mod
from mirrorfs import search
from mirrorfs.vault import Vault

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import generate  # noqa: E402


def paths_of(results) -> list[str]:
    return [h.path for h in results]


def write(root: Path, rel: str, text: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    p.write_bytes(text)
    return p


def note(title: str, body: str, **meta) -> str:
    fm = "".join(f"{k}: {v}\n" for k, v in {"type": "memory", "title": title, **meta}.items())
    return f"---\n{fm}---\n\n{body}\n"


def tree_hashes(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def generated(tmp_path):
    """A small generated vault (sessions from several instances, planted words)."""
    root = tmp_path / "gen"
    manifest = generate.generate(root, **generate.SIZES["tiny"], seed=3, plant_every=6)
    return Vault.open(root, instance="tester"), manifest


def test_every_planted_word_is_found_in_its_file_and_message(generated):
    vault, manifest = generated
    assert len(manifest) > 30
    assert any("message" in w for w in manifest.values())
    for word, where in manifest.items():
        hits = search.search(vault, word, limit=5)
        assert len(hits) == 1, (word, paths_of(hits))
        assert hits[0].path == where["path"]
        assert hits[0].message_id == where.get("message")
        assert f"**{word}**" in hits[0].snippet
        if "message" in where:
            assert hits[0].doc == "message" and hits[0].role and hits[0].time and hits[0].session


def test_english_and_japanese_corpus_words_are_found_in_the_right_file(corpora, tmp_path):
    root = corpora / "obsidian-help"
    vault = Vault.init(root, name="Help", instance="tester")
    rng = random.Random(5)
    en = sorted((root / "en").rglob("*.md"))
    ja = sorted((root / "ja").rglob("*.md"))
    checked_en = checked_ja = 0
    for path in rng.sample(en, 25):
        words = re.findall(r"\b[A-Za-z]{6,}\b", path.read_text("utf-8").split("---", 2)[-1])
        if not words:
            continue
        word = rng.choice(words)
        hits = search.search(vault, word, limit=None, snippets=False)
        assert path.relative_to(root).as_posix() in paths_of(hits), word
        checked_en += 1
    cjk = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]{4,}")
    for path in rng.sample(ja, 25):
        runs = cjk.findall(path.read_text("utf-8"))
        if not runs:
            continue
        run = rng.choice(runs)
        start = rng.randrange(len(run) - 3)
        piece = run[start:start + rng.choice((2, 3, 4))]
        hits = search.search(vault, piece, limit=None, snippets=False)
        assert path.relative_to(root).as_posix() in paths_of(hits), piece
        checked_ja += 1
    assert checked_en >= 20 and checked_ja >= 20
    # A Japanese title word ranks its page first, and the snippet marks it.
    hits = search.search(vault, "テーマ")
    assert hits[0].path == "ja/Obsidian の拡張/テーマ.md"
    assert "**テーマ**" in hits[0].snippet


def test_results_follow_edits_made_behind_our_back(vault):
    root = vault.root
    write(root, "memory/a.md", note("Alpha", "The kingfisher dives."))
    write(root, "memory/b.md", note("Beta", "A heron waits."))
    assert paths_of(search.search(vault, "kingfisher")) == ["memory/a.md"]
    # add
    write(root, "notes/new.md", "Plain note about a kingfisher, no front matter.\n")
    assert sorted(paths_of(search.search(vault, "kingfisher"))) == ["memory/a.md", "notes/new.md"]
    # edit (same size, so only the mtime tells)
    p = root / "memory/b.md"
    st = p.stat()
    p.write_text(note("Beta", "A pelican waits."))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert paths_of(search.search(vault, "heron")) == []
    assert paths_of(search.search(vault, "pelican")) == ["memory/b.md"]
    # delete
    (root / "notes/new.md").unlink()
    assert paths_of(search.search(vault, "kingfisher")) == ["memory/a.md"]
    # rename, into another folder
    (root / "patterns").mkdir(exist_ok=True)
    os.rename(root / "memory/a.md", root / "patterns/alpha.md")
    results = search.search(vault, "kingfisher")
    assert paths_of(results) == ["patterns/alpha.md"]
    assert results.report.renamed == [("memory/a.md", "patterns/alpha.md")]
    # touched, same bytes: nothing to reindex
    os.utime(root / "patterns/alpha.md")
    r = search.search(vault, "kingfisher")
    assert r.report.changes == 0 and paths_of(r) == ["patterns/alpha.md"]
    # a whole folder removed
    shutil.rmtree(root / "patterns")
    assert paths_of(search.search(vault, "kingfisher")) == []


def test_session_messages_are_found_with_session_role_and_time(vault):
    s = vault.sessions.create("Trip planning", category="travel", tags=["travel"])
    s.add_message("user", "Where should we go in March?")
    s.add_message("assistant", "Somewhere warm: Lisbon or Sevilla.")
    hits = search.search(vault, "lisbon")
    assert len(hits) == 1
    h = hits[0]
    assert h.doc == "message" and h.role == "assistant" and h.session == s.id
    assert h.session_title == "Trip planning" and h.time is not None
    assert "**Lisbon**" in h.snippet
    assert paths_of(search.search(vault, "march role:assistant")) == []
    assert [h.role for h in search.search(vault, "tag:travel role:user")] == ["user"]
    assert [h.role for h in search.search(vault, "category:travel warm")] == ["assistant"]
    assert search.search(vault, "lisbon", sessions=False) == []
    # appended behind our back, in the format of docs/format.md
    path = vault.root / s.relpath
    with open(path, "a", encoding="utf-8") as f:
        f.write('\n### user · 2026-11-21 10:09\n<!-- mirrorfs:message {"id": "20261121T100900000-aaaaaa", '
                '"role": "user", "time": "2026-11-21T10:09:00.000+00:00", "instance": "phone"} -->\n\n'
                "What about Porto?\n")
    hits = search.search(vault, "porto instance:phone")
    assert [h.message_id for h in hits] == ["20261121T100900000-aaaaaa"]
    assert [m.id for m in search.session_search(s, "PORTO")] == ["20261121T100900000-aaaaaa"]
    assert search.session_search(s, "PORTO", case_sensitive=True) == []


def test_indexing_never_changes_a_byte_of_the_vault(generated):
    vault, manifest = generated
    before = tree_hashes(vault.root)
    search.rebuild(vault)
    word = next(iter(manifest))
    search.search(vault, word)
    search.statistics(vault)
    search.find_similar(vault, manifest[word]["path"])
    search.recall(vault, "travel")
    search.status(vault)
    assert tree_hashes(vault.root) == before


def test_unparseable_binary_non_utf8_and_huge_files(vault):
    root = vault.root
    write(root, "memory/broken.md", "---\ntitle: [unclosed\n---\nThe axolotl regrows limbs.\n")
    write(root, "memory/binary.md", b"axolotl\x00\x01\x02")
    write(root, "memory/latin1.md", "axolotl caf\xe9".encode("latin-1"))
    write(root, "memory/huge.md", "axolotl " * (index_mod.DEFAULT_MAX_BYTES // 8 + 10))
    results = search.search(vault, "axolotl")
    assert paths_of(results) == ["memory/broken.md"]
    assert results[0].flags == ["unparseable"]
    text = "\n".join(results.warnings)
    for name in ("broken.md", "binary.md", "latin1.md", "huge.md"):
        assert name in text
    st = search.status(vault)
    assert set(st["skipped"]) == {"memory/binary.md", "memory/latin1.md", "memory/huge.md"}
    assert list(st["unparseable"]) == ["memory/broken.md"]
    # fixing a skipped file brings it in
    write(root, "memory/latin1.md", "axolotl café")
    assert "memory/latin1.md" in paths_of(search.search(vault, "axolotl"))


def test_encrypted_sections_never_become_search_terms(vault):
    write(vault.root, "memory/secret.md", note(
        "Locker", "Combination below.\n%%🔐β U2VjcmV0Q2lwaGVydGV4dFdvcmQxMjM0NTY3ODkw 🔐%%\nEnd of note."))
    assert paths_of(search.search(vault, "combination")) == ["memory/secret.md"]
    assert search.search(vault, "U2VjcmV0Q2lwaGVydGV4dFdvcmQxMjM0NTY3ODkw") == []
    assert search.search(vault, "U2Vj*") == []


def test_deleted_index_is_rebuilt_on_the_next_query(vault):
    write(vault.root, "memory/a.md", note("Alpha", "The narwhal sings."))
    assert paths_of(search.search(vault, "narwhal")) == ["memory/a.md"]
    shutil.rmtree(vault.state_dir / "index")
    index_mod._OPEN.clear()
    results = search.search(vault, "narwhal")
    assert paths_of(results) == ["memory/a.md"] and results.report.rebuilt


@pytest.mark.parametrize("damage", ["segments", "catalog", "current", "toc"])
def test_corrupt_index_is_rebuilt_on_the_next_query(vault, damage):
    write(vault.root, "memory/a.md", note("Alpha", "The narwhal sings."))
    assert paths_of(search.search(vault, "narwhal")) == ["memory/a.md"]
    layout = index_mod._Layout(vault.state_dir)
    gen = layout.gen(layout.current_name())
    if damage == "segments":
        for p in gen.iterdir():
            if p.suffix in (".seg", ".pst", ".trm", ".fln", ".dc", ".pos"):
                p.write_bytes(b"\xff" * 64)
    elif damage == "catalog":
        (gen / "catalog.pickle").write_bytes(b"not a pickle")
    elif damage == "current":
        layout.current.write_text("gen-garbage")
    else:
        for p in gen.glob("_MAIN_*.toc"):
            p.write_bytes(b"\x00garbage")
    index_mod._OPEN.clear()  # a new process would open it from disk
    assert paths_of(search.search(vault, "narwhal")) == ["memory/a.md"]
    assert paths_of(search.search(vault, "narwhal")) == ["memory/a.md"]


def test_schema_version_change_triggers_a_rebuild(vault):
    write(vault.root, "memory/a.md", note("Alpha", "The narwhal sings."))
    search.search(vault, "narwhal")
    layout = index_mod._Layout(vault.state_dir)
    gen = layout.gen(layout.current_name())
    import pickle

    catalog = pickle.loads((gen / "catalog.pickle").read_bytes())
    catalog["schema"] = index_mod.SCHEMA_VERSION - 1
    (gen / "catalog.pickle").write_bytes(pickle.dumps(catalog))
    index_mod._OPEN.clear()
    results = search.search(vault, "narwhal")
    assert results.report.rebuilt and paths_of(results) == ["memory/a.md"]


CHILD = textwrap.dedent("""
    import sys, time
    from mirrorfs.vault import Vault
    from mirrorfs import search
    vault = Vault.open(sys.argv[1], instance="other")
    def progress(done, total):
        if not progress.told:
            print("started", flush=True)
            progress.told = True
        time.sleep(0.002)  # a slow disk: keep the writer busy for a while
    progress.told = False
    search.rebuild(vault, progress=progress, procs=1)
    print("done", flush=True)
""")


def _start_rebuild(vault) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(vault.root)], stdout=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdout.readline().strip() == "started"
    return child


def test_query_during_a_rebuild_in_another_process_answers(generated):
    vault, manifest = generated
    word = next(iter(manifest))
    assert paths_of(search.search(vault, word)) == [manifest[word]["path"]]
    write(vault.root, "memory/late.md", note("Late", "The quokka smiles."))
    child = _start_rebuild(vault)
    try:
        assert child.poll() is None
        index_mod._OPEN.clear()
        # The old generation answers; the new note may or may not be in yet.
        results = search.search(vault, word)
        assert paths_of(results) == [manifest[word]["path"]]
        results = search.search(vault, "quokka")
        assert paths_of(results) in ([], ["memory/late.md"])
        assert results.stale or paths_of(results) == ["memory/late.md"]
    finally:
        assert child.wait(timeout=120) == 0
        close_pipes(child)
    assert paths_of(search.search(vault, "quokka")) == ["memory/late.md"]


def test_first_query_waits_for_a_rebuild_in_another_process(generated):
    vault, manifest = generated
    child = _start_rebuild(vault)  # no index yet: the query must wait for it
    try:
        word = next(iter(manifest))
        assert paths_of(search.search(vault, word)) == [manifest[word]["path"]]
    finally:
        assert child.wait(timeout=120) == 0
        close_pipes(child)


def _generations(vault) -> list[str]:
    return sorted(p.name for p in index_mod.Index.for_vault(vault).layout.dir.glob("gen-*"))


def test_a_rebuild_leaves_one_generation_and_a_reader_keeps_its_own(vault):
    write(vault.root, "memory/a.md", note("A", "The quokka smiles."))
    assert paths_of(search.search(vault, "quokka")) == ["memory/a.md"]
    first = _generations(vault)
    assert len(first) == 1
    search.rebuild(vault)
    assert len(_generations(vault)) == 1 and _generations(vault) != first
    # Another reader (its own Index, as another process has) answering from the live generation.
    other = index_mod.Index(vault.root, vault.state_dir, vault.id)
    assert [h.fields["path"] for h in other.search(other.parse("quokka"))] == ["memory/a.md"]
    held = _generations(vault)
    search.rebuild(vault)
    assert len(_generations(vault)) == 2 and held[0] in _generations(vault)  # still read: kept
    other.close()  # its last reader lets go: removed
    assert len(_generations(vault)) == 1 and held[0] not in _generations(vault)
    assert paths_of(search.search(vault, "quokka")) == ["memory/a.md"]


def test_unchanged_vault_reconciles_without_opening_whoosh(generated):
    vault, _ = generated
    search.search(vault, "travel")
    idx = index_mod.Index.for_vault(vault)
    idx.close()
    report = idx.reconcile()
    assert report.changes == 0 and idx._ix is None


@pytest.fixture
def world_tmp():
    """A temp folder that the user `nobody` can reach (pytest's are root-only)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="mirrorfs-nobody-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unreadable_folder_keeps_its_documents(world_tmp):
    """Run as an unprivileged user (root reads any folder)."""
    if os.geteuid() != 0:
        pytest.fail("this test drops privileges to `nobody` and needs to start as root")
    tmp_path = world_tmp
    root = tmp_path / "v"
    Vault.init(root, name="Mira", instance="laptop")
    write(root, "memory/a.md", note("Alpha", "The okapi hides."))
    write(root, "private/b.md", note("Beta", "The okapi eats."))
    state = tmp_path / "state"
    shutil.copytree(os.environ["MIRRORFS_STATE_DIR"], state)
    for p in [tmp_path, *tmp_path.rglob("*")]:
        os.chown(p, 65534, 65534)
    os.chmod(tmp_path, 0o755)
    warm = tmp_path / "warm"
    Vault.init(warm, name="Warm", instance="laptop")
    write(warm, "memory/w.md", note("Warm", "The okapi warms up."))
    code = textwrap.dedent("""
        import os, sys, json
        from mirrorfs.vault import Vault
        from mirrorfs import search
        # Load every module as root (nobody cannot read this Python's stdlib),
        # then drop privileges for the real run.
        import encodings.latin_1  # noqa: F401  (Whoosh decodes postings with it)
        search.search(Vault.open(sys.argv[2], instance="laptop"), "okapi")
        os.environ["MIRRORFS_STATE_DIR"] = sys.argv[3]
        os.setgid(65534); os.setuid(65534)
        vault = Vault.open(sys.argv[1], instance="laptop")
        first = [h.path for h in search.search(vault, "okapi")]
        os.chmod(os.path.join(sys.argv[1], "private"), 0)
        r = search.search(vault, "okapi")
        os.chmod(os.path.join(sys.argv[1], "private"), 0o755)
        print(json.dumps({"first": first, "then": [h.path for h in r], "warnings": r.warnings}))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["MIRRORFS_STATE_DIR"] = str(tmp_path / "warm-state")
    out = subprocess.run([sys.executable, "-c", code, str(root), str(warm), str(state)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert sorted(data["first"]) == ["memory/a.md", "private/b.md"]
    assert sorted(data["then"]) == ["memory/a.md", "private/b.md"]
    assert any("private" in w for w in data["warnings"])


def test_sync_conflict_copies_are_not_indexed(vault):
    write(vault.root, "memory/a.md", note("Alpha", "The wombat digs."))
    write(vault.root, "memory/a.sync-conflict-20261121-100412-ABCDEFG.md", note("Alpha", "The wombat digs too."))
    write(vault.root, "memory/a (conflicted copy 2026-11-21 100412).md", note("Alpha", "The wombat digs."))
    assert paths_of(search.search(vault, "wombat")) == ["memory/a.md"]


def test_fast_indexing_path_gives_the_analyzer_terms(corpora):
    """term_positions (indexing) and MirrorAnalyzer (queries, snippets) must agree."""
    texts = [p.read_text("utf-8") for p in sorted((corpora / "obsidian-help").rglob("*.md"))]
    texts.append("Running the compilers: don't x café 東京都の検索機能 日 v2.7.4 ไทยภาษา")
    for text in texts:
        expected: dict[str, list[int]] = {}
        for tok in index_mod.MirrorAnalyzer()(text, positions=True, mode="index"):
            expected.setdefault(tok.text, []).append(tok.pos)
        assert index_mod.term_positions(text) == expected


HOLDER = textwrap.dedent("""
    import sys, time
    from mirrorfs import index
    lock = index._Layout(sys.argv[1]).lock()
    lock.acquire()
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
""")


def _hold_writer(vault, seconds: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(vault.state_dir), str(seconds)],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "holding"
    return child


def test_query_while_another_process_holds_the_writer_answers_from_the_index(vault):
    write(vault.root, "memory/a.md", note("Alpha", "The ibis wades."))
    assert paths_of(search.search(vault, "ibis")) == ["memory/a.md"]
    child = _hold_writer(vault, index_mod.QUERY_LOCK_WAIT + 3)
    try:
        write(vault.root, "memory/b.md", note("Beta", "Another ibis."))
        results = search.search(vault, "ibis")
        assert results.stale and paths_of(results) == ["memory/a.md"]
        assert any("another process" in w for w in results.warnings)
    finally:
        assert child.wait(timeout=60) == 0
        close_pipes(child)
    assert sorted(paths_of(search.search(vault, "ibis"))) == ["memory/a.md", "memory/b.md"]


def test_first_query_waits_for_a_writer_in_another_process(vault):
    write(vault.root, "memory/a.md", note("Alpha", "The ibis wades."))
    child = _hold_writer(vault, 1.5)
    try:
        started = time.monotonic()
        assert paths_of(search.search(vault, "ibis")) == ["memory/a.md"]
        assert time.monotonic() - started > 1.0  # it waited for the other process
    finally:
        child.wait(timeout=60)
        close_pipes(child)


def test_searches_from_several_threads_while_notes_change(vault):
    import threading

    for i in range(20):
        write(vault.root, f"memory/n{i}.md", note(f"Note {i}", f"The heron number {i}."))
    errors: list[BaseException] = []

    def searcher():
        try:
            for _ in range(15):
                assert search.search(vault, "heron", limit=None)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20, 30):
        write(vault.root, f"memory/n{i}.md", note(f"Note {i}", f"The heron number {i}."))
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(search.search(vault, "heron", limit=None)) == 30
