"""The full-text index of one vault on this device: generations, locking, freshness, searching.

The index lives in the per-device state folder (never in the vault; layout in
`mirrorfs.catalog`). Its *catalog* of files (stat, SHA-256, front-matter
summary) is what keeps it fresh without a watcher: `reconcile` stats the
vault, compares with the catalog and only opens Whoosh when something changed.
With a watcher, `apply` takes the changes it already read and hashed and
updates just those documents. A full rebuild writes a new generation beside
the live one and switches CURRENT when done, so a reader in another process
keeps answering from the old generation meanwhile.

The search layer, bottom up: analysis (terms) -> fields (the field table, the
schema) -> documents (bytes to documents) -> query (syntax), highlight
(snippets), scoring, catalog (disk layout, scan), build (cold build) -> index.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import filelock
import whoosh
from whoosh import index as windex
from whoosh import query as wquery
from whoosh.filedb.structfile import StructFile

from mirrorfs import catalog as catalog_mod
from mirrorfs import generations, storage
from mirrorfs.analysis import MirrorAnalyzer, analyze, term_positions  # noqa: F401  (tests use them here)
from mirrorfs.build import ProgressFn, build_generation, codec, terminal_progress
from mirrorfs.catalog import Layout, Scan, scan
from mirrorfs.conflict_names import (
    conflict_original,  # sync conflict copies are not notes
)
from mirrorfs.documents import (
    DEFAULT_MAX_BYTES,
    Entry,
    entry_of,
    file_documents,
    read_entry,
    unknown_stat,
)
from mirrorfs.errors import (
    MirrorfsError,
    QueryError,
    SearchIndexError,
    UnreadableNoteError,
)
from mirrorfs.fields import TABLE
from mirrorfs.highlight import highlight
from mirrorfs.ignore import is_note_path
from mirrorfs.query import filters, parse_query
from mirrorfs.results import ReconcileReport
from mirrorfs.scoring import KEY_TERMS_MODEL, Weighting

log = logging.getLogger(__name__)

# Bump when the schema, the analyzer or the catalog change: an index of another
# version is rebuilt on first use.
SCHEMA_VERSION = 5
ENGINE = f"whoosh-{whoosh.versionstring()}"
# How long a query waits for another process's writer before answering from
# the index as it is (a full rebuild can take minutes on a big vault).
QUERY_LOCK_WAIT = 2.0
# How long anything waits for a writer when there is no usable index at all.
REBUILD_LOCK_WAIT = 30 * 60.0

_Layout = Layout  # the name tests and older callers use


@dataclass
class RawHit:
    """A hit as the index has it (no Whoosh types cross into mirrorfs.search)."""

    fields: dict
    score: float
    terms: set[str] = field(default_factory=set)  # matched body terms, for snippets


def _raw(hit) -> RawHit:
    terms: set[str] = set()
    try:
        for fname, text in hit.matched_terms() or ():
            if fname in ("body", "title", "aliases"):
                terms.add(text.decode("utf-8") if isinstance(text, bytes) else text)
    except Exception:  # matched terms were not recorded for this search
        pass
    return RawHit(dict(hit.fields()), float(hit.score), terms)


_OPEN: dict[str, "Index"] = {}  # most recently used last
_OPEN_MAX = 8


@contextlib.contextmanager
def _dropping_damaged_files():
    """When Whoosh fails on a damaged generation, the files it had opened are still
    held by the frames of the traceback: close them now (the generation is about
    to be rebuilt) rather than let them warn at some later garbage collection."""
    try:
        yield
    except Exception as exc:
        tb = exc.__traceback__
        while tb is not None:
            for value in list(tb.tb_frame.f_locals.values()):
                if isinstance(value, (io.IOBase, StructFile)):
                    with contextlib.suppress(Exception):
                        value.close()
            tb = tb.tb_next
        raise


def _index_errors(method):
    """An OSError of the index's own files (the state folder's disk is full or
    read-only) as one SearchIndexError line instead of Whoosh's traceback."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise SearchIndexError(str(storage.os_error(exc, self.layout.dir, "update the search index in"))) from exc
    return guarded


