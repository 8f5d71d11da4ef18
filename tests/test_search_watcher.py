"""The library's search and recall ask a running watcher first, with the same answers as in-process."""

from __future__ import annotations

import datetime as dt

import pytest

from mirrorfs import search
from mirrorfs.daemon import WatchDaemon
from mirrorfs.errors import InvalidValueError, QueryError
from mirrorfs.results import SearchHit
from mirrorfs.vault import Vault

TIMEOUT = 20
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def _fill(vault: Vault) -> None:
    vault.remember("Sam drinks oolong tea every morning", title="Oolong", tags=["drinks"])
    vault.remember("Green tea after lunch, never oolong at night", title="Afternoon tea")
    s = vault.sessions.create("Tea talk", tags=["drinks"])
    s.add_message("user", "Which oolong should I buy for Sam?")


def _daemon(vault: Vault, **watcher_options) -> WatchDaemon:
    d = WatchDaemon(Vault.open(vault.root, instance="laptop"), echo=lambda line: None,
                    watcher_options=watcher_options)
    d.start()
    assert d.wait_ready(TIMEOUT)
    return d


def test_library_search_and_recall_are_answered_by_the_watcher_with_the_in_process_answers(vault):
    _fill(vault)
    d = _daemon(vault)
    try:
        # In-process, with its own freshness pass, over the same vault and index.
        here = search.search_local(vault, "oolong")
        here_recall = search.recall_local(vault, "oolong tea", now=NOW)
        assert len(here) == 3 and len(here_recall) == 2 and not d.requests
        served = search.search(vault, "oolong")
        assert d.requests.get("search") == 1
        assert all(type(h) is SearchHit for h in served)
        assert list(served) == list(here) and served.warnings == [] and not served.stale
        assert (served.via, here.via) == ("watcher", "local")
        assert list(vault.search("oolong")) == list(here)  # the Vault facade is the same call
        assert d.requests.get("search") == 2
        assert list(search.recall(vault, "oolong tea", now=NOW)) == list(here_recall)
        assert list(vault.recall("oolong tea", now=NOW)) == list(here_recall)
        assert d.requests.get("recall") == 2
        with pytest.raises(QueryError, match="unbalanced quote"):
            search.search(vault, '"oolong')
        with pytest.raises(InvalidValueError, match="limit must be at least 1"):
            search.recall(vault, "oolong", limit=0)
        assert d.requests == {"search": 3, "recall": 3}
    finally:
        d.stop()
    # Without a watcher the library answers itself (the instance card the watcher
    # kept has changed since, so only the hits, not their scores, are compared).
    assert [h.path for h in search.search(vault, "oolong")] == [h.path for h in here]


def test_a_watcher_served_recall_skips_the_freshness_pass_as_search_does(vault):
    _fill(vault)
    # A watcher that waits a minute before it delivers a change: the index it
    # serves from does not have the note below yet, and a query must not look.
    d = _daemon(vault, settle=60.0, max_latency=60.0)
    try:
        vault.remember("Sam's new favourite is an oolong from Taiwan", title="Taiwan oolong")
        assert "memory/taiwan-oolong.md" not in [h.path for h in search.recall(vault, "oolong", now=NOW)]
        assert "memory/taiwan-oolong.md" not in [h.path for h in search.search(vault, "oolong")]
        assert d.requests == {"recall": 1, "search": 1}
        # In-process (a separate process would do the same) the freshness pass finds it.
        assert "memory/taiwan-oolong.md" in [h.path for h in search.recall_local(vault, "oolong", now=NOW)]
    finally:
        d.stop()


def test_hits_survive_the_socket_unchanged():
    hit = SearchHit(path="sessions/a.md", title="A", type="message", score=1.25, snippet="**x**",
                    doc="message", tags=["t"], created=NOW, time=NOW, session="a", message_id="m1",
                    role="user", relevance=0.5)
    assert SearchHit.from_dict(hit.to_dict()) == hit
