"""Search benchmark: cold index, query latency, freshness, memory; baselines in the same run.

    python bench/generate.py medium /tmp/vault-medium
    python bench/bench_search.py /tmp/vault-medium            # planted words from /tmp/vault-medium.planted.json
    python bench/bench_search.py --generate small /tmp/vault-small

Reports, on one vault in one run:
  * cold index time of mirrorfs, and its ratio to (a) reading and parsing every
    file (the floor) and (b) a plain single-process Whoosh writer with the
    default StemmingAnalyzer on the same documents (the naive baseline);
  * search p50/p99 over a few hundred queries (planted words, topic words,
    pairs and phrases), with and without the freshness pass, and the ratio to
    ripgrep (`rg -l -i -w -F`) scanning the vault for the same words;
  * warm search p50/p99 with snippets and without, against two baselines on
    the same queries and index: the raw Whoosh search (`Index.search`, no
    hits built) and reading the hits' files whole (what snippets cost before
    they were bounded);
  * the index on disk (every file under the index folder) against the vault's
    text, and how many generations a second rebuild leaves;
  * reconcile time of an unchanged vault; time from one changed note to its
    search result; peak memory (this process, and the worker processes);
  * whether every planted word is found in the right file (and message).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from mirrorfs import catalog as catalog_mod  # noqa: E402
from mirrorfs import documents as documents_mod  # noqa: E402
from mirrorfs import index as index_mod  # noqa: E402
from mirrorfs import messages as messages_mod  # noqa: E402
from mirrorfs import note as note_mod  # noqa: E402
from mirrorfs import search as search_mod  # noqa: E402


class BenchVault:
    """What mirrorfs.search needs of a Vault, so that the benchmark does not
    depend on Vault.open writing device files; the index is the real one."""

    def __init__(self, root: Path, state_dir: Path):
        import yaml

        self.root = root
        self.config = yaml.safe_load((root / ".mirrorfs" / "config.yaml").read_text())
        self.id = str(self.config["vault_id"])
        self.state_dir = state_dir


def cpu() -> float:
    """CPU seconds used so far by this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def floor_parse(root: Path, relpaths: list[str]) -> tuple[float, int]:
    """Read and parse every file with mirrorfs's own parsers: the floor."""
    t0 = time.perf_counter()
    n = 0
    for rp in relpaths:
        try:
            data = (root / rp).read_bytes()
            note = note_mod.parse(data, rp)
        except Exception:
            continue
        n += 1
        if note.meta.get("type") == "session":
            messages_mod.parse(note.body)
    return time.perf_counter() - t0, n


def naive_build(gen_dir: str, docs) -> None:
    """The baseline: the same documents and field names, Whoosh's stock field
    types (StemmingAnalyzer for text), one default writer in one process."""
    from whoosh import analysis as wanalysis
    from whoosh import fields as W
    from whoosh import index as windex

    text = wanalysis.StemmingAnalyzer()
    schema = W.Schema(
        path=W.ID(stored=True), id=W.ID(stored=True), type=W.ID(stored=True),
        title=W.TEXT(analyzer=text, stored=True, field_boost=3.0),
        aliases=W.TEXT(analyzer=text, field_boost=2.0),
        tags=W.KEYWORD(stored=True, commas=True, lowercase=True),
        keywords=W.KEYWORD(commas=True, lowercase=True, scorable=True, field_boost=2.0),
        kind=W.ID(stored=True), tier=W.ID(stored=True), category=W.ID(stored=True),
        instance=W.ID(stored=True), updated_by=W.ID, role=W.ID(stored=True),
        created=W.ID, updated=W.ID, created_at=W.STORED, updated_at=W.STORED,
        body=W.TEXT(analyzer=text), msg=W.STORED, at=W.STORED, flags=W.KEYWORD(stored=True),
    )
    ix = windex.create_in(gen_dir, schema)
    w = ix.writer()
    for d in docs:
        if isinstance(d.get("body"), tuple):  # weighted parts: plain text for stock TEXT
            d = dict(d, body="\n".join(text for text, _ in d["body"]))
        w.add_document(**d)
    w.commit()


def naive(root: Path, relpaths: list[str], out: str) -> float:
    """Parse + one default Whoosh writer (StemmingAnalyzer), same documents."""
    def docs():
        for rp in relpaths:
            try:
                _, data = documents_mod.read_file(str(root), rp, documents_mod.DEFAULT_MAX_BYTES)
                yield from documents_mod.file_documents(rp, data).docs
            except Exception:
                continue

    t0 = time.perf_counter()
    naive_build(out, docs())
    return time.perf_counter() - t0


