"""Anthropic's Messages API: ``POST {base_url}/v1/messages`` with ``x-api-key`` and
``anthropic-version``.

System messages go in the top-level ``system`` field (the API has no system
role); consecutive messages of one role are joined, since the API wants turns.
A stream is SSE with named events: ``message_start`` (model, input and cache
usage), ``content_block_start``, ``content_block_delta`` (``text_delta``
pieces), ``content_block_stop``, ``message_delta`` (stop reason, cumulative
output tokens), ``message_stop``; ``ping`` keeps the connection alive and
``error`` (e.g. ``overloaded_error``) can come at any point after the 200.
Unknown events are ignored, as Anthropic's versioning policy asks.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from mirrorfs import sse
from mirrorfs.provider_http import HTTPProvider, StreamState, VendorStreamError

__all__ = ["AnthropicProvider", "API_VERSION", "DEFAULT_MAX_TOKENS"]

API_VERSION = "2023-06-01"
# The API requires max_tokens; this is what we ask for when the caller does not say.
DEFAULT_MAX_TOKENS = 4096


def _apply_usage(state: StreamState, usage, counts: dict) -> None:
    if not isinstance(usage, dict):
        return
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if isinstance(usage.get(key), int):
            counts[key] = usage[key]
    if "input_tokens" in counts:
        # Anthropic counts cache reads and writes apart from input_tokens; ours includes them.
        state.input_tokens = (counts["input_tokens"] + counts.get("cache_read_input_tokens", 0)
                              + counts.get("cache_creation_input_tokens", 0))
        state.cached_tokens = counts.get("cache_read_input_tokens", 0)
    if "output_tokens" in counts:
        state.output_tokens = counts["output_tokens"]


def _turns(messages: list[dict]) -> tuple[str, list[dict]]:
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns: list[dict] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1] = {"role": m["role"], "content": turns[-1]["content"] + "\n\n" + m["content"]}
        else:
            turns.append(dict(m))
    return "\n\n".join(system), turns


class AnthropicProvider(HTTPProvider):
    """The Messages API over httpx."""

    name = "anthropic"
    default_model = "claude-sonnet-4-5"
    default_base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    requires_key = True
    path = "/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.settings.api_key is not None:
            headers["x-api-key"] = self.settings.api_key.reveal()
        return headers

    def body(self, messages, model, max_tokens, temperature, stream, options) -> dict:
        system, turns = _turns(messages)
        body: dict = {"model": model, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS, "messages": turns}
        if system:
            body["system"] = system
        if temperature is not None:
            body["temperature"] = temperature
        if stream:
            body["stream"] = True
        if "stop" in options:
            stop = options.pop("stop")
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        body.update(options)
        return body

    def parse_reply(self, data) -> StreamState:
        state = StreamState(model=data.get("model"), stop_reason=data.get("stop_reason"), finished=True)
        for block in data.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text":
                state.text.append(block.get("text") or "")
        _apply_usage(state, data.get("usage"), {})
        return state

    def feed(self, lines: Iterable[str], state: StreamState) -> Iterator[str]:
        counts: dict = {}
        for event in sse.parse(lines):
            name = event.event
            if name == "ping":
                continue
            data = event.json()
            if not isinstance(data, dict):
                raise ValueError("an event is not a JSON object")
            name = data.get("type") or name
            if name == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield delta["text"]
            elif name == "message_start":
                message = data.get("message") or {}
                state.model = message.get("model") or state.model
                _apply_usage(state, message.get("usage"), counts)
            elif name == "message_delta":
                delta = data.get("delta") or {}
                if delta.get("stop_reason"):
                    state.stop_reason = delta["stop_reason"]
                _apply_usage(state, data.get("usage"), counts)
            elif name == "message_stop":
                state.finished = True
            elif name == "error":
                kind, message = self.error_details(data)
                raise VendorStreamError(kind or "api_error", message)
