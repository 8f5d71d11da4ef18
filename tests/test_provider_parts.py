"""The provider layer's small parts: SSE parsing, retry waits, token estimates, prices, the rate limiter."""

from __future__ import annotations

import email.utils
import json

import pytest
from fake_llm import FakeLLM, openai_completion

from mirrorfs import pricing, sse, statefile, tokens
from mirrorfs.errors import InvalidValueError, ProviderConfigError
from mirrorfs.llm import Completion, Provider, ProviderSettings, StreamEvent, Usage
from mirrorfs.providers import get_provider
from mirrorfs.ratelimit import RateLimiter
from mirrorfs.retries import RetryPolicy, is_retryable_status, retry_after

# -- SSE ------------------------------------------------------------------------------


def test_sse_multi_line_data_named_events_ids_comments_and_retry():
    lines = [
        "\ufeff: a comment first",
        "event: message_start",
        "data: {\"a\":",
        "data:1}",
        "id: 7",
        "retry: 3000",
        "",
        "",  # a second blank line dispatches nothing
        "data",  # a field with no colon: empty data
        "data:  two spaces keep one",
        "",
        "event: ping",
        "",  # an event with no data is not dispatched
        "data: unterminated",
    ]
    events = list(sse.parse(lines))
    assert events == [
        sse.SSEEvent("message_start", '{"a":\n1}', "7", 3000),
        sse.SSEEvent("message", "\n two spaces keep one", "7", 3000),
    ]
    assert events[0].json() == {"a": 1}


def test_sse_ignores_bad_ids_and_retries_and_unknown_fields():
    events = list(sse.parse(["id: a\0b", "retry: soon", "colour: red", "data: x", ""]))
    assert events == [sse.SSEEvent("message", "x", "", None)]


def test_ndjson_skips_blank_lines_and_refuses_a_cut_line():
    assert list(sse.iter_ndjson(['{"a":1}', "", "  ", '{"b":2}'])) == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError):
        list(sse.iter_ndjson(['{"a":1}', '{"b":']))


# -- retries --------------------------------------------------------------------------

def test_retry_after_headers():
    now = 1_750_000_000.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"retry-after": email.utils.formatdate(now + 30, usegmt=True)}, lambda: now) == 30.0
    assert retry_after({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, lambda: now) == 0.0
    for nonsense in ("soon", "-4", "nan", "inf"):
        assert retry_after({"retry-after": nonsense}) is None
    assert retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    assert retry_after({}) is None and retry_after(None) is None


def test_retryable_statuses_as_the_sdks_have_them():
    assert [s for s in (400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529)
            if is_retryable_status(s)] == [408, 409, 429, 500, 502, 503, 504, 529]
    assert is_retryable_status(400, {"x-should-retry": "true"})
    assert not is_retryable_status(503, {"x-should-retry": "false"})


def test_backoff_is_capped_and_a_long_wait_is_refused():
    policy = RetryPolicy(random=lambda: 0.0)
    assert [policy.backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.delay(0, {"retry-after": "61"}) is None
    assert policy.delay(0, {"retry-after": "60"}) == 60.0


# -- token estimates ------------------------------------------------------------------

def test_estimates_are_bytes_over_four_plus_message_overhead():
    assert [tokens.raw_text_tokens(t) for t in ("", "abcd", "abcde", "é", "🌧🌧")] == [0, 1, 2, 1, 2]
    messages = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 9}]
    assert tokens.raw_message_tokens(messages) == 3 + (4 + 10) + (4 + 3)
    assert tokens.estimate_messages(messages, "never-seen") == 24


def test_calibration_learns_each_models_ratio_from_reported_usage(state_dir):
    assert tokens.ratio("m") == 1.0
    assert tokens.calibrate("m", 100, 200) == 2.0
    assert tokens.ratio("m") == 2.0 and tokens.estimate_text("x" * 40, "m") == 20
    assert tokens.calibrate("m", 100, 100) == 1.5  # an average, not the last sample
    assert tokens.calibrate("m", 100, 100_000) == pytest.approx((1.5 * 2 + 4.0) / 3)  # one outlier is clamped
    assert tokens.ratio("other") == 1.0
    stored = json.loads((state_dir / "token_ratios.json").read_text())
    assert stored["models"]["m"]["samples"] == 3


def test_a_reported_usage_calibrates_the_estimates_of_that_model(state_dir):
    messages = [{"role": "user", "content": "z" * 400}]  # raw estimate 3 + 4 + 100 = 107
    with FakeLLM(default=openai_completion("y" * 40, prompt_tokens=207, completion_tokens=13)) as server:
        with get_provider("openai", base_url=server.url, model="tiny", api_key="k") as p:
            p.complete(messages)
    assert tokens.ratio("tiny") == pytest.approx((207 + 13) / (107 + 10))
    assert tokens.estimate_messages(messages, "tiny") == 202


