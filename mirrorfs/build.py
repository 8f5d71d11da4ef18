"""The cold build of a generation: each worker process reads, parses and
indexes its share of the files into its own segment; the parent then commits
all segments at once."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from typing import Callable

from whoosh import index as windex
from whoosh.writing import SegmentWriter

from mirrorfs.documents import read_entry
from mirrorfs.postings import CompactCodec

# Below this many files a rebuild runs in-process: starting workers costs more.
PARALLEL_MIN_FILES = 400

ProgressFn = Callable[[int, int], None]

_COUNTER = None


def codec():
    """The codec of every segment mirrorfs writes (compact posting blocks, see mirrorfs.postings)."""
    return CompactCodec()


def terminal_progress() -> ProgressFn | None:
    """A progress line on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    state = {"last": 0.0, "done": False}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if state["done"] or (done < total and now - state["last"] < 0.1):
            return
        state["last"] = now
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
        if done >= total:
            state["done"] = True
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _init_worker(counter) -> None:
    global _COUNTER
    _COUNTER = counter


def _index_chunk(args):
    gen_dir, root, relpaths, max_bytes, limitmb = args
    ix = windex.open_dir(gen_dir)
    writer = SegmentWriter(ix, _lk=False, compound=False, limitmb=limitmb, codec=codec())
    files: dict[str, tuple] = {}
    warnings: list[str] = []
    done = 0
    for relpath in relpaths:
        try:
            out = read_entry(root, relpath, max_bytes)
        except OSError as exc:
            warnings.append(f"cannot read {relpath}: {exc.strerror or exc}; not indexed")
            out = None
        if out is not None:
            rec, docs, warning = out
            files[relpath] = rec
            if warning:
                warnings.append(warning)
            for d in docs:
                writer.add_document(**d)
        done += 1
        if _COUNTER is not None and done % 25 == 0:
            with _COUNTER.get_lock():
                _COUNTER.value += 25
    if _COUNTER is not None:
        with _COUNTER.get_lock():
            _COUNTER.value += done % 25
    if writer.doc_count():
        segment = writer._finalize_segment()
    else:
        writer._close_segment()
        segment = None
    return segment, files, warnings


def build_generation(root: str, gen_dir: str, relpaths: list[str], max_bytes: int,
                     progress: ProgressFn | None = None, procs: int | None = None,
                     limitmb: int = 256) -> tuple[dict, list[str]]:
    """Index *relpaths* into the empty Whoosh index at *gen_dir*; return (catalog files, warnings)."""
    total = len(relpaths)
    if procs is None:
        procs = min(os.cpu_count() or 1, 8)
    if total < PARALLEL_MIN_FILES:
        procs = 1
    # Spread big session files evenly: deal files round-robin by size.
    sizes = []
    for rp in relpaths:
        try:
            sizes.append((os.stat(os.path.join(root, rp)).st_size, rp))
        except OSError:
            sizes.append((0, rp))
    sizes.sort(reverse=True)
    chunks: list[list[str]] = [[] for _ in range(procs)]
    for i, (_, rp) in enumerate(sizes):
        chunks[i % procs].append(rp)
    jobs = [(gen_dir, root, c, max_bytes, limitmb) for c in chunks if c]
    if procs == 1 or len(jobs) == 1:
        if progress:
            progress(0, total)
        results = [_index_chunk(j) for j in jobs]
    else:
        # fork is fastest, but forking a process that runs other threads (the
        # watcher's observer, its query server) can hand a child a lock that is
        # held forever: the first index of `mirrorfs watch` hung that way.
        threaded = threading.active_count() > 1
        method = "fork" if sys.platform.startswith("linux") and not threaded else "spawn"
        ctx = multiprocessing.get_context(method)
        counter = ctx.Value("l", 0)
        with ctx.Pool(len(jobs), initializer=_init_worker, initargs=(counter,)) as pool:
            pending = pool.map_async(_index_chunk, jobs)
            while not pending.ready():
                pending.wait(0.2)
                if progress:
                    progress(min(counter.value, total), total)
            results = pending.get()
    files: dict[str, tuple] = {}
    warnings: list[str] = []
    segments = []
    for segment, f, w in results:
        files.update(f)
        warnings += w
        if segment is not None:
            segments.append(segment)
    ix = windex.open_dir(gen_dir)
    writer = SegmentWriter(ix)
    final = writer._merge_segments(None, False, False) + segments
    writer._close_segment()
    writer._commit_toc(final)
    writer._finish()
    if progress:
        progress(total, total)
    return files, warnings
