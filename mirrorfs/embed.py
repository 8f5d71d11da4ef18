"""Embedders: text in, unit vectors out, behind one small interface.

An embedder has a stable `id` (model, version and dimension), so vectors made by
one model are never compared with another's; `embed(texts)` returns a float32
array of shape (len(texts), dimension) whose rows have length 1 (or 0 for a
text with nothing to embed). The local embedder runs the WordLlama model that
ships inside the `wordllama` wheel (extra `mirrorfs[embed]`) and never touches
the network; the HTTP embedders are in mirrorfs.embed_http and the registry in
mirrorfs.embedders. Why WordLlama: docs/semantic.md.
"""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path
from typing import Sequence

try:
    import numpy as np
except ImportError:  # the core install: numpy comes with the embed extra
    np = None

from mirrorfs.errors import EmbedderError, EmbedderNotInstalledError

INSTALL_HINT = "semantic search needs the embed extra: pip install 'mirrorfs[embed]'"


def installed() -> bool:
    """True when vectors can be made and searched here (numpy, from mirrorfs[embed], imports).

    mirrorfs.vectors and mirrorfs.semantic import numpy; check this first where the
    core install must keep working.
    """
    return np is not None


def unit_rows(vectors, rows: int, dimension: int, who: str) -> "np.ndarray":
    """*vectors* as a (rows, dimension) float32 array with every row scaled to length 1.

    Rows of zeros stay zeros (an empty text has no direction); a wrong shape or a
    NaN is an EmbedderError naming *who*, never the texts.
    """
    if np is None:
        raise EmbedderNotInstalledError(INSTALL_HINT)
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise EmbedderError(f"{who} returned something that is not a list of vectors") from None
    if arr.ndim != 2 or arr.shape[0] != rows or arr.shape[1] != dimension:
        raise EmbedderError(f"{who} returned vectors of shape {tuple(arr.shape)}, "
                            f"expected ({rows}, {dimension})")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.divide(arr, norms, out=arr, where=norms > 0)
    return arr


class Embedder:
    """Base class: subclasses set `name`, `version` and `dimension` and implement `_embed`.

    `calibration` is the (unrelated, same-meaning) pair of cosines that
    mirrorfs.semantic maps to 0 and 1, so that a score threshold means the same
    whatever the model; subclasses measured on tests/recall_set.py set their own.
    """

    name: str = "embedder"
    version: str = "0"
    batch_size: int = 64
    # Texts longer than this are cut before embedding: chunks are far shorter,
    # and a pasted book must not cost gigabytes of padding.
    max_chars: int = 16_000
    calibration: tuple[float, float] = (0.2, 0.7)

    @property
    def dimension(self) -> int:
        raise NotImplementedError

    @property
    def id(self) -> str:
        """Stable identity of the vectors: name@version/dimension."""
        return f"{self.name}@{self.version}/{self.dimension}"

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Unit vectors of *texts*, one row each, in order."""
        if np is None:
            raise EmbedderNotInstalledError(INSTALL_HINT)
        texts = [t[: self.max_chars] for t in texts]
        dim = self.dimension
        out = np.zeros((len(texts), dim), dtype=np.float32)
        # Texts of similar length share a batch, so padding stays small.
        order = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            vecs = self._embed([texts[i] for i in rows])
            out[rows] = unit_rows(vecs, len(rows), dim, self.id)
        return out

    def _embed(self, texts: list[str]):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIM = 256


class LocalEmbedder(Embedder):
    """WordLlama l2_supercat (256 dimensions), loaded from the installed wheel only.

    The package is imported on first use, so `import mirrorfs` stays light and a
    missing extra is a clear EmbedderNotInstalledError when someone asks for it.
    """

    name = f"wordllama-{WORDLLAMA_CONFIG}"
    # Measured on tests/recall_set.py: 90% of unrelated pairs are under 0.12,
    # a question and its memory have a median of 0.32 (docs/semantic.md).
    calibration = (0.1, 0.5)

    def __init__(self) -> None:
        try:
            self.version = importlib.metadata.version("wordllama")
        except importlib.metadata.PackageNotFoundError:
            raise EmbedderNotInstalledError(
                "the local embedder needs the wordllama package: pip install 'mirrorfs[embed]'"
            ) from None
        self._model = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return WORDLLAMA_DIM

    def _load(self):
        with self._lock:
            if self._model is None:
                import wordllama

                # Weights and tokenizer both come from the wheel. load() looks for
                # the tokenizer only in a cache folder, whose layout the package's
                # own folder matches, and would otherwise fetch it from a hub.
                package = Path(wordllama.__file__).parent
                try:
                    self._model = wordllama.WordLlama.load(
                        config=WORDLLAMA_CONFIG, dim=WORDLLAMA_DIM, cache_dir=package,
                        disable_download=True)
                except (OSError, ValueError) as exc:
                    raise EmbedderNotInstalledError(
                        f"the wordllama package is installed but its model cannot be loaded "
                        f"({type(exc).__name__}); reinstall it: pip install --force-reinstall wordllama"
                    ) from None
            return self._model

    def _embed(self, texts: list[str]):
        return self._load().embed(texts, norm=False, batch_size=len(texts))
