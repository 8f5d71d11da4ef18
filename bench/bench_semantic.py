"""Semantic recall on a generated vault: cold embedding, hybrid query latency, size, RSS.

    python bench/generate.py medium /var/tmp/vault-medium
    python bench/bench_semantic.py /var/tmp/vault-medium [--json out.json]

In one run, on one vault, with a fresh per-device state folder:

* cold build of the vectors with the local embedder (scan, read, chunk, embed,
  store), chunks/s over the whole build and inside the embedder alone;
* the Whoosh index (needed by hybrid search; built here, timed for reference);
* 300 queries (a third planted rare words, a third pairs of topic words, a
  third plain-words questions built from the vault's vocabulary), top 20 with
  snippets, index and vectors fresh (as with a watcher running): Whoosh alone
  (`search.search` as the CLI runs it today, all words; and as hybrid's keyword
  side runs it, function words out, any word), semantic alone and hybrid,
  p50/p99 warm;
* one changed note: `update(vault, [path])` and the next hybrid query;
* vector store size on disk and RSS (current after the queries, and peak).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _queries(vault_root: Path, n: int = 300) -> list[str]:
    from generate import TOPIC_WORDS

    rng = random.Random(5)
    planted_file = vault_root.parent / f"{vault_root.name}.planted.json"
    planted = list(json.loads(planted_file.read_text())) if planted_file.exists() else []
    third = n // 3
    rare = rng.sample(planted, min(third, len(planted)))
    pairs = [f"{rng.choice(TOPIC_WORDS)} {rng.choice(TOPIC_WORDS)}" for _ in range(third)]
    starts = ("what did we say about", "when is the", "where did I put the", "how do I handle the",
              "who knows about the")
    questions = [f"{rng.choice(starts)} {rng.choice(TOPIC_WORDS)} and {rng.choice(TOPIC_WORDS)}?"
                 for _ in range(n - len(rare) - len(pairs))]
    qs = rare + pairs + questions
    rng.shuffle(qs)
    return qs


def _timed(fn, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: bench_semantic.py VAULT [--json OUT]")
    root = Path(argv[0]).resolve()
    out_json = argv[argv.index("--json") + 1] if "--json" in argv else None
    state = tempfile.mkdtemp(prefix="bench-semantic-state-")
    os.environ["MIRRORFS_STATE_DIR"] = state
    try:
        _run(root, out_json)
    finally:  # the index and vectors of a medium vault are 400 MB
        shutil.rmtree(state, ignore_errors=True)


def _run(root: Path, out_json: str | None) -> None:

    from mirrorfs import search as search_mod
    from mirrorfs import semantic
    from mirrorfs.embed import Embedder
    from mirrorfs.embedders import get
    from mirrorfs.vault import Vault
    from mirrorfs.vectors import VectorStore

    class Timing(Embedder):
        """The local embedder, with the time spent inside it added up."""

        def __init__(self, inner):
            self.inner, self.name, self.version = inner, inner.name, inner.version
            self.calibration, self.seconds, self.texts = inner.calibration, 0.0, 0

        @property
        def dimension(self):
            return self.inner.dimension

        def embed(self, texts):
            t0 = time.perf_counter()
            try:
                return self.inner.embed(texts)
            finally:
                self.seconds += time.perf_counter() - t0
                self.texts += len(texts)

    vault = Vault.open(root)
    emb = Timing(get("local"))
    res: dict = {"vault": str(root), "load_before": round(os.getloadavg()[0], 2), "embedder": emb.id}

    t0, c0 = time.perf_counter(), time.process_time()
    report = semantic.update(vault, None, emb)
    res["cold_build_s"] = round(time.perf_counter() - t0, 1)
    res["cold_build_cpu_s"] = round(time.process_time() - c0, 1)
    res["notes"] = report.files
    res["chunks"] = report.chunks
    res["embedded"] = report.embedded
    res["chunks_per_s_build"] = round(report.chunks / (time.perf_counter() - t0), 1)
    res["chunks_per_s_embedder"] = round(emb.texts / emb.seconds, 1)
    res["embed_s"] = round(emb.seconds, 1)
    res["rss_after_build_mb"] = round(_rss_mb(), 1)
    store = VectorStore.for_vault(vault)
    res["store_mb"] = round(store.size_bytes() / 2**20, 1)
    print(json.dumps(res), flush=True)

    t0 = time.perf_counter()
    search_mod.rebuild(vault)
    res["whoosh_build_s"] = round(time.perf_counter() - t0, 1)

    queries = _queries(root)
    # Warm: one pass of each opens the index and loads the vectors into memory.
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    semantic.semantic_search(vault, "warm up", refresh=False)
    res["vectors_load_s"] = round(time.perf_counter() - t0, 2)
    res["vectors_in_memory_mb"] = round(_rss_mb() - rss0, 1)
    for q in queries[:20]:
        search_mod.search(vault, q, reconcile=False)
        semantic.hybrid_search(vault, q, refresh=False)
    whoosh = _timed(lambda q: search_mod.search(vault, q, reconcile=False), queries)
    # Hybrid's own keyword side: the question without function words, any word, top 20.
    whoosh_any = _timed(lambda q: search_mod.search(vault, semantic.keyword_query(q) or q,
                                                    reconcile=False, any_word=True), queries)
    sem = _timed(lambda q: semantic.semantic_search(vault, q, refresh=False), queries)
    hyb = _timed(lambda q: semantic.hybrid_search(vault, q, refresh=False), queries)
    for name, xs in (("whoosh", whoosh), ("whoosh_any_word", whoosh_any), ("semantic", sem),
                     ("hybrid", hyb)):
        res[f"{name}_p50_ms"] = round(statistics.median(xs), 1)
        res[f"{name}_p99_ms"] = round(_pct(xs, 99), 1)
    res["hybrid_over_whoosh_p50"] = round(res["hybrid_p50_ms"] / res["whoosh_p50_ms"], 2)
    res["hybrid_over_whoosh_any_word_p50"] = round(res["hybrid_p50_ms"] / res["whoosh_any_word_p50_ms"], 2)
    res["load_during_queries"] = round(os.getloadavg()[0], 2)

    # The freshness pass a query makes without a watcher (stat of every note).
    t0 = time.perf_counter()
    semantic.update(vault, None, emb)
    res["vectors_stat_pass_ms"] = round((time.perf_counter() - t0) * 1000, 1)

    # One changed note, handed over as a watcher would.
    rel = "SOUL.md"
    full = root / rel
    original = full.read_bytes()
    try:
        full.write_bytes(original + b"\nA freshly added line about zqbenchnewx.\n")
        t0 = time.perf_counter()
        one = semantic.update(vault, [rel], emb)
        res["one_change_update_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        res["one_change_embedded"] = one.embedded
        t0 = time.perf_counter()
        found = semantic.semantic_search(vault, "A freshly added line about zqbenchnewx.", limit=1,
                                         refresh=False)
        res["one_change_next_query_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        # Its chunk's own text must now be the nearest of all (the matrix was patched, not stale).
        from mirrorfs import chunks as chunks_mod
        new = [c for c in chunks_mod.file_chunks(rel, full.read_bytes()) if "zqbenchnewx" in c.text][0]
        near = store.search(emb, emb.embed([new.text])[0], 1)
        res["one_change_found"] = bool(near) and (near[0].path, near[0].key) == (rel, new.key)
    finally:
        full.write_bytes(original)
        semantic.update(vault, [rel], emb)
    res["load_after"] = round(os.getloadavg()[0], 2)
    res["rss_mb"] = round(_rss_mb(), 1)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["store_mb"] = round(store.size_bytes() / 2**20, 1)
    print(json.dumps(res, indent=1))
    if out_json:
        Path(out_json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
