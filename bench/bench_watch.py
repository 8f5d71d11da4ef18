"""Latency of mirroring: from a write by another process to the search hit and the reflection line.

Starts `mirrorfs watch` (instance laptop) as a real process on a generated
vault, then writes memory notes as instance phone from this process, one at a
time, and measures for each:
  - write -> reflection line printed by the watcher (stdout),
  - write -> the note's unique word found by a search through the watcher's socket.
Baseline in the same run: a bare watchdog observer in this process reporting
the same kind of write (the floor any watcher pays).

    python3 bench/bench_watch.py [--size tiny|small|medium] [--writes 60]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from watchdog.events import FileSystemEventHandler  # noqa: E402
from watchdog.observers import Observer  # noqa: E402

import generate  # noqa: E402
from mirrorfs import watch_client  # noqa: E402
from mirrorfs.vault import Vault  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def baseline(root: Path, writes: int) -> list[float]:
    """Bare watchdog: time from a write to its event."""
    events: queue.Queue = queue.Queue()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            if event.src_path.endswith(".md") and event.event_type in ("created", "modified", "closed"):
                events.put((event.src_path, time.perf_counter()))

    folder = root / "baseline"
    folder.mkdir()
    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=True)
    observer.start()
    times = []
    try:
        for i in range(writes):
            path = folder / f"b{i}.md"
            t0 = time.perf_counter()
            path.write_text(f"baseline {i}\n")
            while True:
                src, t = events.get(timeout=10)
                if src == str(path):
                    times.append(t - t0)
                    break
    finally:
        observer.stop()
        observer.join()
    shutil.rmtree(folder)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--writes", type=int, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorfs-bench-watch-"))
    state = tmp / "state"
    os.environ["MIRRORFS_STATE_DIR"] = str(state)
    root = tmp / "vault"
    print(f"generating a {args.size} vault ...", flush=True)
    generate.generate(root, **generate.SIZES[args.size])
    Vault.init(root, name="Bench", instance="laptop")
    phone = Vault.open(root, instance="phone")

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorfs", "--vault", str(root), "--instance", "laptop", "watch"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()

    def reader() -> None:
        for line in proc.stdout:
            lines.put((line.rstrip("\n"), time.perf_counter()))

    threading.Thread(target=reader, daemon=True).start()
    try:
        t0 = time.perf_counter()
        while True:  # wait until the watcher answers and its first index is done
            try:
                if not watch_client.ask(Path(phone.state_dir), "ping")["indexing"]:
                    break
            except ConnectionError:
                pass
            time.sleep(0.05)
        print(f"watcher up with its first index after {time.perf_counter() - t0:.1f} s")
        to_line, to_search = [], []
        for i in range(args.writes):
            word = f"latencyprobe{i:04d}x"
            title = f"Probe {i}"
            t0 = time.perf_counter()
            m = phone.remember(f"A probe note with the word {word}.", title=title)
            found = None
            while found is None:
                hits = watch_client.ask(Path(phone.state_dir), "search", {"query": word, "limit": 1})["hits"]
                if hits and hits[0]["path"] == m.path:
                    found = time.perf_counter() - t0
                else:
                    time.sleep(0.005)
            to_search.append(found)
            while True:
                line, t = lines.get(timeout=30)
                if f'"{title}"' in line:
                    to_line.append(t - t0)
                    break
        base = baseline(tmp, args.writes)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{args.writes} writes by another process into a {args.size} vault:")
    print(f"  write -> reflection line : p50 {pct(to_line, 50):7.1f} ms  p99 {pct(to_line, 99):7.1f} ms")
    print(f"  write -> search hit      : p50 {pct(to_search, 50):7.1f} ms  p99 {pct(to_search, 99):7.1f} ms")
    print(f"  baseline bare watchdog   : p50 {pct(base, 50):7.1f} ms  p99 {pct(base, 99):7.1f} ms")
    print(f"  ratio search hit / bare watchdog (p50): {statistics.median(to_search) / statistics.median(base):.0f}x")


if __name__ == "__main__":
    main()
