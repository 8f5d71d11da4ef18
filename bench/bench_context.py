"""The context builder on a generated vault, and what `vault.ask_stream` adds to the first streamed token.

On a copy of a vault made by bench/generate.py (the original is never
touched), with per-device state in a temp folder:

  - the copy's file times are set to their notes' own `updated` times, as a
    synced vault has them (a fresh generate leaves every file "just written",
    which would make every note news to the reflections); then another
    instance ("phone") adds a few memories and a conversation, and this
    instance ("laptop") holds a 40-message conversation that is continued;
  - context build p50/p99 (`vault.context`, strategy relevant with a question,
    recent, summarized from an existing summary) in one long-running process,
    without a watcher and through a running `mirrorfs watch`; and the two
    parts that dominate it, measured alone: the other instances' activity
    (reflections over the last days) and recall;
  - first streamed token: a bare httpx streaming call to the fake OpenAI server
    of the tests versus `vault.ask_stream` to the same server, through the
    watcher (the difference is what mirrorfs adds: writing the user's message,
    building the context, the provider layer).

    python3 bench/bench_context.py --vault /var/tmp/vault-medium [--runs 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

BIN = Path(sys.executable).parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(label: str, values: list[float]) -> str:
    return f"  {label:<52} p50 {pct(values, 0.5) * 1e3:8.1f} ms   p99 {pct(values, 0.99) * 1e3:8.1f} ms"


def age_files(root: Path) -> int:
    """Set each note's mtime to its own `updated` (else `created`) time, as sync tools keep them."""
    from mirrorfs import note
    from mirrorfs.clock import time_or_none

    fallback = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    n = 0
    for path in root.rglob("*.md"):
        if ".mirrorfs" in path.parts:
            continue
        try:
            meta = note.read_front_matter(path)
        except Exception:  # an unparseable note keeps the fallback time
            meta = {}
        when = time_or_none(meta.get("updated") or meta.get("created"))
        ts = when.timestamp() if when else fallback
        os.utime(path, (ts, ts))
        n += 1
    return n


def questions(count: int) -> list[str]:
    import generate

    rng = random.Random(7)
    return [f"What did we decide about the {rng.choice(generate.TOPIC_WORDS)} and the "
            f"{rng.choice(generate.TOPIC_WORDS)}?" for _ in range(count)]


