"""What a running watcher answers over its socket (`mirrorfs.server`): the query ops.

A mixin of `WatchDaemon`, apart because it is the daemon's other face: the
watching half writes the index and the embeddings, this half reads them. It
uses the daemon's `vault`, `_mutex` (held by each batch), `indexing`,
`_index`, `_watcher`, `_progress`, `_embeds`/`_embed_queue()` and `requests`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from mirrorfs.errors import SearchIndexError
from mirrorfs.vault import Vault

STATUS_FILE = "watch-status.json"


def status_path(vault: Vault) -> Path:
    """The watcher's status file (`mirrorfs status`) in the vault's state folder."""
    return Path(vault.state_dir) / STATUS_FILE


class QueryHandlers:
    """The ops of the watcher's query server, answered in this process."""

    def _handlers(self) -> dict[str, Callable[[dict], Any]]:
        handlers = {
            "ping": lambda args: {"pid": os.getpid(), "indexing": self.indexing},
            "search": self._search,
            "recall": self._recall,
            "similar": self._similar,
            "semantic": self._semantic,
            "status": self._status,
            "reflections": self._reflections,
        }

        def counted(op: str, handler: Callable[[dict], Any]) -> Callable[[dict], Any]:
            def serve(args: dict) -> Any:
                self.requests[op] = self.requests.get(op, 0) + 1
                return handler(args)

            return serve

        return {op: counted(op, handler) for op, handler in handlers.items()}

    def _answer(self, args: dict, run: Callable[[], Any]) -> dict:
        """A query answered in-process, never by a request to ourselves, and with no freshness
        pass: the watcher applies every change within its settle time, which is what makes a
        search here cheaper than alone. During the first build it answers at once, marked so."""
        from mirrorfs import search

        search.check_query(args.get("query", ""))  # a clear error, before a long text holds the watcher up
        with self._mutex:
            if self.indexing and (self._index is None or not self._index.usable()):
                return self._results(search.SearchResults())  # a first build: nothing to wait for
            try:
                results = run()
            except SearchIndexError:
                if not self.indexing:
                    raise
                results = search.SearchResults()  # nothing indexed yet: say so, do not fail
        return self._results(results)

    def _search(self, args: dict) -> dict:
        from mirrorfs import search

        return self._answer(args, lambda: search.search_local(self.vault, reconcile=False, **args))

    def _recall(self, args: dict) -> dict:
        from mirrorfs import search

        return self._answer(args, lambda: search.recall_local(self.vault, reconcile=False, **args))

    def _semantic(self, args: dict) -> dict:
        """`Vault.search` by meaning (semantic, hybrid, or keyword with a threshold): the model stays loaded here."""
        from mirrorfs import search, semantic

        def run():
            if self._embeds is None and not self.indexing:  # embeddings made since this watcher started
                self._embeds = self._embed_queue()
            return semantic.search(self.vault, refresh=False, keyword=search.search_local, **args)

        return self._answer(args, run)

    def _similar(self, args: dict) -> dict:
        """`find_similar` by key terms (the lean console resolved a relative path to the note)."""
        from mirrorfs import search

        with self._mutex:
            return self._results(search.find_similar(self.vault, **args))

    def _status(self, args: dict) -> dict:
        """What `mirrorfs status` prints (read_status): this watcher answers, so it runs."""
        data = json.loads(status_path(self.vault).read_text(encoding="utf-8"))
        data["running"] = bool(data.get("running") and int(data.get("pid", 0)) == os.getpid())
        return data

    def _reflections(self, args: dict) -> dict:
        """What `mirrorfs reflections` (read-only: no --mark-read) shows *instance*, since *since*
        (an ISO time) or since it last looked; only notes this watcher saw modified are read."""
        from mirrorfs import reflections, render

        vault = Vault.open(self.vault.root, instance=args["instance"])
        looked = reflections.last_looked(vault)
        watcher = self._watcher
        found = reflections.vault_reflections(vault, since=args.get("since"),
                                              candidates=watcher.modified_since if watcher else None)
        # Through the CLI's own JSON encoding: the client prints exactly what --json would.
        items = json.loads(json.dumps([r.to_dict() for r in found], default=render.json_default))
        return {"items": items, "looked": looked.isoformat() if looked else None,
                "days": reflections.first_look_days(vault)}

    def _results(self, results) -> dict:
        reply = results.to_reply()
        if self.indexing:
            done, total = self._progress
            so_far = f" ({done:,} of {total:,} files)" if total else ""
            reply["warnings"].append(f"the first index is still being built{so_far}; results cover what is indexed so far")
            reply["stale"] = True
        return reply