class Index:
    """The search index of one vault on this device."""

    def __init__(self, root: str | os.PathLike, state_dir: str | os.PathLike,
                 vault_id: str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = os.fspath(root)
        self.layout = Layout(state_dir)
        self.vault_id = vault_id
        self.max_bytes = max_bytes
        self._ix = None
        self._ix_gen: str | None = None
        self._reader: generations.ReaderLock | None = None  # held while _ix_gen is open
        self._searcher = None
        self._searcher_catalog: dict | None = None
        # One thread at a time per Index (a server may search from several).
        self._lock = threading.RLock()
        # Watcher changes not applied yet (another process held the writer): path -> op.
        self._backlog: dict[str, tuple | None] = {}

    @classmethod
    def of(cls, vault) -> "Index":
        """A new Index of a mirrorfs Vault, of its own (the watcher writes
        through one, so that queries never wait on the lock its work holds)."""
        config = getattr(vault, "config", None) or {}
        return cls(vault.root, vault.state_dir, vault.id, int(config.get("max_note_bytes", DEFAULT_MAX_BYTES)))

    @classmethod
    def for_vault(cls, vault) -> "Index":
        """The (cached, per process) index of a mirrorfs Vault."""
        config = getattr(vault, "config", None) or {}
        max_bytes = int(config.get("max_note_bytes", DEFAULT_MAX_BYTES))
        key = f"{os.fspath(vault.state_dir)}|{os.fspath(vault.root)}"
        ix = _OPEN.pop(key, None)
        if ix is None or ix.max_bytes != max_bytes or ix.vault_id != vault.id:
            if ix is not None:
                ix.close()
            ix = cls.of(vault)
        _OPEN[key] = ix
        while len(_OPEN) > _OPEN_MAX:  # close the searchers of vaults not used lately
            _OPEN.pop(next(iter(_OPEN))).close()
        return ix

    # -- generations ------------------------------------------------------

    def _live(self) -> tuple[str, dict] | None:
        """(generation name, catalog) of a usable index, or None."""
        name = self.layout.current_name()
        if name is None:
            return None
        gen_dir = self.layout.gen(name)
        catalog = catalog_mod.load(gen_dir)
        if catalog is None:
            return None
        if (catalog.get("schema") != SCHEMA_VERSION or catalog.get("engine") != ENGINE
                or catalog.get("vault_id") != self.vault_id):
            return None
        try:  # a TOC is there; whether it opens is found out on use (see _run)
            if not any(n.endswith(".toc") for n in os.listdir(gen_dir)):
                return None
        except OSError:
            return None
        return name, catalog

    def _whoosh(self, name: str):
        if self._ix is None or self._ix_gen != name:
            self.close()
            self._reader = generations.ReaderLock(self.layout.gen(name))
            self._ix_gen = name
            with _dropping_damaged_files():
                self._ix = windex.open_dir(str(self.layout.gen(name)))
        return self._ix

    def _open_searcher(self):
        live = self._live()
        if live is None:
            raise SearchIndexError("the index is missing")
        ix = self._whoosh(live[0])
        # Every commit rewrites the catalog, so a new catalog object means a
        # new index state (ours or another process's): reopen the searcher.
        # This does not rely on Whoosh's up_to_date(), which whoosh-reloaded
        # answers wrongly for a cached index object.
        if self._searcher is None or self._searcher_catalog is not live[1]:
            if self._searcher is not None:
                self._searcher.close()
            with _dropping_damaged_files():
                self._searcher = ix.searcher(weighting=Weighting())
            self._searcher_catalog = live[1]
        return self._searcher

    def close(self) -> None:
        """Close the open searcher (it reopens on the next query)."""
        with self._lock:
            if self._searcher is not None:
                try:
                    self._searcher.close()
                except Exception:
                    pass
            self._searcher = None
            self._ix = None
            if self._reader is not None:
                self._reader.release()
                self._reader = None
                # The last reader of a replaced generation removes it.
                if self._ix_gen is not None and self._ix_gen != self.layout.current_name():
                    generations.remove_if_unused(self.layout.gen(self._ix_gen))
            self._ix_gen = None

    def __del__(self) -> None:
        # An Index dropped without close() (a cleared cache) must not leave its
        # searcher's segment files open.
        try:
            self.close()
        except Exception:
            pass

    def usable(self) -> bool:
        """Whether a generation can answer now (none during a first build)."""
        return self._live() is not None

    def catalog(self) -> dict:
        """The catalog of the live generation (after `ensure`)."""
        live = self._live()
        if live is None:
            raise SearchIndexError("the index is missing")
        return live[1]

    # -- keeping fresh -----------------------------------------------------

    @_index_errors
    def ensure(self, progress: ProgressFn | None = None, wait: float = QUERY_LOCK_WAIT) -> ReconcileReport:
        """Make the index match the vault: rebuild if unusable, else reconcile."""
        with self._lock:
            if self._live() is None:
                return self.rebuild(progress=progress, if_unusable=True)
            return self.reconcile(wait=wait)

    @_index_errors
    def reconcile(self, wait: float = QUERY_LOCK_WAIT) -> ReconcileReport:
        """Apply adds, changes, deletes and renames made behind our back.

        Only stats the vault when nothing changed. When another process holds
        the writer longer than *wait* seconds, answers from the index as it is
        (report.stale) rather than failing.
        """
        with self._lock:
            t0 = time.perf_counter()
            live = self._live()
            if live is None:
                return self.rebuild(if_unusable=True)
            found = scan(self.root, live[1]["files"])
            report = ReconcileReport()
            if found.differs(live[1]["files"]):
                out = self._with_writer(wait, report, lambda name, cat: self._reconcile(name, cat, found, report))
                if out is not report:
                    return out
                if report.stale:
                    report.seconds = time.perf_counter() - t0
                    return report
            self._backlog.clear()  # nothing differs: the index holds what is on disk
            report.warnings += found.warnings()
            report.seconds = time.perf_counter() - t0
            return report

    @_index_errors
    def apply(self, changes: Iterable, wait: float = QUERY_LOCK_WAIT) -> ReconcileReport:
        """Update only the documents and catalog rows of the files that changed.

        *changes* are a watcher's settled changes (`mirrorfs.watcher.Change`:
        kind, path, old_path, content, sha256), applied in order with their
        bytes and hashes as they are: no file is read, hashed or stat'ed again,
        each is parsed once, and all of them make one Whoosh commit. Conflict
        copies and other names that are not notes are left out; a move out of
        the notes is a deletion. When another process holds the writer longer
        than *wait*, the changes are kept and applied with the next call (the
        report says stale); a reconcile also covers them.
        """
        with self._lock:
            t0 = time.perf_counter()
            ops = self._backlog
            for change in changes:
                if change.kind == "moved" and change.old_path:
                    ops[change.old_path] = None
                if change.kind == "deleted":
                    ops[change.path] = None
                elif is_note_path(change.path) and conflict_original(change.path) is None:
                    ops[change.path] = (change.content, change.sha256)
            if not ops:
                return ReconcileReport()
            if self._live() is None:  # nothing to update: index the vault (it has the changes)
                return self.rebuild(if_unusable=True)
            report = ReconcileReport()
            out = self._with_writer(wait, report, lambda name, cat: self._apply(name, cat, ops, report))
            if out is not report:
                return out
            if not report.stale:
                ops.clear()
            report.seconds = time.perf_counter() - t0
            return report

    def _with_writer(self, wait: float, report: ReconcileReport,
                     work: Callable[[str, dict], None]) -> ReconcileReport:
        """Run *work(generation, catalog)* holding the writer; *report*, or the
        report of the rebuild a damaged or vanished index needed."""
        lock = self.layout.lock()
        try:
            lock.acquire(timeout=wait)
        except filelock.Timeout:
            report.stale = True
            report.warnings.append(
                "the index is being updated by another process; results may miss the latest changes"
            )
            return report
        try:
            live = self._live()  # another process may have changed it while we waited
            if live is None:
                return self._rebuild_locked(None)
            try:
                work(live[0], live[1])
            except (MirrorfsError, OSError):
                raise
            except Exception as exc:  # a damaged segment or TOC: start over
                log.warning("search index %s is damaged (%s); rebuilding", live[0], exc)
                self.close()
                return self._rebuild_locked(None)
        finally:
            lock.release()
        return report

    def _reconcile(self, name: str, catalog: dict, found: Scan, report: ReconcileReport) -> None:
        """Read what the scan found changed; deletions are what it no longer found."""
        files = catalog["files"]
        deleted = [p for p in files
                   if p not in found.files and p not in found.denied and found.covers(p)]
        changed: dict[str, Entry] = {}
        touched: dict[str, tuple] = {}
        for relpath, st in found.files.items():
            rec = files.get(relpath)
            if rec is not None and rec[:3] == st:
                continue
            try:
                out = read_entry(self.root, relpath, self.max_bytes)
            except OSError as exc:  # permission denied: keep what the index has
                report.warnings.append(f"cannot read {relpath}: {exc.strerror or exc}; kept as it was")
                continue
            if out is None:  # vanished between scan and read
                if rec is not None:
                    deleted.append(relpath)
                continue
            if rec is not None and rec[3] is not None and rec[3] == out[0][3]:
                touched[relpath] = out[0]  # touched, same bytes: nothing to reindex
                if out[2]:
                    report.warnings.append(out[2])
                continue
            changed[relpath] = out
        self._commit(name, catalog, changed, deleted, report, touched)
        self._backlog.clear()  # what is on disk now is newer than what the watcher had read

    def _apply(self, name: str, catalog: dict, ops: dict, report: ReconcileReport) -> None:
        """The watcher's changes: path -> (bytes, sha256), or None for a deletion."""
        files = catalog["files"]
        deleted = [p for p, op in ops.items() if op is None and p in files]
        changed: dict[str, Entry] = {}
        for relpath, op in ops.items():
            if op is None:
                continue
            data, sha = op
            rec = files.get(relpath)
            if data is None:  # a change without its bytes: read it as a scan would
                try:
                    out = read_entry(self.root, relpath, self.max_bytes)
                except OSError as exc:
                    report.warnings.append(f"cannot read {relpath}: {exc.strerror or exc}; kept as it was")
                    continue
                if out is None:
                    if rec is not None:
                        deleted.append(relpath)
                    continue
            elif rec is not None and rec[3] is not None and rec[3] == sha:
                continue  # the index has these bytes already (a reconcile got there first)
            else:
                # The stat that goes with these bytes is the watcher's; a later
                # scan reads the file once to learn it (its hash then matches).
                out = entry_of(relpath, data, sha or storage.sha256(data), unknown_stat(len(data)), self.max_bytes)
            changed[relpath] = out
        if changed or deleted:
            self._commit(name, catalog, changed, deleted, report)

    def _commit(self, name: str, catalog: dict, changed: dict[str, Entry], deleted: list[str],
                report: ReconcileReport, touched: dict[str, tuple] | None = None) -> None:
        """One Whoosh commit for *changed* and *deleted*, then their catalog rows
        (and the new stat of *touched* files); fills *report*."""
        files = catalog["files"]
        gone = {files[p][3]: p for p in deleted if files[p][3]}
        for relpath, (rec, _, warning) in changed.items():
            if warning:
                report.warnings.append(warning)
            if relpath in files:
                report.changed.append(relpath)
            elif rec[3] in gone:
                report.renamed.append((gone[rec[3]], relpath))
            else:
                report.added.append(relpath)
        report.deleted = sorted(deleted)
        if changed or deleted:
            ix = self._whoosh(name)
            writer = ix.writer(timeout=5.0, codec=codec())
            try:
                for relpath in deleted:
                    writer.delete_by_term("path", relpath)
                for relpath, (_, docs, _) in changed.items():
                    if relpath in files:
                        writer.delete_by_term("path", relpath)
                    for d in docs:
                        writer.add_document(**d)
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
        rows = dict(touched or {})
        rows.update((relpath, rec) for relpath, (rec, _, _) in changed.items())
        catalog_mod.update(self.layout.gen(name), catalog, rows, deleted)

    # -- rebuilding --------------------------------------------------------

    @_index_errors
    def rebuild(self, progress: ProgressFn | None = None, procs: int | None = None,
                if_unusable: bool = False, if_current: str | None = None) -> ReconcileReport:
        """Index the whole vault into a new generation, then switch to it.

        Waits for another process's writer. With *if_unusable*, only reconciles
        when another process made the index usable while we waited; with
        *if_current*, only rebuilds if that generation is still the live one.
        """
        with self._lock:
            return self._rebuild(progress, procs, if_unusable, if_current)

    def _rebuild(self, progress, procs, if_unusable, if_current) -> ReconcileReport:
        lock = self.layout.lock()
        try:
            lock.acquire(timeout=REBUILD_LOCK_WAIT)
        except filelock.Timeout:
            raise SearchIndexError(
                f"the index at {self.layout.dir} is held by another process; try again later"
            ) from None
        try:
            live = self._live()
            replaced = if_current is not None and self.layout.current_name() != if_current
            if live is not None and (if_unusable or replaced):
                report = ReconcileReport()
                try:
                    self._reconcile(live[0], live[1], scan(self.root), report)
                    return report
                except (MirrorfsError, OSError):
                    raise
                except Exception as exc:  # damaged: fall through to a rebuild
                    log.warning("search index %s is damaged (%s); rebuilding", live[0], exc)
            return self._rebuild_locked(progress, procs)
        finally:
            lock.release()

    def _rebuild_locked(self, progress: ProgressFn | None, procs: int | None = None) -> ReconcileReport:
        t0 = time.perf_counter()
        if progress is None:
            progress = terminal_progress()
        found = scan(self.root)
        if found.unreadable:
            # A rebuild would drop those folders' notes; keep the index as it is.
            raise SearchIndexError(
                "cannot rebuild the index: cannot read folder(s) "
                + ", ".join(found.unreadable) + "; fix their permissions and try again"
            )
        report = ReconcileReport(rebuilt=True)
        report.warnings += found.warnings()
        name = f"gen-{secrets.token_hex(8)}"
        gen_dir = self.layout.gen(name)
        gen_dir.mkdir(parents=True, mode=0o700)
        building = generations.ReaderLock(gen_dir)  # not CURRENT yet: no prune may take it
        try:
            windex.create_in(str(gen_dir), TABLE.schema())
            files, warnings = build_generation(
                self.root, str(gen_dir), sorted(found.files), self.max_bytes,
                progress=progress, procs=procs,
            )
            report.warnings += warnings
            report.added = sorted(p for p, rec in files.items() if rec[4].get("status") != "skipped")
            catalog = {
                "schema": SCHEMA_VERSION, "engine": ENGINE, "vault_id": self.vault_id,
                "root": self.root, "files": files, "built": time.time(), "updated": time.time(),
            }
            catalog_mod.save(gen_dir, catalog)
            storage.atomic_write(self.layout.current, name.encode("ascii"))
        except BaseException:
            shutil.rmtree(gen_dir, ignore_errors=True)
            raise
        finally:
            building.release()
        self.close()
        self._backlog.clear()  # the new generation read every file
        # Old generations go now, unless a reader in another process still
        # answers from one: its last reader removes it when it lets go.
        generations.prune(self.layout, keep={name})
        report.seconds = time.perf_counter() - t0
        return report

    # -- querying ----------------------------------------------------------

    def parse(self, text: str, any_word: bool = False):
        """A Whoosh query from mirrorfs query syntax (see parse_query)."""
        return parse_query(text, any_word)

    @_index_errors
    def search(self, q, *, types: Iterable[str] | None = None, messages: bool = True,
               tags: Iterable[str] | None = None, instances: Iterable[str] | None = None,
               paths: Iterable[str] | None = None, limit: int | None = 20,
               terms: bool = False) -> list[RawHit]:
        """Ranked hits of a parsed query: note documents of *types* (all when
        None), plus message documents when *messages*, filtered by tags,
        instances and paths."""
        filt = filters(types, messages, tags, instances, paths)
        return self._run(lambda s: s.search(q, limit=limit, filter=filt, terms=terms))

    def _run(self, fn):
        with self._lock:
            return self._run_locked(fn)

    def _run_locked(self, fn):
        for attempt in (0, 1, 2):
            failing = self.layout.current_name()
            try:
                s = self._open_searcher()
                results = fn(s)
                return [_raw(h) for h in results]
            except QueryError:
                raise
            except Exception as exc:
                # Segments removed under us (a merge or a rebuild elsewhere):
                # reopen once. A second failure means damage: rebuild, unless
                # another process already replaced the generation.
                self.close()
                if attempt == 1:
                    self.recover(failing, exc)
                elif attempt == 2:
                    raise SearchIndexError(f"the search index cannot answer: {exc}") from exc
        raise AssertionError("unreachable")

    def recover(self, failing: str | None, exc: BaseException) -> ReconcileReport:
        """Rebuild after the generation *failing* turned out damaged."""
        log.warning("search index %s is damaged (%s); rebuilding", failing, exc)
        return self.rebuild(if_current=failing or "")

    def query_terms(self, q) -> frozenset[str]:
        """The text terms of a query that exist in the index (prefixes expanded),
        for marking snippets."""
        fields = ("body", "title", "aliases")

        def run():
            found = {t for f, t in q.iter_all_terms(phrases=True) if f in fields}
            reader = None
            for leaf in q.leaves() if q.is_leaf() is False else [q]:
                if isinstance(leaf, wquery.MultiTerm) and leaf.field() in fields:
                    reader = reader or self._open_searcher().reader()
                    for t in list(leaf._btexts(reader))[:1000]:
                        found.add(t.decode("utf-8") if isinstance(t, bytes) else t)
            return frozenset(t for t in found if isinstance(t, str))
        with self._lock:
            try:
                return run()
            except Exception:  # only snippets depend on it
                self.close()
                return frozenset()

    def terms_of(self, text: str) -> set[str]:
        """The index terms of *text*."""
        return set(term_positions(text))

    def key_terms(self, text: str, numterms: int = 12) -> list[tuple[str, float]]:
        """The most characteristic terms of *text* against the whole index."""
        with self._lock:
            s = self._open_searcher()
            return list(s.key_terms_from_text("body", text, numterms=numterms, model=KEY_TERMS_MODEL))

    def similar_query(self, terms: list[tuple[str, float]]):
        """An OR query of weighted key terms ("more like this")."""
        if not terms:
            return wquery.NullQuery
        top = max(w for _, w in terms) or 1.0
        return wquery.Or([wquery.Term("body", t, boost=w / top) for t, w in terms]
                         + [wquery.Term("title", t, boost=w / top) for t, w in terms])

    def highlight(self, text: str, terms: Iterable[str], top: int = 2,
                  chars: int = 180) -> str:
        """Up to *top* passages of *text* with the most distinct matched terms,
        each about *chars* long, terms marked `**term**`."""
        return highlight(text, terms, top, chars)

    def analyze(self, text: str) -> list[str]:
        """The index terms of *text* (as queries see them)."""
        return analyze(text)

    def doc_count(self) -> tuple[int, int]:
        """(all documents, deleted-but-not-merged)."""
        with self._lock:
            r = self._open_searcher().reader()
            return r.doc_count(), r.doc_count_all() - r.doc_count()

    def size_bytes(self) -> int:
        live = self._live()
        if live is None:
            return 0
        return sum(p.stat().st_size for p in self.layout.gen(live[0]).iterdir() if p.is_file())


def search_in_memory(files: dict[str, bytes], q, *, types: Iterable[str] | None = None,
                     messages: bool = True, tags: Iterable[str] | None = None,
                     instances: Iterable[str] | None = None, limit: int | None = 20) -> list[RawHit]:
    """Run a parsed query over documents built from *files* (relpath -> bytes)
    in a throw-away in-memory index. For decrypted sections (`search --unlock`):
    their plaintext must never reach the disk, so they never enter the real index."""
    from whoosh.filedb.filestore import RamStorage  # only `search --unlock` needs it

    ix = RamStorage().create_index(TABLE.schema())
    writer = ix.writer(codec=codec())
    for relpath, data in files.items():
        try:
            entry = file_documents(relpath, data)
        except UnreadableNoteError:
            continue
        for d in entry.docs:
            writer.add_document(**d)
    writer.commit()
    with ix.searcher(weighting=Weighting()) as s:
        hits = s.search(q, limit=limit, filter=filters(types, messages, tags, instances, None), terms=True)
        return [_raw(h) for h in hits]