def timed(fn, runs: int) -> list[float]:
    out = []
    for i in range(runs):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def build_times(vault, session, qs: list[str], runs: int) -> dict[str, list[float]]:
    from mirrorfs import context_sources

    return {
        "relevant (question, 2000 tokens)": timed(lambda i: vault.context(qs[i % len(qs)], strategy="relevant",
                                                                          session=session, message=qs[i % len(qs)]),
                                                  runs),
        "recent (2000 tokens)": timed(lambda i: vault.context(strategy="recent", session=session,
                                                              message=qs[i % len(qs)]), runs),
        "summarized (summary reused, 2000 tokens)": timed(lambda i: vault.context(
            qs[i % len(qs)], strategy="summarized", session=session, message=qs[i % len(qs)]), runs),
        "  part: other instances' activity (3 days)": timed(lambda i: context_sources.activity(vault), runs),
        "  part: recall (memories + messages)": timed(lambda i: context_sources.relevant(vault, qs[i % len(qs)]),
                                                      runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vault", required=True, help="a vault made by bench/generate.py (copied first)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pieces", type=int, default=50)
    parser.add_argument("--work", default="/var/tmp", help="where the copy goes")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between two asks (a person typing)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mirrorfs-bench-context-", dir=args.work))
    state = work / "state"
    os.environ["MIRRORFS_STATE_DIR"] = str(state)
    os.environ["MIRRORFS_CONFIG_DIR"] = str(state / "config")
    root = work / "vault"
    watch = None
    try:
        t = time.perf_counter()
        shutil.copytree(args.vault, root)
        aged = age_files(root)
        print(f"copied {args.vault} to {root} and aged {aged} notes' mtimes in {time.perf_counter() - t:.1f} s")

        import httpx

        from fake_llm import FakeLLM, openai_completion, openai_stream
        from mirrorfs import server
        from mirrorfs.provider_http import SOCKET_OPTIONS
        from mirrorfs.providers import get_provider
        from mirrorfs.vault import Vault

        env = {**os.environ}
        t = time.perf_counter()
        subprocess.run([str(BIN / "mirrorfs"), "--vault", str(root), "index", "rebuild"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"index built once (not timed): {time.perf_counter() - t:.1f} s")

        phone = Vault.open(root, instance="phone")
        phone.instances.ensure_card()
        phone.instances.intend("Book the ryokan for 31 March")
        for i in range(3):
            phone.remember(f"Phone note {i}: the museum garden opens at nine on weekdays", title=f"Garden {i}")
        talk = phone.sessions.create("Weekend plans")
        for i in range(3):
            talk.add_message("user", f"Shall we take the train to the river on day {i}?")
            talk.add_message("assistant", "Yes, the morning train, back before the concert.")
        vault = Vault.open(root, instance="laptop")
        vault.instances.ensure_card()
        session = vault.sessions.create("Long conversation")
        for i in range(20):
            session.add_message("user", f"Question {i} about the project deadline and the release testing plan.")
            session.add_message("assistant", f"Answer {i}: " + "we keep the roadmap, the index and the search "
                                "latency in view; " * 6)
        with FakeLLM(default=openai_completion("- The project deadline holds; testing first.")) as fake:
            with get_provider("openai", base_url=fake.url + "/v1", api_key="sk-bench") as llm:
                made = vault.context(strategy="summarized", session=session, provider=llm)
        print(f"summary for the conversation made once: {'summary' in made.kinds()}")
        qs = questions(args.runs)

        print(f"\ncontext build, {args.runs} runs each, one long-running process (ms):")
        print(" without a watcher (the first call opened the index; not counted):")
        vault.context(qs[0], strategy="relevant", session=session, message=qs[0])
        alone = build_times(vault, session, qs, args.runs)
        for label, values in alone.items():
            print(line(label, values))

        watch = subprocess.Popen([str(BIN / "mirrorfs"), "--vault", str(root), "--instance", "laptop", "watch"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 900
        while True:
            try:
                if not server.ask(vault.state_dir, "ping")["indexing"]:
                    break
            except ConnectionError:
                pass
            if time.monotonic() > deadline or watch.poll() is not None:
                raise SystemExit("the watcher did not come up")
            time.sleep(0.2)  # a bench polling a subprocess; no timing depends on it
        print(" through a running mirrorfs watch:")
        watched = build_times(vault, session, qs, args.runs)
        for label, values in watched.items():
            print(line(label, values))
        sample = vault.context(qs[0], strategy="relevant", session=session, message=qs[0])
        print(f"  (a relevant bundle: {len(sample.items)} items, {sample.used_tokens} tokens: "
              f"{', '.join(sample.kinds())})")

        pieces = [f"word{i} " for i in range(args.pieces)]
        with FakeLLM(default=openai_stream(pieces)) as fake, \
                httpx.Client(timeout=30, transport=httpx.HTTPTransport(socket_options=SOCKET_OPTIONS)) as client:
            url = fake.url + "/v1/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": sample.messages(), "stream": True,
                    "stream_options": {"include_usage": True}}

            def bare() -> float:
                start = time.perf_counter()
                first = None
                with client.stream("POST", url, json=body, headers={"authorization": "Bearer sk-bench"}) as r:
                    for raw in r.iter_lines():
                        if first is None and raw.startswith("data: ") and '"content"' in raw:
                            delta = json.loads(raw[6:])["choices"][0]["delta"].get("content")
                            if delta:
                                first = time.perf_counter()
                return first - start

            with get_provider("openai", base_url=fake.url + "/v1", api_key="sk-bench") as llm:
                def ours(i: int) -> float:
                    start = time.perf_counter()
                    first = None
                    for event in vault.ask_stream(qs[i % len(qs)], session=session, provider=llm):
                        if event.type == "text" and first is None:
                            first = time.perf_counter()
                    return first - start

                bare_times, ours_times = [], []
                for i in range(5 + args.runs):
                    b, o = bare(), ours(i)
                    if i >= 5:
                        bare_times.append(b)
                        ours_times.append(o)
                    # A person reads the reply and types the next message: the watcher has indexed the
                    # reply by then. Back to back, the next context's searches would wait for that indexing.
                    time.sleep(args.pause)
        print(f"\nfirst streamed token through a running watcher, {args.runs} runs, fake OpenAI server on "
              f"127.0.0.1, {args.pieces} pieces per reply:")
        print(line("bare httpx streaming POST (same prompt)", bare_times))
        print(line(f"vault.ask_stream (strategy relevant, {args.pause:g} s apart)", ours_times))
        extra = pct(ours_times, 0.5) - pct(bare_times, 0.5)
        print(f"  mirrorfs adds {extra * 1e3:.1f} ms at p50 (ratio {pct(ours_times, 0.5) / pct(bare_times, 0.5):.1f}x):"
              " the context built, the user's message written (fsync), the provider layer")
    finally:
        if watch is not None:
            watch.send_signal(signal.SIGTERM)
            try:
                watch.wait(60)
            except subprocess.TimeoutExpired:
                watch.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
