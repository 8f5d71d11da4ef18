"""OpenAI Chat Completions, and every server that speaks it (LM Studio, llama.cpp's
server, vLLM, Ollama's /v1, proxies): ``POST {base_url}/chat/completions``.

A stream is SSE: ``data: {chunk}`` events whose ``choices[0].delta.content``
carries the text, ``finish_reason`` set on the last content chunk, then — because
we ask with ``stream_options: {"include_usage": true}`` — one chunk with empty
``choices`` and the ``usage``, then ``data: [DONE]``. Servers that ignore
``stream_options`` send no usage chunk: usage is then estimated.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from mirrorfs import sse
from mirrorfs.provider_http import HTTPProvider, StreamState, VendorStreamError

__all__ = ["OpenAIProvider"]

OFFICIAL_BASE_URL = "https://api.openai.com/v1"


def _apply_usage(state: StreamState, usage) -> None:
    if not isinstance(usage, dict):
        return
    if isinstance(usage.get("prompt_tokens"), int):
        state.input_tokens = usage["prompt_tokens"]
    if isinstance(usage.get("completion_tokens"), int):
        state.output_tokens = usage["completion_tokens"]
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        state.cached_tokens = details["cached_tokens"]


class OpenAIProvider(HTTPProvider):
    """Chat Completions over httpx; any OpenAI-compatible base URL."""

    name = "openai"
    default_model = "gpt-4o-mini"
    default_base_url = OFFICIAL_BASE_URL
    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    requires_key = True
    path = "/chat/completions"

    def headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}

    def body(self, messages, model, max_tokens, temperature, stream, options) -> dict:
        body: dict = {"model": model, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if max_tokens is not None:
            # OpenAI's newer models refuse max_tokens; compatible servers mostly know only it.
            official = (self.settings.base_url or "").rstrip("/") == OFFICIAL_BASE_URL
            body["max_completion_tokens" if official else "max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        body.update(options)
        return body

    def parse_reply(self, data) -> StreamState:
        state = StreamState(model=data.get("model"), finished=True)
        choices = data.get("choices") or []
        if choices:
            message = choices[0].get("message") or {}
            state.text.append(message.get("content") or "")
            state.stop_reason = choices[0].get("finish_reason")
        _apply_usage(state, data.get("usage"))
        return state

    def feed(self, lines: Iterable[str], state: StreamState) -> Iterator[str]:
        for event in sse.parse(lines):
            if event.data.strip() == "[DONE]":
                state.finished = True
                continue
            chunk = json.loads(event.data)
            if not isinstance(chunk, dict):
                raise ValueError("a stream chunk is not a JSON object")
            if chunk.get("error") is not None:
                kind, message = self.error_details(chunk)
                raise VendorStreamError(kind or "server_error", message)
            if chunk.get("model"):
                state.model = chunk["model"]
            _apply_usage(state, chunk.get("usage"))
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield content
                if choice.get("finish_reason"):
                    state.stop_reason = choice["finish_reason"]
        # A server that closes cleanly after the finish reason but sends no [DONE] has said everything.
        if state.stop_reason is not None:
            state.finished = True
