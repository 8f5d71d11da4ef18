"""The built-in providers against fake vendor servers on 127.0.0.1 that speak the real wire formats."""

from __future__ import annotations

import email.utils
import logging
import pickle
import socket
import threading
import traceback

import pytest
from fake_llm import (
    FakeLLM,
    Reply,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    ollama_chat,
    ollama_error,
    ollama_stream,
    openai_completion,
    openai_error,
    openai_stream,
)

from mirrorfs import tokens
from mirrorfs.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderUnavailableError,
    SpendCapError,
    StreamInterruptedError,
)
from mirrorfs.llm import Completion, Usage
from mirrorfs.providers import get_provider
from mirrorfs.retries import RetryPolicy

MESSAGES = [
    {"role": "system", "content": "You are Mira. Be brief."},
    {"role": "user", "content": "What did the phone add today?"},
]
PLANTED = "sk-proj-PLANTEDkey0123456789abcdefXYZ"


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


class Sleeps:
    """A RetryPolicy sleep that records the delays instead of waiting."""

    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def no_wait(sleeps: Sleeps | None = None, **kwargs) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0, **kwargs)


def stream_all(provider, messages=MESSAGES, **kwargs) -> tuple[list[str], Completion]:
    pieces, done = [], None
    for event in provider.stream(messages, **kwargs):
        if event.type == "text":
            assert done is None, "text after the done event"
            pieces.append(event.text)
        else:
            assert done is None, "two done events"
            done = event.completion
    assert done is not None
    return pieces, done


# -- OpenAI ---------------------------------------------------------------------------

def test_openai_complete_sends_chat_completions_and_parses_text_stop_and_usage(server):
    server.script(openai_completion("The phone added a memory.", prompt_tokens=31, completion_tokens=6,
                                    cached_tokens=8, finish_reason="length"))
    with get_provider("openai", base_url=server.url + "/v1", api_key=PLANTED, model="gpt-4o-mini") as p:
        result = p.complete(MESSAGES, max_tokens=50, temperature=0.2, top_p=0.9)
    assert result == Completion("The phone added a memory.", "max_tokens", "gpt-4o-mini-2024-07-18", "openai",
                                Usage(31, 6, 8, estimated=False))
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {PLANTED}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    # A compatible base URL gets max_tokens (the official one gets max_completion_tokens).
    assert body == {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": False, "max_tokens": 50,
                    "temperature": 0.2, "top_p": 0.9}


def test_openai_stream_yields_pieces_then_usage_from_the_include_usage_chunk(server):
    server.script(openai_stream(["The ", "phone ", "added ", "a memory."], usage=(40, 9, 32)))
    with get_provider("openai", base_url=server.url, api_key="sk-x") as p:
        pieces, result = stream_all(p)
    assert pieces == ["The ", "phone ", "added ", "a memory."]
    assert result.text == "The phone added a memory."
    assert result.stop_reason == "end_turn"
    assert result.usage == Usage(40, 9, 32, estimated=False)
    body = server.requests[0].json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert server.requests[0].headers["accept"] == "text/event-stream"


def test_openai_stream_without_the_usage_chunk_gives_estimated_usage(server):
    server.script(openai_stream(["Hello", " there"], usage=None))
    with get_provider("openai", base_url=server.url, api_key="sk-x", model="local-model") as p:
        _, result = stream_all(p)
    assert result.text == "Hello there"
    assert result.usage.estimated is True
    assert result.usage.input_tokens == tokens.estimate_messages(MESSAGES, "local-model")
    assert result.usage.output_tokens == tokens.estimate_text("Hello there", "local-model") == 3


def test_openai_compatible_local_server_needs_no_key_and_gets_no_authorization(server):
    server.script(openai_completion("ok", usage=False))
    with get_provider("openai", base_url=server.url + "/v1", model="qwen2.5-7b-instruct") as p:
        result = p.complete(MESSAGES)
    assert "authorization" not in server.requests[0].headers
    assert result.text == "ok" and result.usage.estimated


def test_openai_official_url_asks_with_max_completion_tokens():
    with get_provider("openai", api_key="sk-x") as p:
        body = p.body(MESSAGES, "gpt-5", 100, None, True, {})
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body


