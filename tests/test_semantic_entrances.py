"""Semantic recall through every entrance: the Vault facade, the MCP tools and the CLI
choose hybrid once this device has embeddings, and keyword search stays exactly as it was."""

from __future__ import annotations

from mirrorfs import embedders, search, semantic
from mirrorfs.mcp_calls import Toolbox

MEMORIES = [
    "Sam drinks green tea every morning.",
    "Maria is allergic to peanuts.",
    "The spare key is under the blue flower pot.",
    "Lena plays the cello in a string quartet.",
]
QUESTION = "Which beverage does he have at breakfast?"


def _remember_all(vault) -> dict[str, str]:
    return {text: vault.remember(text).path for text in MEMORIES}


def test_without_embeddings_the_facade_is_the_keyword_search_it_was(vault):
    _remember_all(vault)
    assert not vault.has_embeddings()
    assert [h.to_dict() for h in vault.search("cello")] == [h.to_dict() for h in search.search(vault, "cello")]
    assert [h.path for h in vault.search(QUESTION)] == []  # no shared word: keyword finds nothing


def test_with_embeddings_the_facade_finds_what_was_meant(vault):
    paths = _remember_all(vault)
    semantic.update(vault, None, embedders.get("local"))
    assert vault.has_embeddings()
    top = vault.search(QUESTION, limit=3)
    assert top[0].path == paths[MEMORIES[0]]
    assert vault.recall(QUESTION, limit=1)[0].path == paths[MEMORIES[0]]
    # An explicit keyword search keeps today's scores and syntax.
    assert [h.to_dict() for h in vault.search("cello", mode="keyword")] == \
        [h.to_dict() for h in search.search(vault, "cello")]
    assert vault.find_similar("A quartet of strings with a cellist", method="semantic", limit=1)[0].path == \
        paths[MEMORIES[3]]


def test_mcp_memory_search_takes_the_same_modes(vault):
    paths = _remember_all(vault)
    semantic.update(vault, None, embedders.get("local"))
    tools = Toolbox(vault)
    hybrid = tools.call("memory_search", {"query": QUESTION, "limit": 3})
    assert not hybrid.is_error and hybrid.data["hits"][0]["path"] == paths[MEMORIES[0]]
    assert hybrid.data["hits"][0]["sha256"]
    keyword = tools.call("memory_search", {"query": QUESTION, "mode": "keyword"})
    assert keyword.data["hits"] == []
    strict = tools.call("memory_search", {"query": QUESTION, "mode": "semantic", "min_score": 0.99})
    assert strict.data["hits"] == []
    bad = tools.call("memory_search", {"query": QUESTION, "mode": "fuzzy"})
    assert bad.is_error and bad.text == "mode of memory_search must be one of keyword, semantic, hybrid (got 'fuzzy')"


def test_the_context_builder_recalls_by_meaning_once_embeddings_exist(vault):
    paths = _remember_all(vault)
    before = vault.context(query=QUESTION, strategy="relevant", budget_tokens=2000)
    assert paths[MEMORIES[0]] not in [item.path for item in before.items]  # no shared word
    semantic.update(vault, None, embedders.get("local"))
    after = vault.context(query=QUESTION, strategy="relevant", budget_tokens=2000)
    memory = [item for item in after.items if item.kind == "memory"]
    assert memory[0].path == paths[MEMORIES[0]] and memory[0].why.startswith("relevant: memory")


def test_the_watcher_embeds_what_another_instance_writes_once_embeddings_exist(vault):
    import queue

    from mirrorfs.daemon import WatchDaemon
    from mirrorfs.vault import Vault

    paths = _remember_all(vault)
    report = vault.embed("local")
    assert report.changed > len(MEMORIES) and report.embedded and vault.has_embeddings()  # memories, SOUL.md, ...
    batches: queue.Queue = queue.Queue()
    daemon = WatchDaemon(vault, echo=lambda line: None)
    daemon.on_batch = batches.put
    daemon.start()
    try:
        assert daemon.wait_ready(30) and daemon.wait_embedded(30)
        phone = Vault.open(vault.root, instance="phone")
        new = phone.remember("Olek rides his bicycle to the office every day.").path
        while not any(c.path == new for c in batches.get(timeout=30)):
            pass
        assert daemon.wait_embedded(30)
        hits = vault.search("How does he commute to work?", mode="semantic", limit=1)
        assert [h.path for h in hits] == [new]
        assert paths[MEMORIES[0]] in [h.path for h in vault.search(QUESTION, mode="semantic", limit=1)]
    finally:
        daemon.stop()


def test_a_watcher_never_starts_embedding_a_vault_on_its_own(vault):
    from mirrorfs import state
    from mirrorfs.daemon import WatchDaemon

    _remember_all(vault)
    daemon = WatchDaemon(vault, echo=lambda line: None).start()
    try:
        assert daemon.wait_ready(30) and daemon.wait_embedded(30)
        assert not state.vectors_file(vault.state_dir).exists()
    finally:
        daemon.stop()


def test_a_running_watcher_answers_semantic_and_hybrid_searches(vault):
    from mirrorfs.daemon import WatchDaemon

    paths = _remember_all(vault)
    vault.embed("local")
    daemon = WatchDaemon(vault, echo=lambda line: None).start()
    try:
        assert daemon.wait_ready(30) and daemon.wait_embedded(30)
        for mode in ("semantic", "hybrid", None):
            served = vault.search(QUESTION, mode=mode, limit=3)
            if mode == "hybrid":
                hybrid = served
            assert served.via == "watcher"
            assert served[0].path == paths[MEMORIES[0]] and served[0].semantic is not None
        assert daemon.requests["semantic"] == 3
        # Keyword with a threshold is answered there too, with the same squashed scores as here.
        served = vault.search("cello", mode="keyword", min_score=0.01)
        assert served.via == "watcher" and [h.path for h in served] == [paths[MEMORIES[3]]]
    finally:
        daemon.stop()
    alone = vault.search(QUESTION, mode="hybrid", limit=3)
    # The same answer here (the presence card it may also list changed when the watcher stopped).
    assert alone.via == "local" and alone[0].to_dict() == hybrid[0].to_dict()
