"""Appending a message costs the same in a small and a large vault.

Builds two vaults (100 and 10,000 memory notes), appends N messages to a
session in each, and prints the median append time of both and their ratio.
Baseline in the same run: a bare `open(path, "a").write()` of the same block.

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
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"append, vault of    100 notes: median {ms(small):.2f} ms")
    print(f"append, vault of 10,000 notes: median {ms(large):.2f} ms")
    print(f"ratio large/small:             {ms(large) / ms(small):.2f}x")
    print(f"baseline open('a')+fsync:      median {ms(raw):.2f} ms "
          f"(mirrorfs append = {ms(small) / ms(raw):.1f}x the bare append)")


if __name__ == "__main__":
    main()
