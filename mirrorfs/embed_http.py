"""Embedders served over HTTP: Ollama's /api/embed and OpenAI-compatible /v1/embeddings.

Both talk through a *transport*: a function `post(url, body, headers) -> dict`
that sends JSON and returns the decoded JSON answer or raises
EmbedderRequestError. `httpx_transport()` is the plain one; the provider layer
(retries, keys from the keyring) can be passed in its place without touching
the embedders. Error messages name the server and the HTTP status, never the
API key or the texts.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from mirrorfs.embed import Embedder
from mirrorfs.errors import EmbedderRequestError, InvalidValueError

Transport = Callable[[str, dict, dict], Any]

OLLAMA_DEFAULT = "http://127.0.0.1:11434"
OLLAMA_MODEL = "nomic-embed-text"
OPENAI_DEFAULT = "https://api.openai.com/v1"
OPENAI_MODEL = "text-embedding-3-small"
TIMEOUT = 60.0

# What an API key looks like in a server's error text (OpenAI echoes a masked one).
_KEYLIKE = re.compile(r"\b(?:sk|pk|key|tok)[-_][A-Za-z0-9_\-*.]{6,}")


def public_url(url: str) -> str:
    """*url* without user:password, for messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def scrub(text: str, *secrets: str | None) -> str:
    """*text* with every given secret and anything shaped like an API key masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def _server_reason(response) -> str:
    """A short reason from an error answer: the JSON `error` text when there is one."""
    try:
        data = response.json()
    except ValueError:
        return ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        err = err.get("message")
    return " ".join(str(err).split())[:200] if err else ""


def httpx_transport(timeout: float = TIMEOUT) -> Transport:
    """A transport over one httpx client (keep-alive between batches)."""
    import httpx

    client = httpx.Client(timeout=timeout)

    def post(url: str, body: dict, headers: dict) -> Any:
        secrets = [v for v in headers.values() if isinstance(v, str)]
        where = public_url(url)
        try:
            response = client.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise EmbedderRequestError(f"{where} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            reason = scrub(" ".join(str(exc).split())[:200], *secrets) or type(exc).__name__
            raise EmbedderRequestError(f"cannot reach {where}: {reason}") from None
        if response.status_code >= 400:
            reason = scrub(_server_reason(response), *secrets)
            raise EmbedderRequestError(
                f"{where} answered HTTP {response.status_code}" + (f": {reason}" if reason else ""))
        try:
            return response.json()
        except ValueError:
            raise EmbedderRequestError(f"{where} answered something that is not JSON") from None

    return post


def _vectors(rows: Any, count: int, where: str) -> list:
    if not isinstance(rows, list) or len(rows) != count:
        got = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise EmbedderRequestError(f"{where} returned {got} embeddings for {count} texts")
    return rows


class HTTPEmbedder(Embedder):
    """Common part: the model name, the transport, and the dimension learnt from one call."""

    def __init__(self, model: str, dimension: int | None, transport: Transport | None,
                 version: str | None, calibration: tuple[float, float] | None = None):
        if not model:
            raise InvalidValueError("an embedding model name is required")
        if calibration is not None:
            lo, hi = (float(x) for x in calibration)
            if not -1 <= lo < hi <= 1:
                raise InvalidValueError("calibration must be two cosines, unrelated < same meaning")
            self.calibration = (lo, hi)
        self.model = model
        # A server's model has no version we can ask for; a person who re-pulls a
        # model under the same name can say so here (or drop the old vectors).
        self.version = version or "served"
        self._dimension = dimension
        self._post = transport or httpx_transport()

    @property
    def dimension(self) -> int:
        if self._dimension is None:  # ask once: the id depends on it
            probe = self._request(["dimension"])
            self._dimension = len(probe[0]) if probe and isinstance(probe[0], list) else 0
            if not self._dimension:
                raise EmbedderRequestError(f"{self._where()} returned an empty embedding")
        return self._dimension

    def _embed(self, texts: list[str]):
        return self._request(texts)

    def _request(self, texts: list[str]) -> list:
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError


class OllamaEmbedder(HTTPEmbedder):
    """Ollama's POST /api/embed; the server comes from OLLAMA_HOST as Ollama reads it."""

    batch_size = 32

    def __init__(self, model: str = OLLAMA_MODEL, host: str | None = None,
                 dimension: int | None = None, transport: Transport | None = None,
                 version: str | None = None, calibration: tuple[float, float] | None = None):
        super().__init__(model, dimension, transport, version, calibration)
        self.base = ollama_base(host if host is not None else os.environ.get("OLLAMA_HOST", ""))
        self.name = f"ollama-{model}"

    def _where(self) -> str:
        return public_url(self.base) + "/api/embed"

    def _request(self, texts: list[str]) -> list:
        data = self._post(self.base + "/api/embed", {"model": self.model, "input": texts}, {})
        rows = data.get("embeddings") if isinstance(data, dict) else None
        return _vectors(rows, len(texts), self._where())


def ollama_base(host: str) -> str:
    """OLLAMA_HOST as Ollama understands it: `host`, `host:port` or a URL; 0.0.0.0 means here."""
    host = host.strip().rstrip("/")
    if not host:
        return OLLAMA_DEFAULT
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    hostname = parts.hostname or "127.0.0.1"
    if hostname in ("0.0.0.0", "::"):
        hostname = "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 11434)
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return urlunsplit((parts.scheme, f"{hostname}:{port}", parts.path, "", ""))


class OpenAIEmbedder(HTTPEmbedder):
    """An OpenAI-compatible POST {base}/embeddings (OpenAI, LM Studio, vLLM, llama.cpp ...).

    The key comes from OPENAI_API_KEY and the base URL from OPENAI_BASE_URL
    (default https://api.openai.com/v1); a local server may need no key.
    """

    batch_size = 128

    def __init__(self, model: str = OPENAI_MODEL, base_url: str | None = None,
                 api_key: str | None = None, dimension: int | None = None,
                 transport: Transport | None = None, version: str | None = None,
                 calibration: tuple[float, float] | None = None):
        super().__init__(model, dimension, transport, version, calibration)
        base = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT
        self.base = base.rstrip("/")
        self._key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not self._key and urlsplit(self.base).hostname == "api.openai.com":
            raise EmbedderRequestError("the openai embedder needs an API key: set OPENAI_API_KEY")
        self._ask_dimension = dimension  # models with Matryoshka output accept `dimensions`
        self.name = f"openai-{model}"

    def _where(self) -> str:
        return public_url(self.base) + "/embeddings"

    def _request(self, texts: list[str]) -> list:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self._ask_dimension:
            body["dimensions"] = self._ask_dimension
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        data = self._post(self.base + "/embeddings", body, headers)
        items = data.get("data") if isinstance(data, dict) else None
        items = _vectors(items, len(texts), self._where())
        try:
            ordered = sorted(items, key=lambda item: item["index"])
            return [item["embedding"] for item in ordered]
        except (KeyError, TypeError):
            raise EmbedderRequestError(f"{self._where()} answered without index/embedding fields") from None

    def __repr__(self) -> str:  # never the key
        return f"<OpenAIEmbedder {self.model} at {public_url(self.base)}>"
