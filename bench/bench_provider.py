"""What mirrorfs's provider layer adds to the first streamed token.

Starts the fake vendor server of the tests (tests/fake_llm.py) on 127.0.0.1,
which streams a reply of many small pieces in each vendor's wire format, and
measures the time from "send the request" to "the first piece of text is in
the caller's hands":

* baseline: a bare httpx streaming POST on a kept-alive client, reading lines
  and decoding only as much as needed to find the first piece of text;
* mirrorfs: ``provider.stream(messages)`` up to its first text event
  (message checks, body building, retry bookkeeping, SSE/NDJSON parsing),
  and the same with a device-wide rate limit switched on (a file-locked state
  file per request; the limit is set so high that it never waits).

Each run reads the whole stream (so connections are reused alike), runs
alternate between the contenders, and the script prints p50/p99 and the
ratios against the baseline measured in the same run.

    python3 bench/bench_provider.py [--runs 300] [--pieces 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from fake_llm import FakeLLM, anthropic_stream, ollama_stream, openai_stream  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are Mira."}, {"role": "user", "content": "Tell me a story."}]


def bare_first_token(client: httpx.Client, url: str, body: dict, headers: dict, fmt: str) -> float:
    start = time.perf_counter()
    first = None
    with client.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if first is not None or not line:
                continue
            if fmt == "ndjson":
                if json.loads(line).get("message", {}).get("content"):
                    first = time.perf_counter()
            elif line.startswith("data: ") and ('"content"' in line or '"text_delta"' in line):
                data = json.loads(line[6:])
                text = (data.get("delta") or {}).get("text") if fmt == "anthropic" else \
                    ((data.get("choices") or [{}])[0].get("delta") or {}).get("content")
                if text:
                    first = time.perf_counter()
    return first - start


def mirrorfs_first_token(provider) -> float:
    start = time.perf_counter()
    first = None
    for event in provider.stream(MESSAGES):
        if event.type == "text" and first is None:
            first = time.perf_counter()
    return first - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--pieces", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="mirrorfs-bench-state-")
    os.environ["MIRRORFS_STATE_DIR"] = state
    os.environ["MIRRORFS_CONFIG_DIR"] = os.path.join(state, "config")
    from mirrorfs.provider_http import SOCKET_OPTIONS
    from mirrorfs.providers import get_provider

    pieces = [f"word{i} " for i in range(args.pieces)]
    cases = [
        ("openai", "sse", "/chat/completions", openai_stream(pieces),
         {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
         {"authorization": "Bearer sk-bench"}),
        ("anthropic", "anthropic", "/v1/messages", anthropic_stream(pieces),
         {"model": "claude-sonnet-4-5", "max_tokens": 4096, "system": MESSAGES[0]["content"],
          "messages": MESSAGES[1:], "stream": True},
         {"x-api-key": "sk-bench", "anthropic-version": "2023-06-01"}),
        ("ollama", "ndjson", "/api/chat", ollama_stream(pieces),
         {"model": "llama3.2", "messages": MESSAGES, "stream": True}, {}),
    ]
    print(f"first streamed token, {args.runs} runs each, {args.pieces} pieces per reply, "
          f"fake server on 127.0.0.1 (ms)")
    print(f"{'provider':<10} {'contender':<22} {'p50':>8} {'p99':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    for name, fmt, path, reply, body, headers in cases:
        transport = httpx.HTTPTransport(socket_options=SOCKET_OPTIONS)  # the same socket options as ours
        with FakeLLM(default=reply) as server, httpx.Client(timeout=30, transport=transport) as client:
            plain = get_provider(name, base_url=server.url, api_key="sk-bench")
            limited = get_provider(name, base_url=server.url, api_key="sk-bench", rate_limit_rpm=1e9)
            url = server.url + path
            contenders = {
                "bare httpx": lambda: bare_first_token(client, url, body, headers, fmt),
                "mirrorfs": lambda: mirrorfs_first_token(plain),
                "mirrorfs + rate limit": lambda: mirrorfs_first_token(limited),
            }
            times: dict[str, list[float]] = {k: [] for k in contenders}
            for i in range(args.warmup + args.runs):
                for label, run in contenders.items():
                    value = run()
                    if i >= args.warmup:
                        times[label].append(value)
            plain.close()
            limited.close()
        base50, base99 = pct(times["bare httpx"], 0.5), pct(times["bare httpx"], 0.99)
        for label, values in times.items():
            p50, p99 = pct(values, 0.5), pct(values, 0.99)
            print(f"{name:<10} {label:<22} {p50 * 1e3:8.3f} {p99 * 1e3:8.3f} {p50 / base50:10.2f} "
                  f"{p99 / base99:10.2f}")
        extra = statistics.median(times["mirrorfs"]) - statistics.median(times["bare httpx"])
        print(f"{'':<10} mirrorfs adds {extra * 1e3:.3f} ms at p50")


if __name__ == "__main__":
    main()
