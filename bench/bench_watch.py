"""Latency of mirroring: from a write by another process to the search hit and the reflection line,
in a small and a large vault, through a real `mirrorfs watch` process.

For each vault size, starts `mirrorfs watch` (instance laptop) on a generated
vault, waits for its first index, then writes memory notes as instance phone
from this process, one at a time, and measures for each:
  - write -> reflection line printed by the watcher (stdout),
  - write -> the note's unique word found by a search through the watcher's socket.
One changed note should reach search at the same cost whatever the vault's size:
the ratio large / small of the p50 write -> search hit is printed (1.0 is the goal).
Baseline in the same run: a bare watchdog observer in this process reporting
the same kind of write (the floor any watcher pays).

    python3 bench/bench_watch.py [--notes 100 10000] [--messages-per-note 1] [--writes 40]
    python3 bench/bench_watch.py --size small      # one generated size, as before
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import signal
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


def measure(tmp: Path, label: str, notes: int, messages: int, writes: int) -> dict:
    """Generate a vault, run a real watcher on it, time *writes* notes from write to hit."""
    work = tmp / label
    # Short: a Unix socket path must stay under ~100 bytes, or the watcher cannot serve.
    state = Path(tempfile.mkdtemp(prefix="mfs-"))
    os.environ["MIRRORFS_STATE_DIR"] = str(state)
    root = work / "vault"
    t0 = time.perf_counter()
    generate.generate(root, notes=notes, messages=messages)
    Vault.init(root, name="Bench", instance="laptop")
    phone = Vault.open(root, instance="phone")
    if len(watch_client.socket_path(phone.state_dir)) > 100:
        raise SystemExit(f"{state} is too long a path for the watcher's socket")
    files = sum(1 for _ in root.rglob("*.md"))
    print(f"[{label}] generated {files} note files ({messages} messages) in {time.perf_counter() - t0:.1f} s",
          flush=True)
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
    to_line, to_search = [], []
    try:
        t0 = time.perf_counter()
        while True:  # wait until the watcher answers and its first index is done
            try:
                if not watch_client.ask(state_dir(phone), "ping")["indexing"]:
                    break
            except ConnectionError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"the watcher exited with {proc.returncode}")
            time.sleep(0.05)
        print(f"[{label}] watcher up with its first index after {time.perf_counter() - t0:.1f} s", flush=True)
        for i in range(writes):
            word = f"latencyprobe{i:04d}x"
            title = f"Probe {i}"
            t0 = time.perf_counter()
            m = phone.remember(f"A probe note with the word {word}.", title=title)
            found = None
            while found is None:
                hits = watch_client.ask(state_dir(phone), "search", {"query": word, "limit": 1})["hits"]
                if hits and hits[0]["path"] == m.path:
                    found = time.perf_counter() - t0
                else:
                    time.sleep(0.002)
            to_search.append(found)
            while True:
                line, t = lines.get(timeout=30)
                if f'"{title}"' in line:
                    to_line.append(t - t0)
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(state, ignore_errors=True)
    return {"label": label, "files": files, "to_line": to_line, "to_search": to_search}


def state_dir(vault: Vault) -> Path:
    return Path(vault.state_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, nargs="+", default=[100, 10_000],
                        help="Vault sizes in notes (default: 100 and 10000).")
    parser.add_argument("--messages-per-note", type=float, default=1.0,
                        help="Session messages generated per note (default 1).")
    parser.add_argument("--size", choices=sorted(generate.SIZES),
                        help="Instead of --notes: one size of bench/generate.py.")
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()
    if args.size:
        sizes = [(args.size, generate.SIZES[args.size]["notes"], generate.SIZES[args.size]["messages"])]
    else:
        sizes = [(f"{n} notes", n, int(n * args.messages_per_note)) for n in args.notes]
    tmp = Path(tempfile.mkdtemp(prefix="mirrorfs-bench-watch-"))
    try:
        runs = [measure(tmp, label.replace(" ", "-"), n, m, args.writes) for label, n, m in sizes]
        base = baseline(tmp, args.writes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(f"\n{args.writes} writes by another process, one at a time (load average {load}):")
    for r in runs:
        print(f"  {r['label']:>14} ({r['files']:>6} files)  write -> search hit: p50 {pct(r['to_search'], 50):7.1f} ms"
              f"  p99 {pct(r['to_search'], 99):7.1f} ms   write -> reflection line: p50 "
              f"{pct(r['to_line'], 50):7.1f} ms  p99 {pct(r['to_line'], 99):7.1f} ms")
    print(f"  {'bare watchdog':>14}                 write -> event:      p50 {pct(base, 50):7.1f} ms"
          f"  p99 {pct(base, 99):7.1f} ms")
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        print(f"  ratio {large['label']} / {small['label']}, write -> search hit: "
              f"p50 {pct(large['to_search'], 50) / pct(small['to_search'], 50):.2f}x, "
              f"p99 {pct(large['to_search'], 99) / pct(small['to_search'], 99):.2f}x")


if __name__ == "__main__":
    main()
