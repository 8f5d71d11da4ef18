"""Opening a vault of encrypted sections costs one key derivation, not one per section.

Writes N notes with one Meld Encrypt v2 section each, twice: (a) every section
under one per-vault salt, as mirrorfs writes them; (b) every section with its
own random salt, as the Meld Encrypt plugin writes them. Then reads every note
and decrypts every section with a fresh Keyring and prints the total time, the
number of PBKDF2 derivations and the ratio to one bare derivation measured in
the same run (the baseline), plus (a) again with the keys already cached. Case
(a) runs --repeat times between baseline samples and reports medians: on a
shared machine the load drifts.

    python3 bench/bench_crypto.py [--sections 1000] [--meld-sections N] [--repeat 5]

Writing (b) costs one derivation per section too; it runs on every core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirrorfs import crypto  # noqa: E402

PASSPHRASE = "bench passphrase, not a secret"


def note(i: int, section: str) -> str:
    return (
        f"---\nid: {i:012x}\ntype: memory\ntitle: Secret {i}\n---\n\n"
        f"Clear text before the secret of note {i}.\n\n{section}\n\nClear text after.\n"
    )


def plaintext(i: int) -> str:
    return f"secret number {i}: the door code is {i * 7919 % 10000:04d}"


def meld_style(indices: list[int]) -> list[str]:
    keyring = crypto.Keyring(PASSPHRASE)
    return [crypto.encrypt_section(plaintext(i), keyring, salt=crypto.new_vault_salt()) for i in indices]


def write_vault(root: Path, sections: list[str]) -> None:
    (root / "memory").mkdir(parents=True)
    for i, section in enumerate(sections):
        (root / "memory" / f"secret-{i:05d}.md").write_text(note(i, section), encoding="utf-8")


def open_vault(root: Path, keyring: crypto.Keyring) -> tuple[float, int, int]:
    """Read every note and decrypt every section: (seconds, sections, derivations)."""
    before = keyring.derivations
    count = 0
    start = time.perf_counter()
    for path in sorted((root / "memory").iterdir()):
        text = path.read_text(encoding="utf-8")
        opened = crypto.decrypt_text(text, keyring)
        count += len(crypto.find_sections(text))
        assert "door code" in opened
    return time.perf_counter() - start, count, keyring.derivations - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", type=int, default=1000)
    parser.add_argument("--meld-sections", type=int, default=None,
                        help="sections for case (b) (default: --sections); each costs two derivations")
    parser.add_argument("--repeat", type=int, default=5, help="runs of case (a)")
    args = parser.parse_args()
    n = args.sections

    salt = crypto.new_vault_salt()
    bare: list[float] = []

    def baseline(times: int = 1) -> None:
        # Sampled between the cases too: on a shared machine the load drifts.
        for _ in range(times):
            start = time.perf_counter()
            crypto.derive_key(PASSPHRASE, salt)
            bare.append(time.perf_counter() - start)

    baseline(2)
    with tempfile.TemporaryDirectory(prefix="mirrorfs-bench-crypto-") as tmp:
        shared_root, meld_root = Path(tmp) / "shared-salt", Path(tmp) / "meld-salts"
        writer = crypto.Keyring(PASSPHRASE)
        write_vault(shared_root, [crypto.encrypt_section(plaintext(i), writer, salt=salt) for i in range(n)])

        workers = os.cpu_count() or 1
        m = args.meld_sections if args.meld_sections is not None else n
        print(f"writing {m} Meld-style sections (one derivation each, {workers} processes)...", flush=True)
        chunks = [list(range(m))[k::workers] for k in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(meld_style, chunks))
        order = {}
        for chunk, sections in zip(chunks, parts):
            order.update(zip(chunk, sections))
        write_vault(meld_root, [order[i] for i in range(m)])

        # (a) is cheap: repeat it, interleaved with baseline samples, and take
        # medians, because on a shared machine the load drifts between samples.
        cold, warm = [], []
        for _ in range(args.repeat):
            baseline()
            keyring = crypto.Keyring(PASSPHRASE)
            cold.append(open_vault(shared_root, keyring))
            warm.append(open_vault(shared_root, keyring))
        baseline()
        meld = open_vault(meld_root, crypto.Keyring(PASSPHRASE))
        baseline()

    one = statistics.median(bare)
    print(f"baseline: one bare PBKDF2-HMAC-SHA512 derivation (210000 iterations), median of {len(bare)}: "
          f"{one * 1000:.1f} ms (min {min(bare) * 1000:.1f}, max {max(bare) * 1000:.1f})")

    def row(name: str, runs: list[tuple[float, int, int]]) -> float:
        seconds = statistics.median(r[0] for r in runs)
        sections, derivations = runs[0][1], runs[0][2]
        print(f"{name:44} {sections:8d} {seconds:9.3f} {derivations:11d} {seconds / one:17.1f}")
        return seconds

    print(f"\n{'case (median of runs)':44} {'sections':>8} {'total s':>9} {'derivations':>11} {'x one derivation':>17}")
    a_cold = row(f"(a) one per-vault salt, fresh keyring x{len(cold)}", cold)
    a_warm = row(f"(a) one per-vault salt, keys cached x{len(warm)}", warm)
    b_time = row("(b) a random salt per section (Meld) x1", [meld])
    print(f"\n(a) fresh keyring: {a_cold * 1000:.0f} ms = {a_cold / one:.2f} derivations' worth; "
          f"without the derivation (keys cached) reading and decrypting {n} notes takes "
          f"{a_warm * 1000:.0f} ms ({a_warm / n * 1e6:.0f} µs per note)")
    print(f"(b) / (a): {b_time / a_cold:.0f}x; (b) per derivation: {b_time / max(meld[2], 1) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
