"""The registry of embedders: a name (and options) to an Embedder.

    local    WordLlama from the installed wheel, offline (extra mirrorfs[embed])
    ollama   Ollama's /api/embed at OLLAMA_HOST; option model=
    openai   an OpenAI-compatible /v1/embeddings at OPENAI_BASE_URL with OPENAI_API_KEY;
             options model=, dimension=

Which one a device uses is per-device (MIRRORFS_EMBEDDER, default `local`): a
vault synced to a laptop with Ollama and a phone without must work on both,
each with its own vectors.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from mirrorfs.embed import Embedder, LocalEmbedder, installed  # noqa: F401  (installed: for adapters)
from mirrorfs.embed_http import OllamaEmbedder, OpenAIEmbedder
from mirrorfs.errors import InvalidValueError

ENV_EMBEDDER = "MIRRORFS_EMBEDDER"

FACTORIES: dict[str, Callable[..., Embedder]] = {
    "local": LocalEmbedder,
    "ollama": OllamaEmbedder,
    "openai": OpenAIEmbedder,
}

_CACHE: dict[tuple, Embedder] = {}


def names() -> list[str]:
    """The embedder names `get` accepts."""
    return list(FACTORIES)


def default_name() -> str:
    """This device's embedder: MIRRORFS_EMBEDDER, else `local`."""
    return os.environ.get(ENV_EMBEDDER, "").strip() or "local"


def get(name: str | None = None, **options: Any) -> Embedder:
    """The embedder *name* (default: `default_name()`), built once per process and options.

    Raises InvalidValueError for an unknown name, EmbedderNotInstalledError when
    the local model's package is missing.
    """
    name = name or default_name()
    factory = FACTORIES.get(name)
    if factory is None:
        raise InvalidValueError(f"unknown embedder {name!r}: use one of {', '.join(FACTORIES)}")
    key = (name, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _CACHE:
        _CACHE[key] = factory(**options)
    return _CACHE[key]