def test_sse_is_parsed_across_any_chunk_boundary_with_crlf_and_comments(server):
    reply = openai_stream(["Grüße ", "aus ", "Köln 🌧"], usage=(10, 4, 0))
    # Same events with CRLF line ends and keep-alive comments, as some proxies send them.
    body = b"".join(reply.chunks).replace(b"\n", b"\r\n")
    body = b": OPENROUTER PROCESSING\r\n\r\n" + body.replace(b"data: [DONE]", b": ping\r\ndata: [DONE]")
    for size in (1, 3, 7, len(body)):
        server.script(Reply(200, reply.headers, [body]).split(size))
        with get_provider("openai", base_url=server.url, api_key="sk-x") as p:
            pieces, result = stream_all(p)
        assert pieces == ["Grüße ", "aus ", "Köln 🌧"], size
        assert result.usage == Usage(10, 4, 0)


def test_openai_error_event_inside_the_stream_before_text_is_retried(server):
    error = Reply(200, [("Content-Type", "text/event-stream")],
                  [b'data: {"error":{"message":"The server had an error","type":"server_error","code":null}}\n\n'])
    server.script(error, openai_stream(["fine"]))
    with get_provider("openai", base_url=server.url, api_key="sk-x", retry=no_wait()) as p:
        _, result = stream_all(p)
    assert result.text == "fine" and len(server.requests) == 2


# -- Anthropic ------------------------------------------------------------------------

def test_anthropic_complete_maps_system_and_turns_and_reads_cache_usage(server):
    server.script(anthropic_message("Noted.", input_tokens=20, output_tokens=3, cache_read=100))
    messages = MESSAGES + [{"role": "user", "content": "And the laptop?"}]
    with get_provider("anthropic", base_url=server.url, api_key=PLANTED) as p:
        result = p.complete(messages, temperature=0.5, stop=["\n\nHuman:"])
    assert result.text == "Noted." and result.stop_reason == "end_turn"
    assert result.model == "claude-sonnet-4-5-20250929" and result.provider == "anthropic"
    assert result.usage == Usage(120, 3, 100, estimated=False)
    (request,) = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == PLANTED
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "claude-sonnet-4-5", "max_tokens": 4096, "system": "You are Mira. Be brief.",
        "messages": [{"role": "user", "content": "What did the phone add today?\n\nAnd the laptop?"}],
        "temperature": 0.5, "stop_sequences": ["\n\nHuman:"],
    }


def test_anthropic_stream_reads_named_events_and_ignores_ping(server):
    server.script(anthropic_stream(["Hello", "! The phone", " added one memory."], input_tokens=25,
                                   output_tokens=15, stop_reason="max_tokens"))
    with get_provider("anthropic", base_url=server.url, api_key="k", max_tokens=15) as p:
        pieces, result = stream_all(p)
    assert pieces == ["Hello", "! The phone", " added one memory."]
    assert result.usage == Usage(25, 15, 0, estimated=False)
    assert result.stop_reason == "max_tokens"
    body = server.requests[0].json()
    assert body["stream"] is True and body["max_tokens"] == 15


def test_anthropic_529_before_any_text_is_retried_and_succeeds(server):
    sleeps = Sleeps()
    server.script(anthropic_error(529, "overloaded_error", "Overloaded"), anthropic_stream(["Back."]))
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait(sleeps)) as p:
        _, result = stream_all(p)
    assert result.text == "Back."
    assert len(server.requests) == 2 and len(sleeps.delays) == 1
    assert sleeps.delays == [0.5]  # the first backoff step (jitter pinned to 0)


def test_anthropic_overloaded_event_before_any_text_is_retried(server):
    server.script(anthropic_stream(["never"], error_after=0), anthropic_stream(["Second ", "try."]))
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait()) as p:
        pieces, result = stream_all(p)
    assert pieces == ["Second ", "try."] and result.text == "Second try."
    assert len(server.requests) == 2


def test_anthropic_overloaded_event_after_text_keeps_the_partial_reply_and_is_not_retried(server):
    server.script(anthropic_stream(["The phone ", "added ", "never sent"], error_after=2, input_tokens=25))
    seen = []
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(StreamInterruptedError) as caught:
            for event in p.stream(MESSAGES):
                seen.append(event.text)
    error = caught.value
    assert seen == ["The phone ", "added "]
    assert error.partial_text == "The phone added "
    assert error.error_type == "overloaded_error"
    assert error.usage.input_tokens == 25 and error.usage.estimated is True
    assert error.usage.output_tokens >= tokens.estimate_text("The phone added ")
    assert "overloaded" in str(error) and "partial text is kept" in str(error)
    assert len(server.requests) == 1


def test_anthropic_invalid_request_event_is_not_retried(server):
    server.script(anthropic_stream(["x"], error_after=0, error_type="invalid_request_error"))
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(ProviderRequestError):
            stream_all(p)
    assert len(server.requests) == 1


