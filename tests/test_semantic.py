"""Semantic and hybrid search on a paraphrase set whose questions share no content word
with their memories (tests/recall_set.py)."""

from __future__ import annotations

import pytest
from counting_embedder import CountingEmbedder
from recall_set import (
    DISTRACTORS,
    FUNCTION_WORDS,
    PAIRS,
    PLANTED,
    UNANSWERABLE,
    exact_word_queries,
)

from mirrorfs import embedders, semantic
from mirrorfs import search as search_mod
from mirrorfs.errors import InvalidValueError
from mirrorfs.index import Index


@pytest.fixture
def recall_vault(vault):
    """The set's memories in a fresh vault, embedded; `paths` maps memory text to its note."""
    vault.paths = {}
    for text in [m for m, _ in PAIRS] + DISTRACTORS + [m for m, _ in PLANTED]:
        vault.paths[text] = vault.remember(text).path
    semantic.update(vault, None, embedders.get("local"))
    return vault


def _at(hits, path: str, k: int) -> bool:
    return path in [h.path for h in hits[:k]]


def test_the_questions_share_no_content_word_with_their_memories(vault):
    idx = Index.for_vault(vault)
    assert len(PAIRS) >= 30 and len(set(m for m, _ in PAIRS)) == len(PAIRS)
    for memory, question in PAIRS:
        terms = [set(idx.analyze(" ".join(w for w in text.lower().replace("?", " ").split()
                                           if w.strip(".,'") not in FUNCTION_WORDS)))
                 for text in (memory, question)]
        assert not terms[0] & terms[1], (memory, question)


def test_semantic_top3_recall_clearly_beats_keyword_recall(recall_vault):
    v = recall_vault
    keyword = sum(_at(search_mod.recall(v, q, limit=3), v.paths[m], 3) for m, q in PAIRS) / len(PAIRS)
    meaning = sum(_at(semantic.semantic_search(v, q, limit=3, types=["memory"]), v.paths[m], 3)
                  for m, q in PAIRS) / len(PAIRS)
    hybrid = sum(_at(semantic.hybrid_search(v, q, limit=3), v.paths[m], 3) for m, q in PAIRS) / len(PAIRS)
    print(f"\ntop-3 recall on {len(PAIRS)} paraphrased questions: keyword (recall) {keyword:.3f}, "
          f"semantic {meaning:.3f}, hybrid {hybrid:.3f}")
    assert keyword <= 0.15
    assert meaning >= 0.8 and hybrid >= 0.8
    assert meaning - keyword >= 0.6


def test_hybrid_keeps_what_keyword_search_finds(recall_vault):
    v = recall_vault
    exact = exact_word_queries()
    kw = sum(_at(search_mod.search(v, w, limit=3), v.paths[m], 3) for m, w in exact) / len(exact)
    hybrid = sum(_at(semantic.hybrid_search(v, w, limit=3), v.paths[m], 3) for m, w in exact) / len(exact)
    rare = [semantic.hybrid_search(v, w, limit=1) for _, w in PLANTED]
    print(f"\nexact-word top-3: keyword {kw:.3f}, hybrid {hybrid:.3f}")
    assert hybrid >= kw >= 0.95
    assert [h[0].path for h in rare] == [v.paths[m] for m, _ in PLANTED]


def test_scores_mean_the_same_across_queries_so_a_threshold_works(recall_vault):
    v = recall_vault
    threshold = 0.42  # measured with bench/bench_fusion.py; docs/semantic.md
    unanswered = [semantic.hybrid_search(v, q, limit=1, min_score=threshold) for q in UNANSWERABLE]
    answered = [semantic.hybrid_search(v, q, limit=5, min_score=threshold) for _, q in PAIRS]
    passed = sum(_at(hits, v.paths[m], 5) for hits, (m, _) in zip(answered, PAIRS)) / len(PAIRS)
    exact = [semantic.hybrid_search(v, w, limit=1, min_score=threshold) for _, w in PLANTED]
    print(f"\nat min_score {threshold}: {sum(map(bool, unanswered))}/{len(UNANSWERABLE)} unanswerable "
          f"questions return something; {passed:.3f} of the answers pass")
    assert sum(map(bool, unanswered)) <= 1
    assert passed >= 0.6
    assert all(hits for hits in exact)
    every = [h.score for q in UNANSWERABLE + [q for _, q in PAIRS] for h in semantic.hybrid_search(v, q)]
    assert all(0.0 <= s <= 1.0 for s in every)


def test_hybrid_scores_are_the_documented_fusion_of_their_parts(recall_vault):
    hits = semantic.hybrid_search(recall_vault, "Sam drink breakfast", limit=10)
    assert hits[0].path == recall_vault.paths[PAIRS[0][0]]
    assert hits[0].semantic is not None and hits[0].keyword is not None
    for h in hits:
        assert h.score == pytest.approx(semantic.fuse(h.semantic, h.keyword), abs=1e-3)
    assert semantic.fuse(0.6, 0.5) == pytest.approx(0.75) and semantic.fuse(None, 0.9) == 0.9
    assert semantic.fuse(1.0, 1.0) == 1.0


