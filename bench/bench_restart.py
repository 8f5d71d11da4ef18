"""Restarting `mirrorfs watch`: time from start to "watching" on a vault whose index is up to date.

On one vault (default: a copy of the medium bench vault), brings the index up
to date, runs the watcher once (so that it stores what it knows), stops it,
then restarts it several times and measures, each time:

  - process: `mirrorfs watch` spawned -> its "watching" line on stdout
    (interpreter and imports included: what a person waits for);
  - daemon: `WatchDaemon.start()` in this process -> the watcher ready
    (the line "watching" is printed then), imports already done.

Baselines measured in the same run, page cache warm for everyone:
  - the interpreter importing what `mirrorfs watch` imports, and nothing else;
  - `os.stat` of every note (the vault walker), the least a restart that
    trusts nothing it cannot stat must do;
  - reading every note whole (what a start that trusts nothing pays at least);
  - the first start with nothing stored (every note read, hashed and parsed:
    what every start cost before).

    python3 bench/generate.py medium /var/tmp/vault-medium
    python3 bench/bench_restart.py /var/tmp/vault-medium [--restarts 5] [--state DIR]

The watcher writes its presence card into VAULT: give it a generated vault or
a copy. Its first cold index takes a minute or two and is done once (the
state folder, VAULT-state by default, is kept).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirrorfs import ignore  # noqa: E402
from mirrorfs.daemon import WatchDaemon  # noqa: E402
from mirrorfs.index import Index  # noqa: E402
from mirrorfs.known_files import DB_NAME  # noqa: E402
from mirrorfs.vault import Vault  # noqa: E402

INSTANCE = "laptop"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def stat_all(root: Path) -> None:
    for rel, entry in ignore.walk(os.fspath(root), on_error=lambda rel, exc: None):
        entry.stat()


def read_all(root: Path) -> None:
    for rel, _ in ignore.walk(os.fspath(root), on_error=lambda rel, exc: None):
        with open(os.path.join(root, rel), "rb") as f:
            f.read()


def imports_only() -> float:
    # What `mirrorfs watch` imports before it says watching (the index is opened after).
    return timed(lambda: subprocess.run([sys.executable, "-c", "import mirrorfs.cli, mirrorfs.cli_watch, "
                                         "mirrorfs.daemon"], check=True))


def process_start(root: Path, env: dict) -> float:
    """Spawn `mirrorfs watch`, time it to its "watching" line, stop it with SIGINT."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mirrorfs", "--vault", str(root), "--instance", INSTANCE, "watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    took = None
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    for line in proc.stdout:
        if line.startswith("watching "):
            took = time.perf_counter() - t0
            break
    proc.send_signal(2)
    proc.stdout.read()
    proc.wait(60)
    reader.join(10)
    if took is None:
        raise SystemExit(f"`mirrorfs watch` never said watching: {''.join(errors)[-2000:]}")
    return took


def daemon_start(vault: Vault) -> float:
    """WatchDaemon.start() -> watcher ready, in this process."""
    t0 = time.perf_counter()
    daemon = WatchDaemon(vault, echo=lambda line: None, warn=lambda line: None).start()
    try:
        daemon._watcher.wait_ready()
        took = time.perf_counter() - t0
        daemon.wait_ready(600)  # let the first index's catch-up finish before the next run
    finally:
        daemon.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vault", help="a vault made by bench/generate.py (the watcher writes its card there)")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--state", default=None, help="MIRRORFS_STATE_DIR (default: VAULT-state beside the vault)")
    args = parser.parse_args()
    root = Path(args.vault).resolve()
    state = args.state or f"{root}-state"
    os.environ["MIRRORFS_STATE_DIR"] = state
    env = dict(os.environ)
    vault = Vault.open(root, instance=INSTANCE)
    notes = sum(1 for _ in ignore.walk(os.fspath(root), on_error=lambda rel, exc: None))
    print(f"vault {root}: {notes} notes; state {state}; load average {os.getloadavg()[0]:.2f}")

    t = timed(lambda: Index.for_vault(vault).ensure())
    print(f"index brought up to date in {t:.1f} s")

    store = Path(vault.state_dir) / DB_NAME
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    first = process_start(root, env)
    print(f"first start, nothing stored (every note read, hashed, parsed): {first:.2f} s to watching")

    imports = statistics.median(imports_only() for _ in range(3))
    stats = statistics.median(timed(lambda: stat_all(root)) for _ in range(3))
    reads = statistics.median(timed(lambda: read_all(root)) for _ in range(3))

    procs = [process_start(root, env) for _ in range(args.restarts)]
    daemons = [daemon_start(vault) for _ in range(args.restarts)]
    p, d = statistics.median(procs), statistics.median(daemons)

    print()
    print(f"{'':46} {'median':>8} {'min':>8} {'max':>8}")
    print(f"{'restart, process -> watching':46} {p:8.3f} {min(procs):8.3f} {max(procs):8.3f}")
    print(f"{'restart, WatchDaemon.start -> watching':46} {d:8.3f} {min(daemons):8.3f} {max(daemons):8.3f}")
    print(f"{'baseline: interpreter + imports only':46} {imports:8.3f}")
    print(f"{'baseline: os.stat of every note':46} {stats:8.3f}")
    print(f"{'baseline: reading every note':46} {reads:8.3f}")
    print(f"{'first start, nothing stored':46} {first:8.3f}")
    print()
    print(f"restart (process) vs first start: {first / p:.1f}x faster; "
          f"restart minus imports: {p - imports:.3f} s ({(p - imports) / stats:.1f}x one stat pass)")
    print(f"restart (daemon) vs reading every note: {reads / d:.2f}x; vs one stat pass: {d / stats:.1f}x")
    print(f"goal: restart to watching <= 0.5 s: process {'met' if p <= 0.5 else 'NOT met'}, "
          f"daemon {'met' if d <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
