"""Ranking: BM25F without length normalisation, and the "more like this" model."""

from __future__ import annotations

from whoosh import scoring as wscoring
from whoosh.classify import Bo1Model


class SaturatedScorer(wscoring.BaseScorer):
    """BM25 term score without length normalisation (b = 0).

    With b = 0 a block's best score follows from its largest weight alone, so
    Whoosh skips whole blocks of postings that cannot reach the top results
    (and never looks up a document length): a frequent word is scored in a
    few milliseconds instead of tens. Length matters little here: the body's
    weight already combines title, tags and text, and tf saturates at K1.
    """

    def __init__(self, idf: float, max_weight: float, k1: float):
        self.idf = idf
        self.k1 = k1
        self._max = self._score(max_weight)

    def _score(self, weight: float) -> float:
        return self.idf * weight * (self.k1 + 1) / (weight + self.k1)

    def supports_block_quality(self):
        return True

    def score(self, matcher):
        return self._score(matcher.weight())

    def max_quality(self):
        return self._max

    def block_quality(self, matcher):
        return self._score(matcher.block_max_weight())


class Weighting(wscoring.WeightingModel):
    """BM25F with b = 0 over the weighted body (see SaturatedScorer)."""

    K1 = 1.2

    def supports_block_quality(self):
        return True

    def scorer(self, searcher, fieldname, text, qf=1):
        parent = searcher.get_parent()
        info = searcher.term_info(fieldname, text)
        return SaturatedScorer(parent.idf(fieldname, text), info.max_weight(), self.K1)


# Whoosh's "more like this" model, which picks a text's most characteristic terms.
KEY_TERMS_MODEL = Bo1Model