def dir_bytes(path: Path) -> int:
    """Bytes of every file under *path* (all generations, catalogs, locks)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
    return out


def rg_time(root: Path, word: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["rg", "-l", "-i", "-w", "-F", "--no-messages", word, str(root)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vault", type=Path)
    ap.add_argument("--generate", choices=("tiny", "small", "medium", "large"),
                    help="Generate the vault first (it must not exist).")
    ap.add_argument("--planted", type=Path, help="Planted-word manifest (default: VAULT.planted.json).")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rg-queries", type=int, default=40)
    ap.add_argument("--skip-naive", action="store_true", help="Skip the naive baseline (large vaults).")
    ap.add_argument("--procs", type=int, default=None)
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args(argv)

    root = args.vault.resolve()
    planted_path = args.planted or root.parent / f"{root.name}.planted.json"
    if args.generate:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import generate

        t0 = time.perf_counter()
        manifest = generate.generate(root, **generate.SIZES[args.generate])
        planted_path.write_text(json.dumps(manifest))
        print(f"generated {args.generate} vault in {time.perf_counter() - t0:.1f} s")
    manifest = json.loads(planted_path.read_text()) if planted_path.exists() else {}
    figures: dict = {"engine": index_mod.ENGINE, "python": sys.version.split()[0],
                     "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}

    work = Path(tempfile.mkdtemp(prefix="mirrorfs-bench-"))
    try:
        scan = catalog_mod.scan(root)
        relpaths = sorted(scan.files)
        size_mb = sum(st[1] for st in scan.files.values()) / 2**20
        print(f"vault {root}: {len(relpaths)} files, {size_mb:.1f} MB; {figures['engine']}, "
              f"Python {figures['python']}, {figures['cpus']} CPUs")
        os.sync()
        for rp in relpaths:  # warm the page cache so every contender reads from memory
            (root / rp).read_bytes()

        c0 = cpu()
        t_floor, nfiles = floor_parse(root, relpaths)
        c_floor = cpu() - c0
        print(f"(a) read + parse every file:   {t_floor:8.2f} s  ({c_floor:.1f} CPU s)")
        if not args.skip_naive:
            naive_dir = work / "naive"
            naive_dir.mkdir()
            c0 = cpu()
            t_naive = naive(root, relpaths, str(naive_dir))
            c_naive = cpu() - c0
            print(f"(b) naive Whoosh writer:       {t_naive:8.2f} s  ({c_naive:.1f} CPU s)")
            shutil.rmtree(naive_dir)
        vault = BenchVault(root, work / "state")
        idx = index_mod.Index.for_vault(vault)
        c0 = cpu()
        t0 = time.perf_counter()
        report = idx.rebuild(procs=args.procs)
        t_cold = time.perf_counter() - t0
        c_cold = cpu() - c0
        print(f"mirrorfs cold index:           {t_cold:8.2f} s  ({c_cold:.1f} CPU s)"
              f" = {t_cold / t_floor:.2f}x the floor (a)"
              + ("" if args.skip_naive else
                 f", {t_naive / t_cold:.2f}x faster than naive (b); CPU {c_naive / c_cold:.2f}x less"))
        figures.update(files=len(relpaths), size_mb=round(size_mb, 1), floor_s=round(t_floor, 2),
                       cold_s=round(t_cold, 2), cold_cpu_s=round(c_cold, 1), floor_cpu_s=round(c_floor, 1), cold_over_floor=round(t_cold / t_floor, 2),
                       index_mb=round(idx.size_bytes() / 2**20, 1), warnings=len(report.warnings))
        if not args.skip_naive:
            figures.update(naive_s=round(t_naive, 2), naive_over_cold=round(t_naive / t_cold, 2),
                           naive_cpu_s=round(c_naive, 1), naive_cpu_over_cold=round(c_naive / c_cold, 2))
        docs, _ = idx.doc_count()
        print(f"  {docs} documents, index {figures['index_mb']} MB, {len(report.warnings)} warnings")
        disk_mb = dir_bytes(idx.layout.dir) / 2**20
        print(f"index on disk:                 {disk_mb:8.1f} MB = {disk_mb / size_mb:.2f}x the vault's text"
              f" ({size_mb:.1f} MB)")
        figures.update(index_disk_mb=round(disk_mb, 1), index_over_text=round(disk_mb / size_mb, 2))

        # Recall of planted words.
        missing = []
        for word, where in manifest.items():
            hits = search_mod.search(vault, word, limit=10, snippets=False, reconcile=False)
            if not any(h.path == where["path"] and h.message_id == where.get("message") for h in hits):
                missing.append(word)
        print(f"planted words found:           {len(manifest) - len(missing)}/{len(manifest)}")
        figures.update(planted=len(manifest), planted_missing=len(missing))

        # Query latency.
        rng = random.Random(1)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import generate

        topic = generate.TOPIC_WORDS
        function_words = set(generate.COMMON)
        # Three kinds of query, a third each: rare words (the planted ones), a
        # word picked from a random file of the vault, leaving out function
        # words like "which" or "their" (what a person looking for something
        # they wrote types), and frequent topic words, alone, in pairs,
        # phrases, OR and with a filter (the expensive kind).
        n = args.queries // 3
        classes: dict[str, list[str]] = {"rare": rng.sample(sorted(manifest), min(len(manifest), n))}
        picked = []
        while len(picked) < n:
            text = (root / rng.choice(relpaths)).read_text("utf-8", "replace")
            words = [w for w in re.findall(r"[A-Za-z]{5,}", text.split("---", 2)[-1])
                     if not w.startswith("zq") and w.lower() not in function_words]
            if words:
                picked.append(rng.choice(words).lower())
        classes["from a file"] = picked
        common = []
        while len(common) < n:
            r = rng.random()
            if r < 0.4:
                common.append(rng.choice(topic))
            elif r < 0.7:
                common.append(f"{rng.choice(topic)} {rng.choice(topic)}")
            elif r < 0.85:
                common.append(f'"{rng.choice(topic)} {rng.choice(topic)}" OR {rng.choice(topic)}')
            else:
                common.append(f"{rng.choice(topic)} type:memory")
        classes["common"] = common
        queries = [q for qs in classes.values() for q in qs]
        search_mod.search(vault, "warm up", reconcile=False)
        fresh, full, per_class = [], [], {}
        for name, qs in classes.items():
            times = []
            for q in qs:
                t0 = time.perf_counter()
                search_mod.search(vault, q, limit=20, reconcile=False)
                times.append(time.perf_counter() - t0)
            per_class[name] = times
            fresh += times
        for q in queries[:: 5]:
            t0 = time.perf_counter()
            search_mod.search(vault, q, limit=20)
            full.append(time.perf_counter() - t0)
        p50, p99 = pct(fresh, 50), pct(fresh, 99)
        print(f"search (index fresh, top 20 with snippets): p50 {ms(p50)}  p99 {ms(p99)}  "
              f"over {len(fresh)} queries")
        for name, times in per_class.items():
            print(f"  {name:12s} p50 {ms(pct(times, 50))}  p99 {ms(pct(times, 99))}")
            figures[f"search_{name.replace(' ', '_')}_p50_ms"] = round(pct(times, 50) * 1000, 2)
        print(f"search incl. freshness pass:   p50 {ms(pct(full, 50))}  p99 {ms(pct(full, 99))}")

        # Snippets against their baselines, same queries, same warm index.
        def read_hits(q):  # what snippets cost when each hit read its whole file
            for h in search_mod.search(vault, q, limit=20, reconcile=False, snippets=False):
                (root / h.path).read_bytes()
        parsed = {q: idx.parse(q) for q in queries}
        raw = timed(lambda q: idx.search(parsed[q], limit=20), queries)
        bare_all = timed(lambda q: search_mod.search(vault, q, limit=20, reconcile=False, snippets=False), queries)
        with_snippets = timed(lambda q: search_mod.search(vault, q, limit=20, reconcile=False), queries)
        reading = timed(read_hits, queries)
        for label, times in (("raw Whoosh search (baseline)", raw), ("search without snippets", bare_all),
                             ("search with snippets", with_snippets),
                             ("search + read hits' files", reading)):
            print(f"  {label:29s} p50 {ms(pct(times, 50))}  p99 {ms(pct(times, 99))}")
        print(f"  snippets add {ms(pct(with_snippets, 50) - pct(bare_all, 50))} at p50; reading the hits' files"
              f" whole adds {ms(pct(reading, 50) - pct(bare_all, 50))}; with snippets ="
              f" {pct(with_snippets, 50) / pct(raw, 50):.2f}x the raw search at p50")
        figures.update(raw_p50_ms=round(pct(raw, 50) * 1000, 2), raw_p99_ms=round(pct(raw, 99) * 1000, 2),
                       bare_p50_ms=round(pct(bare_all, 50) * 1000, 2),
                       bare_p99_ms=round(pct(bare_all, 99) * 1000, 2),
                       snippets_p50_ms=round(pct(with_snippets, 50) * 1000, 2),
                       snippets_p99_ms=round(pct(with_snippets, 99) * 1000, 2),
                       read_files_p50_ms=round(pct(reading, 50) * 1000, 2))
        words = [q for q in queries if " " not in q and ":" not in q]
        words = rng.sample(words, min(len(words), args.rg_queries))
        rg = [rg_time(root, w) for w in words]
        single, bare = [], []
        for w in words:
            t0 = time.perf_counter()
            search_mod.search(vault, w, limit=20, reconcile=False)
            single.append(time.perf_counter() - t0)
            t0 = time.perf_counter()  # paths only, like `rg -l`
            search_mod.search(vault, w, limit=20, reconcile=False, snippets=False)
            bare.append(time.perf_counter() - t0)
        rg50, one50, bare50 = pct(rg, 50), pct(single, 50), pct(bare, 50)
        print(f"rg -l on {len(words)} of the same words: p50 {ms(rg50)}; search {ms(one50)} with snippets"
              f" ({rg50 / one50:.1f}x faster), {ms(bare50)} paths only ({rg50 / bare50:.1f}x faster),"
              f" with the freshness pass {rg50 / pct(full, 50):.1f}x")
        figures.update(search_p50_ms=round(p50 * 1000, 2), search_p99_ms=round(p99 * 1000, 2),
                       search_full_p50_ms=round(pct(full, 50) * 1000, 2),
                       search_full_p99_ms=round(pct(full, 99) * 1000, 2),
                       rg_p50_ms=round(rg50 * 1000, 2), rg_over_search=round(rg50 / one50, 1),
                       rg_over_search_paths_only=round(rg50 / bare50, 1),
                       rg_over_search_full=round(rg50 / pct(full, 50), 1))

        # Freshness.
        rec = []
        for _ in range(10):
            t0 = time.perf_counter()
            r = idx.reconcile()
            rec.append(time.perf_counter() - t0)
            assert not r.changes
        print(f"reconcile, unchanged vault:    median {ms(statistics.median(rec))}")
        lat = []
        target = next(rp for rp in relpaths if rp.startswith("memory/"))
        original = (root / target).read_bytes()
        try:
            for i in range(5):
                word = f"zzfresh{i}word"
                (root / target).write_bytes(original + f"\n{word}\n".encode())
                t0 = time.perf_counter()
                hits = search_mod.search(vault, word)
                lat.append(time.perf_counter() - t0)
                assert [h.path for h in hits] == [target], hits
        finally:
            (root / target).write_bytes(original)
            idx.reconcile()
        print(f"one changed note -> found:     median {ms(statistics.median(lat))}")
        figures.update(reconcile_ms=round(statistics.median(rec) * 1000, 2),
                       change_to_result_ms=round(statistics.median(lat) * 1000, 2))
        # A second rebuild: one generation left (nobody reads the old one).
        t0 = time.perf_counter()
        idx.rebuild(procs=args.procs)
        t_again = time.perf_counter() - t0
        gens = len(list(idx.layout.dir.glob("gen-*")))
        disk_mb = dir_bytes(idx.layout.dir) / 2**20
        print(f"after a rebuild ({t_again:.1f} s):     {gens} generation(s) on disk, {disk_mb:.1f} MB"
              f" = {disk_mb / size_mb:.2f}x the vault's text")
        figures.update(generations_after_rebuild=gens, rebuild_s=round(t_again, 2),
                       index_disk_after_rebuild_mb=round(disk_mb, 1))
        self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak memory: this process {self_mb:.0f} MB, largest worker {kids_mb:.0f} MB")
        figures.update(peak_mb=round(self_mb), worker_peak_mb=round(kids_mb))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_after"] = os.getloadavg()[0]
    print(f"load average (1 min) before/after: {figures['load_before']:.1f} / {figures['load_after']:.1f}"
          " (other work on this 2-core machine slows every figure)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if figures.get("planted_missing") else 0


if __name__ == "__main__":
    sys.exit(main())
