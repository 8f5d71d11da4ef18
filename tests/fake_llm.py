"""A fake LLM server on 127.0.0.1 that speaks the vendors' wire formats byte for byte.

`FakeLLM` is a threaded HTTP/1.1 server: each request gets the next scripted
`Reply` (or the default), and every request is recorded (method, path,
headers, body, arrival time) for the test to check. A reply's body goes out
with chunked transfer encoding (as the vendors stream), a Content-Length, or
until the connection closes; ``cut=True`` closes the connection before the
body is complete, the way a dropped connection looks to the client.

The builders (`openai_*`, `anthropic_*`, `ollama_*`) write the bodies as the
vendors document and send them: OpenAI's ``data: {chunk}`` SSE events ending
in a usage chunk and ``data: [DONE]``; Anthropic's named events
(``message_start`` … ``message_stop``, ``ping``, ``error``); Ollama's NDJSON
ending in a ``done: true`` object with ``prompt_eval_count``/``eval_count``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

__all__ = [
    "Reply", "Recorded", "FakeLLM",
    "openai_completion", "openai_stream", "openai_error",
    "anthropic_message", "anthropic_stream", "anthropic_error",
    "ollama_chat", "ollama_stream", "ollama_error",
]


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    framing: str = "chunked"  # "chunked" | "length" | "close"
    cut: bool = False
    # Hold the rest of the body after this many chunks until the event is set (a stream in progress).
    hold_after: int | None = None
    hold: threading.Event | None = None

    def split(self, size: int) -> "Reply":
        """The same body re-chunked into pieces of ``size`` bytes (boundaries anywhere)."""
        body = b"".join(self.chunks)
        self.chunks = [body[i:i + size] for i in range(0, len(body), size)]
        return self


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Vendors flush each event at once; Nagle would hold a small chunk back for the client's ACK.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_POST

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                            time.monotonic())
        reply = self.server.fake._record_and_pick(recorded)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        data = b"".join(reply.chunks)
        if reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.framing == "length":
            self.send_header("Content-Length", str(len(data) + (100 if reply.cut else 0)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if reply.hold is not None and i == reply.hold_after:
                self.wfile.flush()
                reply.hold.wait(30)
            if not chunk:
                continue
            if reply.framing == "chunked":
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
        if reply.framing == "chunked" and not reply.cut:
            self.wfile.write(b"0\r\n\r\n")
        if reply.cut or reply.framing == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close (no test leaks a thread), after stop() has shut the
    # connections a client left open.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    fake: "FakeLLM"

    def __init__(self, *args):
        super().__init__(*args)
        self.live: set[socket.socket] = set()
        self.live_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.live_lock:
            self.live.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.live_lock:
            self.live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-reply is what several tests do on purpose


class FakeLLM:
    """The server; use as a context manager. ``default`` answers when no scripted reply is left
    (a Reply, or a function of the Recorded request returning one)."""

    def __init__(self, default: Reply | Callable[[Recorded], Reply] | None = None):
        self.default = default
        self.requests: list[Recorded] = []
        self._queue: list[Reply] = []
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> "FakeLLM":
        with self._cond:
            self._queue.extend(replies)
        return self

    def _record_and_pick(self, recorded: Recorded) -> Reply:
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()
            if self._queue:
                return self._queue.pop(0)
        default = self.default
        if callable(default):
            return default(recorded)
        if default is not None:
            return default
        return Reply(418, [("Content-Type", "application/json")],
                     [_json({"error": {"message": "the fake server has no reply scripted", "type": "test"}})],
                     framing="length")

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, the server saw {len(self.requests)}")
            return list(self.requests)

    def start(self) -> "FakeLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        with self._server.live_lock:
            live = list(self._server.live)
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- OpenAI ---------------------------------------------------------------------------

_OPENAI_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
_CREATED = 1741570283


def _openai_usage(prompt: int, completion: int, cached: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def openai_completion(text: str, *, model: str = "gpt-4o-mini-2024-07-18", prompt_tokens: int = 12,
                      completion_tokens: int = 5, cached_tokens: int = 0, finish_reason: str = "stop",
                      usage: bool = True) -> Reply:
    body = {"id": _OPENAI_ID, "object": "chat.completion", "created": _CREATED, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": finish_reason}],
            "service_tier": "default", "system_fingerprint": "fp_eb9dce56a8"}
    if usage:
        body["usage"] = _openai_usage(prompt_tokens, completion_tokens, cached_tokens)
    return Reply(200, [("Content-Type", "application/json"), ("x-request-id", "req_openai_1")], [_json(body)],
                 framing="length")


def openai_stream(pieces: Iterable[str], *, model: str = "gpt-4o-mini-2024-07-18",
                  usage: tuple[int, int, int] | None = (12, 5, 0), finish_reason: str = "stop",
                  cut_after: int | None = None, framing: str = "chunked") -> Reply:
    """SSE as OpenAI sends it; ``usage=None`` as a server that ignores include_usage;
    ``cut_after=k`` drops the connection after k content chunks."""

    def chunk(delta: dict, finish=None, choices=True, usage_obj=None) -> bytes:
        obj = {"id": _OPENAI_ID, "object": "chat.completion.chunk", "created": _CREATED, "model": model,
               "service_tier": "default", "system_fingerprint": "fp_eb9dce56a8",
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
        if usage is not None:
            obj["usage"] = usage_obj
        return b"data: " + _json(obj) + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    pieces = list(pieces)
    for i, piece in enumerate(pieces):
        if cut_after is not None and i == cut_after:
            return Reply(200, _sse_headers("x-request-id", "req_openai_s"), events, framing=framing, cut=True)
        events.append(chunk({"content": piece}))
    events.append(chunk({}, finish=finish_reason))
    if usage is not None:
        events.append(chunk({}, choices=False, usage_obj=_openai_usage(*usage)))
    events.append(b"data: [DONE]\n\n")
    return Reply(200, _sse_headers("x-request-id", "req_openai_s"), events, framing=framing)


def openai_error(status: int, message: str, *, type: str, code: str | None = None,
                 headers: Iterable[tuple[str, str]] = ()) -> Reply:
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return Reply(status, [("Content-Type", "application/json"), ("x-request-id", "req_openai_err"), *headers],
                 [_json(body)], framing="length")


def _sse_headers(id_header: str, id_value: str) -> list[tuple[str, str]]:
    return [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
            (id_header, id_value)]


# -- Anthropic ------------------------------------------------------------------------

def _anthropic_usage(input_tokens: int, output_tokens: int, cache_read: int = 0) -> dict:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens, "service_tier": "standard"}


def anthropic_message(text: str, *, model: str = "claude-sonnet-4-5-20250929", input_tokens: int = 25,
                      output_tokens: int = 7, cache_read: int = 0, stop_reason: str = "end_turn") -> Reply:
    body = {"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
            "usage": _anthropic_usage(input_tokens, output_tokens, cache_read)}
    return Reply(200, [("Content-Type", "application/json"), ("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG")],
                 [_json(body)], framing="length")


def _event(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _json(data) + b"\n\n"


def anthropic_stream(pieces: Iterable[str], *, model: str = "claude-sonnet-4-5-20250929", input_tokens: int = 25,
                     output_tokens: int = 15, cache_read: int = 0, stop_reason: str = "end_turn",
                     error_after: int | None = None, error_type: str = "overloaded_error",
                     cut_after: int | None = None) -> Reply:
    """SSE as Anthropic sends it; ``error_after=k`` sends an ``error`` event after k text deltas
    (and ends the stream, as the API does); ``cut_after=k`` drops the connection instead."""
    events = [
        _event("message_start", {"type": "message_start", "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": None, "stop_sequence": None,
            "usage": _anthropic_usage(input_tokens, 1, cache_read)}}),
        _event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
        _event("ping", {"type": "ping"}),
    ]
    headers = _sse_headers("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG")
    for i, piece in enumerate(pieces):
        if error_after is not None and i == error_after:
            events.append(b"event: error\ndata: " + json.dumps(
                {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}).encode() + b"\n\n")
            return Reply(200, headers, events)
        if cut_after is not None and i == cut_after:
            return Reply(200, headers, events, cut=True)
        events.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                     "delta": {"type": "text_delta", "text": piece}}))
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                 "usage": {"output_tokens": output_tokens}}),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return Reply(200, headers, events)


def anthropic_error(status: int, type: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    body = {"type": "error", "error": {"type": type, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return Reply(status, [("Content-Type", "application/json"), ("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
                          *headers], [_json(body)], framing="length")


# -- Ollama ---------------------------------------------------------------------------

_OLLAMA_TIME = "2025-10-26T17:15:24.097767Z"


def _ollama_final(model: str, prompt_eval_count: int | None, eval_count: int | None, done_reason: str,
                  content: str = "") -> dict:
    final = {"model": model, "created_at": _OLLAMA_TIME, "message": {"role": "assistant", "content": content},
             "done": True, "done_reason": done_reason, "total_duration": 4883583458, "load_duration": 1334875}
    if prompt_eval_count is not None:
        final.update(prompt_eval_count=prompt_eval_count, prompt_eval_duration=342546000)
    if eval_count is not None:
        final.update(eval_count=eval_count, eval_duration=4535599000)
    return final


def ollama_chat(text: str, *, model: str = "llama3.2", prompt_eval_count: int | None = 26,
                eval_count: int | None = 9, done_reason: str = "stop") -> Reply:
    return Reply(200, [("Content-Type", "application/json; charset=utf-8")],
                 [_json(_ollama_final(model, prompt_eval_count, eval_count, done_reason, text))], framing="length")


def ollama_stream(pieces: Iterable[str], *, model: str = "llama3.2", prompt_eval_count: int | None = 26,
                  eval_count: int | None = 9, done_reason: str = "stop", cut_after: int | None = None,
                  error_after: int | None = None) -> Reply:
    lines = []
    headers = [("Content-Type", "application/x-ndjson")]
    for i, piece in enumerate(pieces):
        if cut_after is not None and i == cut_after:
            return Reply(200, headers, lines, cut=True)
        if error_after is not None and i == error_after:
            lines.append(_json({"error": "an error was encountered while running the model: unexpected EOF"})
                         + b"\n")
            return Reply(200, headers, lines)
        lines.append(_json({"model": model, "created_at": _OLLAMA_TIME,
                            "message": {"role": "assistant", "content": piece}, "done": False}) + b"\n")
    lines.append(_json(_ollama_final(model, prompt_eval_count, eval_count, done_reason)) + b"\n")
    return Reply(200, headers, lines)


def ollama_error(status: int, message: str) -> Reply:
    return Reply(status, [("Content-Type", "application/json; charset=utf-8")], [_json({"error": message})],
                 framing="length")