def test_message_hits_and_type_filters(vault):
    s = vault.sessions.create("Breakfast talk")
    s.add_message("user", "I always start the day with a cup of green tea.")
    s.add_message("assistant", "Noted: tea in the morning, no coffee.")
    vault.remember("The boiler is serviced every October.")
    semantic.update(vault)
    hits = semantic.semantic_search(vault, "what beverage do I have when I wake up", limit=3)
    assert {(h.doc, h.path, h.role) for h in hits[:2]} == {("message", s.relpath, "user"),
                                                          ("message", s.relpath, "assistant")}
    user = next(h for h in hits if h.role == "user")
    assert user.type == "session" and user.session_title == "Breakfast talk"
    assert user.message_id == s.get_messages()[0].id and user.snippet.startswith("I always start the day")
    assert 0 < user.score <= 1 and user.semantic == user.score
    memory_only = semantic.semantic_search(vault, "what beverage do I have when I wake up", types=["memory"])
    assert {h.type for h in memory_only} == {"memory"}
    sessions_only = semantic.semantic_search(vault, "tea", types=["session"])
    assert sessions_only and {h.type for h in sessions_only} == {"session"}


def test_the_default_mode_is_hybrid_once_embeddings_exist(vault):
    vault.remember("Sam drinks green tea every morning.")
    assert semantic.default_mode(vault) == "keyword"
    assert [h.path for h in semantic.search(vault, "tea")] == ["memory/sam-drinks-green-tea-every-morning.md"]
    emb = CountingEmbedder(embedders.get("local"))
    assert semantic.default_mode(vault, emb) == "keyword"
    semantic.update(vault, None, emb)
    assert semantic.default_mode(vault, emb) == "hybrid"
    hits = semantic.search(vault, "Which beverage does he have at breakfast?", embedder=emb, limit=1)
    assert hits[0].path == "memory/sam-drinks-green-tea-every-morning.md" and hits[0].semantic is not None
    with pytest.raises(InvalidValueError, match="unknown search mode 'fuzzy': use one of keyword, semantic, hybrid"):
        semantic.search(vault, "tea", mode="fuzzy")
    with pytest.raises(InvalidValueError, match="min_score must be between 0 and 1"):
        semantic.search(vault, "tea", mode="semantic", min_score=2)


def test_a_query_embeds_only_what_changed_since_the_last_one(vault):
    emb = CountingEmbedder(embedders.get("local"))
    vault.remember("Sam drinks green tea every morning.")
    semantic.semantic_search(vault, "tea", embedder=emb)
    before = len(emb.texts)
    semantic.semantic_search(vault, "coffee", embedder=emb)
    assert emb.texts[before:] == ["coffee"]  # only the query itself
    vault.remember("Lena plays the cello.")
    semantic.hybrid_search(vault, "music", embedder=emb)
    assert emb.texts[before + 1:] == ["Lena plays the cello.\n\nLena plays the cello.", "music"]


def test_an_unreachable_embedding_server_leaves_plain_search_working(vault):
    from mirrorfs.embed_http import OllamaEmbedder

    vault.remember("Sam drinks green tea every morning.")
    down = OllamaEmbedder(model="nomic-embed-text", host="127.0.0.1:9")  # nothing listens on port 9
    assert semantic.default_mode(vault, down) == "keyword"
    assert [h.path for h in semantic.search(vault, "tea", embedder=down)] == [
        "memory/sam-drinks-green-tea-every-morning.md"]
    from mirrorfs.errors import EmbedderRequestError
    with pytest.raises(EmbedderRequestError, match=r"^cannot reach http://127.0.0.1:9/api/embed"):
        semantic.search(vault, "tea", mode="semantic", embedder=down)


def test_recall_ranks_memories_by_meaning_and_recency(recall_vault):
    v = recall_vault
    found = sum(_at(semantic.recall(v, q, limit=3), v.paths[m], 3) for m, q in PAIRS) / len(PAIRS)
    print(f"\nsemantic recall (hybrid + recency) top-3: {found:.3f}")
    assert found >= 0.8
    hits = semantic.recall(v, PAIRS[0][1], limit=5)
    assert {h.type for h in hits} == {"memory"}
    for h in hits:  # all written just now: recency is ~1 for every one
        assert h.score == pytest.approx(0.7 * h.relevance + 0.3, abs=2e-3)


def test_similar_finds_notes_alike_in_meaning_and_never_the_note_itself(recall_vault):
    v = recall_vault
    tea = v.paths["Sam drinks green tea every morning."]
    for method in semantic.METHODS:
        hits = semantic.similar(v, tea, limit=5, method=method)
        assert tea not in [h.path for h in hits], method
    by_meaning = [h.path for h in semantic.similar(v, tea, limit=3, method="semantic")]
    assert v.paths["I sleep badly when I drink coffee after lunch."] in by_meaning
    text = [h.path for h in semantic.similar(v, "a hot drink to start the day", limit=3)]
    assert tea in text
    assert [h.path for h in semantic.similar(v, tea, method="keyword")] == [
        h.path for h in search_mod.find_similar(v, tea, threshold=0.0)]
    with pytest.raises(InvalidValueError, match="unknown method 'vibes': use one of keyword, semantic, hybrid"):
        semantic.similar(v, tea, method="vibes")
