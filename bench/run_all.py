"""Every figure in the README, regenerated in one command.

    python3 bench/run_all.py                       # all benchmarks, a generated medium vault
    python3 bench/run_all.py --only search append  # some of them
    python3 bench/run_all.py --list                # what runs, with the README row each one feeds
    python3 bench/run_all.py --log run.txt         # also keep the whole output

Each benchmark runs in its own process, one after the other, and prints its
figures next to the baseline it measures in the same run. Before and after each
one this prints the machine's load (1-minute average) and core count, because a
figure measured while something else ran says little: rerun it on a quiet
machine before comparing. The medium vault is generated once (the same bytes
for the same seed) under --work and reused; benchmarks that write copy it
first.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> (README row it feeds, arguments after `python3`); {vault} is the medium vault.
BENCHES: dict[str, tuple[str, list[str]]] = {
    "watch": ("one changed note -> search hit through a real watcher", ["bench/bench_watch.py"]),
    "cli-search": ("`mirrorfs search` whole process vs `rg -l`, watcher running",
                   ["bench/bench_cli_search.py", "--vault", "{vault}"]),
    "restart": ("watcher start to \"watching\", up-to-date index", ["bench/bench_restart.py", "{vault}"]),
    "search": ("search: cold index, warm p50/p99 with snippets, index size", ["bench/bench_search.py", "{vault}"]),
    "append": ("append to sessions of 10 / 1,000 / 10,000 messages", ["bench/bench_append.py"]),
    "mcp": ("MCP start to tools/list; memory_search through the watcher", ["bench/bench_mcp.py", "--vault", "{vault}"]),
    "context": ("context build through a running watcher", ["bench/bench_context.py", "--vault", "{vault}"]),
    "provider": ("first streamed token, provider layer vs bare httpx", ["bench/bench_provider.py", "--runs", "300"]),
    "semantic": ("semantic: cold embedding build, hybrid query p50/p99", ["bench/bench_semantic.py", "{vault}"]),
    "recall": ("semantic top-3 recall vs keyword-only", ["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                                                          "tests/test_semantic.py", "-k", "recall_clearly"]),
    "import": ("import a 1 GB ChatGPT export", ["bench/bench_import.py"]),
    "crypto": ("open and decrypt 1,000 encrypted sections", ["bench/bench_crypto.py"]),
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def medium_vault(work: Path) -> Path:
    """The generated medium vault under *work*, made once."""
    vault = work / "vault-medium"
    if not (vault / "SOUL.md").exists():
        print(f"generating the medium vault in {vault} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "medium", str(vault)], check=True,
                       stdout=subprocess.DEVNULL)
    return vault


def run(name: str, vault: Path, log) -> int:
    row, argv = BENCHES[name]
    cmd = [sys.executable] + [a.format(vault=vault) for a in argv]
    header = f"== {name}: {row}\n$ {shlex.join(cmd)}\n   before: {load()}\n"
    print(header, end="", flush=True)
    log.write(header)
    started = time.monotonic()
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            log.write(line)
    footer = f"   after: {load()}; {time.monotonic() - started:.0f} s; exit {proc.returncode}\n\n"
    print(footer, end="", flush=True)
    log.write(footer)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), metavar="NAME", help="Run only these.")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/mirrorfs-bench"),
                    help="Where the generated vault is kept (default: %(default)s).")
    ap.add_argument("--list", action="store_true", help="List the benchmarks and exit.")
    ap.add_argument("--log", type=Path, help="Also write the whole output to this file.")
    args = ap.parse_args(argv)
    if args.list:
        for name, (row, bench_argv) in BENCHES.items():
            print(f"{name:11} {row}\n            python3 {shlex.join(bench_argv)}")
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    vault = medium_vault(args.work)
    failed = []
    with open(args.log or os.devnull, "w", encoding="utf-8") as log:
        for name in args.only or list(BENCHES):
            if run(name, vault, log) != 0:
                failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