def test_statefile_reads_damage_as_empty(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    assert statefile.read(path) == {}
    with statefile.update(path) as data:
        data["a"] = 1
    assert statefile.read(path) == {"a": 1}


# -- prices ---------------------------------------------------------------------------

def test_shipped_prices_match_by_name_and_dated_prefix_and_unknown_is_none(state_dir):
    million = Usage(1_000_000, 1_000_000, 0)
    assert pricing.cost(million, "gpt-4o-mini") == pytest.approx(0.75)
    assert pricing.cost(million, "gpt-4o-mini-2024-07-18") == pytest.approx(0.75)  # not gpt-4o's price
    assert pricing.cost(million, "claude-sonnet-4-5-20250929") == pytest.approx(18.0)
    assert pricing.cost(Usage(1_000_000, 0, 800_000), "claude-haiku-4-5") == pytest.approx(0.2 + 0.08)
    assert pricing.cost(million, "gpt-4oops") is None
    assert pricing.cost(million, "qwen2.5-7b-instruct", "openai") is None
    assert pricing.cost(million, "llama3.2", "ollama") == 0.0


def test_prices_yaml_overrides_adds_and_forgets(state_dir):
    (state_dir / "config").mkdir()
    (state_dir / "config" / "prices.yaml").write_text(
        "models:\n  gpt-4o-mini: {input: 1, output: 2}\n  my-finetune: {input: 3, output: 12, cached: 1}\n"
        "  claude-3-opus: null\nproviders:\n  openai: {input: 0.5, output: 0.5}\n  ollama: null\n")
    usage = Usage(2_000_000, 1_000_000, 1_000_000)
    assert pricing.cost(usage, "gpt-4o-mini") == pytest.approx(1 * 2 + 2)  # no cached price: input price
    assert pricing.cost(usage, "my-finetune:q4") == pytest.approx(3 + 1 + 12)
    assert pricing.cost(usage, "claude-3-opus-20240229", "anthropic") is None
    assert pricing.cost(usage, "local-thing", "openai") == pytest.approx(1.5)
    assert pricing.cost(usage, "llama3.2", "ollama") is None


@pytest.mark.parametrize("text, message", [
    ("models:\n  m: {input: 1}\n", "models.m needs output"),
    ("models:\n  m: {input: -1, output: 1}\n", "models.m.input must be a number >= 0"),
    ("models:\n  m: {input: 1, output: 1, extra: 2}\n", "models.m has unknown key 'extra'"),
    ("currency: EUR\n", "unknown section 'currency'"),
])
def test_a_bad_prices_yaml_is_one_clear_line(state_dir, text, message):
    (state_dir / "config").mkdir()
    (state_dir / "config" / "prices.yaml").write_text(text)
    with pytest.raises(ProviderConfigError, match=message):
        pricing.load_prices()


# -- the rate limiter -----------------------------------------------------------------

def test_the_rate_limiter_spaces_slots_and_allows_a_burst(tmp_path):
    now = [1000.0]
    spaced = RateLimiter("p", 300, path=tmp_path / "r.json", clock=lambda: now[0])
    assert [round(spaced.reserve(), 6) for _ in range(3)] == [0.0, 0.2, 0.4]
    now[0] += 10
    assert spaced.reserve() == 0.0
    burst = RateLimiter("q", 60, burst=3, path=tmp_path / "r.json", clock=lambda: now[0])
    assert [round(burst.reserve(), 6) for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError):
        RateLimiter("z", 0)


def test_the_rate_limiter_recovers_from_a_clock_that_went_back(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"p": 1_000_000.0}))
    assert RateLimiter("p", 60, path=path, clock=lambda: 1000.0).reserve() == 0.0


def test_a_provider_that_only_streams_also_completes_and_one_with_neither_says_so():
    class Streamer(Provider):
        def stream(self, messages, model=None, max_tokens=None, temperature=None, **options):
            yield StreamEvent("text", text="a")
            yield StreamEvent("text", text="b")
            yield StreamEvent("done", completion=Completion("ab", "end_turn", "m", "s", Usage(1, 1)))

    assert Streamer(ProviderSettings("s")).complete([{"role": "user", "content": "x"}]).text == "ab"
    with pytest.raises(NotImplementedError):
        Provider(ProviderSettings("none")).complete([{"role": "user", "content": "x"}])


@pytest.mark.parametrize("messages, message", [
    ("hello", "messages must be a list"),
    ([{"role": "human", "content": "x"}], "message 0 has role 'human'"),
    ([{"role": "user", "content": 3}], "message 0 content must be a string"),
    ([{"role": "system", "content": "only a system prompt"}], "at least one user or assistant message"),
])
def test_malformed_messages_are_refused_before_any_request(messages, message):
    with FakeLLM() as server:
        with get_provider("ollama", base_url=server.url) as p:
            with pytest.raises(InvalidValueError, match=message):
                p.complete(messages)
        assert server.requests == []
