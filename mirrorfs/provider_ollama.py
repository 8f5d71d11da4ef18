"""Ollama's native chat API: ``POST {base_url}/api/chat`` (``OLLAMA_HOST`` read as Ollama reads it).

A stream is NDJSON, one object a line: ``message.content`` pieces, then a last
object with ``done: true``, ``done_reason`` and the counts ``prompt_eval_count``
(input) and ``eval_count`` (output). Either count may be missing (a prompt
served from Ollama's cache has no prompt evaluation): the missing part is
estimated. An error after the 200 arrives as ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from mirrorfs import sse
from mirrorfs.provider_config import ollama_host_url
from mirrorfs.provider_http import HTTPProvider, StreamState, VendorStreamError

__all__ = ["OllamaProvider"]

# Request fields that sit beside "options" in Ollama's API; every other option is a model parameter.
_TOP_LEVEL = {"format", "keep_alive", "think", "tools"}


def _apply(state: StreamState, data: dict) -> str:
    if data.get("model"):
        state.model = data["model"]
    if data.get("done"):
        state.finished = True
        state.stop_reason = data.get("done_reason") or "stop"
        if isinstance(data.get("prompt_eval_count"), int):
            state.input_tokens = data["prompt_eval_count"]
        if isinstance(data.get("eval_count"), int):
            state.output_tokens = data["eval_count"]
    message = data.get("message") or {}
    return message.get("content") or ""


class OllamaProvider(HTTPProvider):
    """Ollama's /api/chat over httpx."""

    name = "ollama"
    default_model = "llama3.2"
    default_base_url = "http://127.0.0.1:11434"
    api_key_env = "OLLAMA_API_KEY"
    base_url_env = "OLLAMA_HOST"
    requires_key = False
    path = "/api/chat"
    stream_accept = "application/x-ndjson"

    @classmethod
    def base_url_from_env(cls, value: str) -> str:
        return ollama_host_url(value, cls.default_base_url)

    def headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}

    def body(self, messages, model, max_tokens, temperature, stream, options) -> dict:
        body: dict = {"model": model, "messages": messages, "stream": stream}
        params = {}
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            params["num_predict"] = max_tokens
        for key, value in options.items():
            if key in _TOP_LEVEL:
                body[key] = value
            elif key == "options" and isinstance(value, dict):
                params.update(value)
            else:
                params[key] = value
        if params:
            body["options"] = params
        return body

    def parse_reply(self, data) -> StreamState:
        state = StreamState()
        state.text.append(_apply(state, data))
        state.finished = True
        return state

    def feed(self, lines: Iterable[str], state: StreamState) -> Iterator[str]:
        for data in sse.iter_ndjson(lines):
            if not isinstance(data, dict):
                raise ValueError("a stream line is not a JSON object")
            if data.get("error") is not None:
                kind, message = self.error_details(data)
                raise VendorStreamError(kind or "server_error", message)
            piece = _apply(state, data)
            if piece:
                yield piece