# -- Ollama ---------------------------------------------------------------------------

def test_ollama_complete_and_stream_read_eval_counts(server):
    server.script(ollama_chat("Hi from llama.", prompt_eval_count=26, eval_count=5),
                  ollama_stream(["Hi", " from", " llama."], prompt_eval_count=30, eval_count=4))
    with get_provider("ollama", base_url=server.url) as p:
        done = p.complete(MESSAGES, max_tokens=64, temperature=0, seed=7, keep_alive="5m")
        pieces, streamed = stream_all(p)
    assert done == Completion("Hi from llama.", "end_turn", "llama3.2", "ollama", Usage(26, 5, 0, False))
    assert pieces == ["Hi", " from", " llama."]
    assert streamed.usage == Usage(30, 4, 0, False)
    first, second = server.requests
    assert first.path == "/api/chat"
    assert first.json() == {"model": "llama3.2", "messages": MESSAGES, "stream": False, "keep_alive": "5m",
                            "options": {"temperature": 0, "num_predict": 64, "seed": 7}}
    assert second.json()["stream"] is True and second.headers["accept"] == "application/x-ndjson"


def test_ollama_without_eval_counts_gives_estimated_usage(server):
    server.script(ollama_stream(["A", "B"], prompt_eval_count=None, eval_count=None),
                  ollama_stream(["A", "B"], prompt_eval_count=None, eval_count=2))
    with get_provider("ollama", base_url=server.url, model="qwen3") as p:
        _, neither = stream_all(p)
        _, output_only = stream_all(p)
    expected_input = tokens.estimate_messages(MESSAGES, "qwen3")
    assert neither.usage == Usage(expected_input, tokens.estimate_text("AB", "qwen3"), 0, estimated=True)
    assert output_only.usage == Usage(expected_input, 2, 0, estimated=True)


def test_ollama_unknown_model_is_a_request_error_with_its_message(server):
    server.script(ollama_error(404, 'model "nope" not found, try pulling it first'))
    with get_provider("ollama", base_url=server.url, model="nope", retry=no_wait()) as p:
        with pytest.raises(ProviderRequestError) as caught:
            p.complete(MESSAGES)
    assert str(caught.value) == 'ollama rejected the request (404): model "nope" not found, try pulling it first'
    assert len(server.requests) == 1


# -- cut streams ----------------------------------------------------------------------

