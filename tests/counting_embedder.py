"""An embedder wrapper that records every text it is given (passed in, never patched in)."""

from __future__ import annotations

from mirrorfs.embed import Embedder


class CountingEmbedder(Embedder):
    """Delegates to *inner*; `texts` holds every text embedded, in order. A *version*
    different from the inner one makes another embedder id (a "changed model")."""

    def __init__(self, inner: Embedder, version: str | None = None):
        self.inner = inner
        self.name = inner.name
        self.version = version or inner.version
        self.calibration = inner.calibration
        self.texts: list[str] = []
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts):
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)
