"""Appending a message costs the same in a small and a large vault, and in a short and a long session.

1. Two vaults (100 and 10,000 memory notes): N appends to a session in each.
2. Sessions that already hold 10, 1,000 and 10,000 messages: N appends to each
   (a flat append writes only the new block; the whole-file path, taken when
   the front matter needs new values, rewrites the session).
Baseline in the same run: a bare `open(path, "a").write()` + fsync of the same block.

    python3 bench/bench_append.py [--messages 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirrorfs import Vault  # noqa: E402
from mirrorfs import messages  # noqa: E402


def build(root: Path, notes: int) -> Vault:
    vault = Vault.init(root, name="Bench", instance="bench")
    folder = root / "memory"
    for i in range(notes):
        (folder / f"note-{i:05d}.md").write_text(
            f"---\nid: {i:012x}\ntype: memory\ntitle: Note {i}\ntags:\n  - bench\n---\n\nBody of note {i}.\n",
            encoding="utf-8",
        )
    return vault


def time_appends(vault: Vault, count: int) -> list[float]:
    session = vault.sessions.create("Bench session")
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        session.add_message("user" if i % 2 == 0 else "assistant", f"Message number {i} with some words in it.")
        times.append(time.perf_counter() - t0)
    return times


def long_session(vault: Vault, held: int):
    """A session file that already holds *held* messages, written whole (fast to build)."""
    session = vault.sessions.create(f"Held {held}")
    blocks = "".join(messages.render(messages.make("user" if i % 2 == 0 else "assistant",
                                                   f"Earlier message {i} with some words in it.", "bench"))
                     for i in range(held))
    with open(session.path, "a", encoding="utf-8") as f:
        f.write(blocks)
    return session


def time_held(vault: Vault, held: int, count: int, **metadata) -> list[float]:
    session = long_session(vault, held)
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        session.add_message("user", f"New message {i} with some words in it.", **metadata)
        times.append(time.perf_counter() - t0)
    return times


def time_raw(path: Path, count: int) -> list[float]:
    block = messages.render(messages.make("user", "Message with some words in it.", "bench"))
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        with open(path, "a", encoding="utf-8") as f:
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MIRRORFS_STATE_DIR", str(Path(tmp) / "state"))
        small = time_appends(build(Path(tmp) / "small", 100), args.messages)
        large = time_appends(build(Path(tmp) / "large", 10_000), args.messages)
        raw = time_raw(Path(tmp) / "raw.md", args.messages)
        held = {n: time_held(build(Path(tmp) / f"held-{n}", 0), n, args.messages) for n in (10, 1_000, 10_000)}
        # The whole-file path, as a message with token counts takes it (the front matter sums them).
        whole = {n: time_held(build(Path(tmp) / f"whole-{n}", 0), n, max(20, args.messages // 10), tokens=1)
                 for n in (10, 10_000)}
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    p99 = lambda xs: sorted(xs)[int(len(xs) * 0.99) - 1] * 1000  # noqa: E731
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"append, vault of    100 notes: median {ms(small):.2f} ms")
    print(f"append, vault of 10,000 notes: median {ms(large):.2f} ms")
    print(f"ratio large/small:             {ms(large) / ms(small):.2f}x")
    print(f"baseline open('a')+fsync:      median {ms(raw):.2f} ms "
          f"(mirrorfs append = {ms(small) / ms(raw):.1f}x the bare append)")
    for n, times in held.items():
        print(f"append to a session of {n:>6,} messages: median {ms(times):.2f} ms, p99 {p99(times):.2f} ms")
    print(f"ratio 10,000 / 10 messages:    {ms(held[10_000]) / ms(held[10]):.2f}x (target within 2x)")
    for n, times in whole.items():
        print(f"whole-file path (token counts), session of {n:>6,}: median {ms(times):.2f} ms")


if __name__ == "__main__":
    main()