@pytest.mark.parametrize("provider, reply", [
    ("openai", openai_stream(["one ", "two ", "three"], cut_after=2)),
    ("openai", openai_stream(["one ", "two ", "three"], cut_after=2, framing="close")),
    ("anthropic", anthropic_stream(["one ", "two ", "three"], cut_after=2)),
    ("ollama", ollama_stream(["one ", "two ", "three"], cut_after=2)),
], ids=["openai-chunked", "openai-eof", "anthropic", "ollama"])
def test_a_cut_stream_raises_interrupted_with_the_partial_text(server, provider, reply):
    server.script(reply)
    with get_provider(provider, base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(StreamInterruptedError) as caught:
            stream_all(p)
    assert caught.value.partial_text == "one two "
    assert caught.value.usage.estimated is True
    assert len(server.requests) == 1


def test_a_stream_cut_before_any_text_is_retried(server):
    server.script(openai_stream(["lost"], cut_after=0), openai_stream(["kept"]))
    with get_provider("openai", base_url=server.url, api_key="k", retry=no_wait()) as p:
        _, result = stream_all(p)
    assert result.text == "kept" and len(server.requests) == 2


# -- retries --------------------------------------------------------------------------

def test_429_with_retry_after_waits_as_told_then_succeeds(server):
    server.script(openai_error(429, "Rate limit reached for gpt-4o-mini", type="requests",
                               code="rate_limit_exceeded", headers=[("retry-after-ms", "300"), ("retry-after", "1")]),
                  openai_completion("done"))
    with get_provider("openai", base_url=server.url, api_key="k") as p:
        assert p.complete(MESSAGES).text == "done"
    first, second = server.requests
    # retry-after-ms wins over retry-after; the server saw the retry no sooner than it asked.
    assert second.time - first.time >= 0.3
    assert first.body == second.body


def test_retry_after_in_seconds_and_as_an_http_date_is_honoured(server):
    sleeps = Sleeps()
    now = 1_750_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    server.script(openai_error(429, "slow down", type="requests", code="rate_limit_exceeded",
                               headers=[("Retry-After", "7")]),
                  openai_error(503, "busy", type="server_error", headers=[("Retry-After", date)]),
                  openai_completion("finally"))
    retry = RetryPolicy(sleep=sleeps, random=lambda: 0.0, clock=lambda: now)
    with get_provider("openai", base_url=server.url, api_key="k", retry=retry) as p:
        assert p.complete(MESSAGES).text == "finally"
    assert sleeps.delays == [7.0, 12.0]
    assert len(server.requests) == 3


def test_backoff_doubles_with_jitter_when_the_server_gives_no_wait(server):
    sleeps = Sleeps()
    server.script(*[openai_error(500, "oops", type="server_error")] * 3, openai_completion("ok"))
    retry = RetryPolicy(max_retries=3, sleep=sleeps, random=lambda: 1.0)
    with get_provider("openai", base_url=server.url, api_key="k", retry=retry) as p:
        assert p.complete(MESSAGES).text == "ok"
    assert sleeps.delays == [0.375, 0.75, 1.5]  # 0.5·2^n less the full 25 % jitter


def test_rate_limit_still_hit_after_every_retry(server):
    server.default = openai_error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded")
    with get_provider("openai", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(ProviderRateLimitError) as caught:
            p.complete(MESSAGES)
    assert caught.value.attempts == 3 and len(server.requests) == 3
    assert str(caught.value) == ("openai rate limit hit (429 rate_limit_exceeded): Rate limit reached "
                                 "(after 3 attempts)")
    assert caught.value.request_id == "req_openai_err"


def test_a_wait_longer_than_we_accept_fails_at_once_and_says_how_long(server):
    server.script(anthropic_error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                                  headers=[("retry-after", "3600")]))
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(ProviderRateLimitError) as caught:
            p.complete(MESSAGES)
    assert caught.value.retry_after == 3600
    assert "wait 3600 s" in str(caught.value)
    assert len(server.requests) == 1


def test_spend_cap_429_insufficient_quota_is_not_retried(server):
    server.default = openai_error(429, "You exceeded your current quota, please check your plan and billing "
                                       "details.", type="insufficient_quota", code="insufficient_quota")
    with get_provider("openai", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(SpendCapError) as caught:
            p.complete(MESSAGES)
        with pytest.raises(SpendCapError):
            stream_all(p)
    assert len(server.requests) == 2  # one per call: neither was retried
    assert str(caught.value) == ("openai: the account has no quota or credit left (429 insufficient_quota); "
                                 "check its plan and billing — not retried")


@pytest.mark.parametrize("reply", [
    anthropic_error(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
    anthropic_error(402, "billing_error", "Billing issue"),
], ids=["credit-balance", "billing_error"])
def test_anthropic_billing_errors_are_spend_caps(server, reply):
    server.default = reply
    with get_provider("anthropic", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(SpendCapError):
            p.complete(MESSAGES)
    assert len(server.requests) == 1


def test_x_should_retry_false_is_obeyed(server):
    server.default = Reply(503, [("Content-Type", "application/json"), ("x-should-retry", "false")],
                           [b'{"error":{"message":"maintenance","type":"server_error"}}'], framing="length")
    with get_provider("openai", base_url=server.url, api_key="k", retry=no_wait()) as p:
        with pytest.raises(ProviderUnavailableError):
            p.complete(MESSAGES)
    assert len(server.requests) == 1


def test_a_refused_connection_is_retried_then_reported(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with get_provider("ollama", base_url=f"http://127.0.0.1:{port}", retry=no_wait(sleeps)) as p:
        with pytest.raises(ProviderUnavailableError) as caught:
            p.complete(MESSAGES)
    assert str(caught.value).startswith(f"cannot reach ollama at http://127.0.0.1:{port} (")
    assert caught.value.attempts == 3 and len(sleeps.delays) == 2


def test_a_server_that_never_answers_hits_the_read_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    done = threading.Event()

    def accept():
        conn, _ = listener.accept()
        accepted.append(conn)
        done.wait(10)
        conn.close()

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with get_provider("openai", base_url=url, api_key="k", timeout=0.3, max_retries=0) as p:
            with pytest.raises(ProviderUnavailableError) as caught:
                p.complete(MESSAGES)
    finally:
        done.set()
        thread.join(5)
        listener.close()
    assert str(caught.value) == f"openai at {url} did not answer in time (read timeout, 0.3 s)"


# -- keys stay secret -----------------------------------------------------------------

def _everything_said(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error)),
                      repr(vars(error)), repr(getattr(error, "usage", None))])


def test_401_is_one_line_naming_the_variable_and_never_the_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    masked = PLANTED[:8] + "*" * 20 + PLANTED[-4:]
    server.default = openai_error(401, f"Incorrect API key provided: {masked}. Full: {PLANTED}",
                                  type="invalid_request_error", code="invalid_api_key")
    with get_provider("openai", base_url=server.url, retry=no_wait()) as p:
        with pytest.raises(ProviderAuthError) as caught:
            p.complete(MESSAGES)
    assert str(caught.value) == "openai rejected the API key (401 invalid_api_key): fix OPENAI_API_KEY"
    assert PLANTED not in _everything_said(caught.value) and masked not in _everything_said(caught.value)
    assert len(server.requests) == 1


def test_401_from_a_profile_names_the_profile_variable(server, monkeypatch, state_dir):
    config = state_dir / "config"
    config.mkdir()
    (config / "providers.yaml").write_text(
        f"profiles:\n  work:\n    provider: anthropic\n    base_url: {server.url}\n    api_key_env: WORK_KEY\n")
    monkeypatch.setenv("WORK_KEY", PLANTED)
    server.default = anthropic_error(401, "authentication_error", "invalid x-api-key")
    with get_provider(profile="work") as p:
        with pytest.raises(ProviderAuthError) as caught:
            p.complete(MESSAGES)
    assert str(caught.value) == ("anthropic rejected the API key (401 authentication_error): "
                                 "fix WORK_KEY (api_key_env of profile 'work')")


def test_the_key_never_appears_in_errors_reprs_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"key {PLANTED} and sk-ant-api03-{PLANTED[8:]} rejected"
    server.script(
        openai_error(403, echo, type="permission_error"),
        openai_error(400, echo, type="invalid_request_error"),
        openai_error(500, echo, type="server_error"), openai_error(500, echo, type="server_error"),
        openai_error(500, echo, type="server_error"),
        openai_stream(["partial ", "text"], cut_after=1),
        anthropic_stream(["a", "b"], error_after=1),
    )
    errors = []
    with get_provider("openai", base_url=server.url, api_key=PLANTED, retry=no_wait()) as p:
        for _ in range(3):
            with pytest.raises(ProviderError) as caught:
                p.complete(MESSAGES)
            errors.append(caught.value)
        with pytest.raises(StreamInterruptedError) as caught:
            stream_all(p)
        errors.append(caught.value)
        said = repr(p) + repr(p.settings) + str(p.settings.api_key)
    with get_provider("anthropic", base_url=server.url, api_key=PLANTED, retry=no_wait()) as p:
        with pytest.raises(StreamInterruptedError) as caught:
            stream_all(p)
        errors.append(caught.value)
    with get_provider("openai", base_url="http://127.0.0.1:9", api_key=PLANTED, retry=no_wait()) as p:
        with pytest.raises(ProviderUnavailableError) as caught:
            p.complete(MESSAGES)
        errors.append(caught.value)
        with pytest.raises(TypeError):
            pickle.dumps(p.settings.api_key)
    assert [type(e).__name__ for e in errors] == [
        "ProviderAuthError", "ProviderRequestError", "ProviderUnavailableError", "StreamInterruptedError",
        "StreamInterruptedError", "ProviderUnavailableError"]
    everything = "\n".join(_everything_said(e) for e in errors) + said + caplog.text
    assert PLANTED not in everything
    assert PLANTED[8:20] not in everything
    assert "sk-***" in str(errors[1])
    assert "\n" not in "".join(str(e) for e in errors)


def test_a_json_error_with_200_in_place_of_a_stream_is_reported_as_what_it_says(server):
    server.default = Reply(200, [("Content-Type", "application/json")],
                           [b'{"error":{"message":"model qwen is not loaded","type":"invalid_request_error"}}'],
                           framing="length")
    with get_provider("openai", base_url=server.url, model="qwen", retry=no_wait()) as p:
        with pytest.raises(ProviderRequestError) as caught:
            stream_all(p)
    assert str(caught.value) == "openai rejected the request (invalid_request_error): model qwen is not loaded"
    assert len(server.requests) == 1


def test_an_error_inside_a_200_json_reply_is_classified(server):
    error = Reply(200, [("Content-Type", "application/json")],
                  [b'{"error":{"message":"overloaded, try later","type":"server_error"}}'], framing="length")
    server.script(error, openai_completion("after the retry"))
    with get_provider("openai", base_url=server.url, model="local", retry=no_wait()) as p:
        assert p.complete(MESSAGES).text == "after the retry"
    assert len(server.requests) == 2
