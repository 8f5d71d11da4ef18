"""Which fusion of keyword and vector scores works: measured on tests/recall_set.py.

    python bench/bench_fusion.py

Builds a fresh vault of the set's 60 memories (plus the notes `init` writes),
embeds it with the local embedder, then for every question collects the raw
parts once (BM25 of each keyword hit, cosine of each note) and ranks them with
each candidate fusion. Reports, per candidate: top-3 recall on the paraphrased
questions, top-3 recall on exact-word queries (each memory's rarest word), and
how well one threshold separates answers from non-answers: the share of
answered questions whose memory scores at or above t while the best hit of
every unanswerable question stays below t, at the best t.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402

from recall_set import DISTRACTORS, PAIRS, PLANTED, UNANSWERABLE, exact_word_queries  # noqa: E402


def parts(vault, emb, query: str, strip: bool):
    from mirrorfs import search as search_mod
    from mirrorfs import semantic

    kw_query = semantic.keyword_query(query) if strip else query
    kw = {h.path: h.score for h in search_mod.search(vault, kw_query, limit=200, any_word=True,
                                                     snippets=False, sessions=False)} if kw_query else {}
    units = semantic._vector_units(vault, query, emb, 200, lambda d, t: True)
    cos = {path: v.cosine for (path, _), (_, v) in units.items()}
    return kw, cos, max(1, len(kw_query.split()))


def rank(kw: dict, cos: dict, how: str, emb, n_terms: int = 1) -> list[tuple[str, float]]:
    from mirrorfs import semantic

    if " Kn" in how:  # the half point grows with the number of query words
        how = how.replace(" Kn", " K").replace(how.split(" Kn")[1], str(float(how.split(" Kn")[1]) * n_terms))
    paths = set(kw) | set(cos)
    best_kw = max(kw.values(), default=1.0) or 1.0
    out = []
    for p in paths:
        s = float(semantic.calibrate([cos[p]], emb)[0]) if p in cos else 0.0
        b = kw.get(p, 0.0)
        if how.startswith("max+0.3min"):
            k = b / best_kw if how.endswith("rel") else b / (b + float(how.split("K")[1]))
            score = min(1.0, max(s, k) + 0.3 * min(s, k))
        elif how.startswith("0.7v+0.3t"):
            k = b / best_kw if how.endswith("rel") else b / (b + float(how.split("K")[1]))
            score = 0.7 * s + 0.3 * k
        elif how == "rrf":
            score = 0.0
        elif how == "semantic":
            score = s
        elif how == "mirrorfs":  # what semantic.hybrid_search does
            score = semantic.fuse(s if p in cos else None,
                                  semantic.keyword_score(b, n_terms) if p in kw else None)
        elif how == "keyword":
            score = b / (b + 4.0)
        out.append((p, score))
    if how == "rrf":
        kr = {p: i for i, p in enumerate(sorted(kw, key=lambda p: -kw[p]))}
        vr = {p: i for i, p in enumerate(sorted(cos, key=lambda p: -cos[p]))}
        out = [(p, (1 / (60 + kr[p]) if p in kr else 0) + (1 / (60 + vr[p]) if p in vr else 0)) for p in paths]
    out.sort(key=lambda x: -x[1])
    return out


def main() -> None:
    work = tempfile.mkdtemp(prefix="fusion-")
    os.environ["MIRRORFS_STATE_DIR"] = os.path.join(work, "state")
    try:
        _run(Path(work) / "vault")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(root: Path) -> None:
    from mirrorfs import embedders, semantic
    from mirrorfs.vault import Vault

    vault = Vault.init(root, name="Mira", instance="laptop")
    path_of = {}
    for text in [m for m, _ in PAIRS] + DISTRACTORS + [m for m, _ in PLANTED]:
        path_of[text] = vault.remember(text).path
    emb = embedders.get("local")
    semantic.update(vault, None, emb)
    hows = ["keyword", "semantic", "rrf", "max+0.3min K4", "max+0.3min K8", "max+0.3min rel",
            "max+0.3min Kn4", "max+0.3min Kn6", "max+0.3min Kn8", "0.7v+0.3t K4", "0.7v+0.3t rel",
            "0.7v+0.3t Kn4", "mirrorfs"]
    print(f"{'fusion':<16} {'strip':<6} {'para@3':>7} {'exact@3':>8} {'rare@1':>7} {'threshold':>10} "
          f"{'separated':>10}")
    for strip in (False, True):
        para = [(path_of[m], parts(vault, emb, q, strip)) for m, q in PAIRS]
        exact = [(path_of[m], parts(vault, emb, w, strip)) for m, w in exact_word_queries()]
        rare = [(path_of[m], parts(vault, emb, w, strip)) for m, w in PLANTED]
        none = [parts(vault, emb, q, strip) for q in UNANSWERABLE]
        for how in hows:
            def at(items, k=3):
                return sum(p in [r[0] for r in rank(got[0], got[1], how, emb, got[2])[:k]] for p, got in items) / len(items)

            def score_of(items):
                return [dict(rank(got[0], got[1], how, emb, got[2])).get(p, 0.0) for p, got in items]
            true_scores = np.array(score_of(para) + score_of(rare))
            none_best = np.array([max((s for _, s in rank(got[0], got[1], how, emb, got[2])[:1]), default=0.0)
                                  for got in none])
            best_t, best_sep = 0.0, 0.0
            for t in np.unique(np.concatenate([true_scores, none_best + 1e-9])):
                if (none_best < t).all():
                    sep = float((true_scores >= t).mean())
                    if sep > best_sep:
                        best_t, best_sep = float(t), sep
            print(f"{how:<16} {str(strip):<6} {at(para):>7.3f} {at(exact):>8.3f} {at(rare, 1):>7.3f} "
                  f"{best_t:>10.3f} {best_sep:>10.3f}")


if __name__ == "__main__":
    main()
