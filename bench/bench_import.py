"""Importing a ~1 GB ChatGPT export: peak memory and throughput.

Writes a ChatGPT-format `conversations.json` of about --size-mb megabytes under
--dir (default /var/tmp/mirrorfs-bench-import; the same bytes for the same
size and seed), then, each in its own process so each peak RSS is its own:

1. baseline: stream the file with ijson and walk every conversation's shown
   branch, writing nothing (the floor any streaming import pays);
2. import: `import_path(vault, "chatgpt", file)` into a fresh vault;
3. re-import: the same file again (nothing changes; every conversation is
   recognised by its front matter).

Prints wall time, peak RSS (target: under 300 MB) and throughput of each, and
the ratio of import to baseline.

    python3 bench/bench_import.py [--size-mb 1000] [--dir /var/tmp/mirrorfs-bench-import] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("the of and to in is that for it as with was on be by this are or at from tide moon train "
         "lisbon harbour bread starter sugar plum lighthouse chart python error function value memory "
         "vault session note search branch export import stream buffer window market river").split()


def _text(rng: random.Random, words: int) -> str:
    out = rng.choices(WORDS, k=words)
    for i in range(0, len(out), rng.randint(9, 18)):
        out[i] = out[i].capitalize()
    return " ".join(out) + "."


def _message(mid: str, role: str, t: float, content: dict, recipient: str = "all", name: str | None = None) -> dict:
    return {"id": mid, "author": {"role": role, "name": name, "metadata": {}}, "create_time": t, "update_time": None,
            "content": content, "status": "finished_successfully", "end_turn": True, "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {}, "recipient": recipient,
            "channel": None}


def conversation(rng: random.Random, n: int, turns: int, words: int) -> dict:
    """One conversation: a hidden system root, `turns` exchanges, a regenerated reply, sometimes tools/images."""
    cid = f"bench-{n:07d}-{rng.getrandbits(48):012x}"
    t = 1_600_000_000 + n * 3600.0
    mapping = {"root": {"id": "root", "message": None, "parent": None, "children": ["sys"]},
               "sys": {"id": "sys", "message": _message("sys", "system", None, {"content_type": "text", "parts": [""]}),
                       "parent": "root", "children": []}}
    mapping["sys"]["message"]["metadata"] = {"is_visually_hidden_from_conversation": True}
    parent = "sys"
    for i in range(turns):
        for role in ("user", "assistant"):
            node = f"{role[0]}{i}"
            t += rng.uniform(2, 90)
            content = {"content_type": "text", "parts": [_text(rng, rng.randint(words // 4, words * 2))]}
            if role == "user" and rng.random() < 0.05:
                content = {"content_type": "multimodal_text", "parts": [
                    {"content_type": "image_asset_pointer", "asset_pointer": f"file-service://file-{rng.getrandbits(40):010x}",
                     "size_bytes": 120000, "width": 1024, "height": 768, "fovea": None, "metadata": None},
                    _text(rng, 20)]}
            mapping[node] = {"id": node, "message": _message(node, role, t, content), "parent": parent, "children": []}
            mapping[parent]["children"].append(node)
            parent = node
        if i == 0:  # a regenerated first reply: a branch that is not shown
            mapping["regen"] = {"id": "regen", "parent": "u0", "children": [],
                                "message": _message("regen", "assistant", t - 1, {"content_type": "text",
                                                                                    "parts": [_text(rng, words)]})}
            mapping["u0"]["children"].insert(0, "regen")
    return {"title": _text(rng, rng.randint(2, 6))[:-1], "create_time": 1_600_000_000 + n * 3600.0, "update_time": t,
            "mapping": mapping, "moderation_results": [], "current_node": parent, "plugin_ids": None,
            "conversation_id": cid, "id": cid, "default_model_slug": "gpt-4o", "is_archived": False}


def generate(path: Path, size_mb: int, seed: int = 15) -> dict:
    """Write the export; returns its conversation and message counts."""
    rng = random.Random(seed)
    target = size_mb * 1_000_000
    counts = {"conversations": 0, "messages": 0, "bytes": 0}
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        n = 0
        while f.tell() < target:
            # One conversation in 400 is huge (~6 MB), like a long coding session.
            huge = n % 400 == 399
            turns = 600 if huge else max(1, int(rng.expovariate(1 / 25)))
            conv = conversation(rng, n, turns, 400 if huge else 120)
            f.write(("," if n else "") + "\n" + json.dumps(conv, ensure_ascii=False))
            counts["messages"] += 2 * turns
            n += 1
        f.write("\n]\n")
        counts["conversations"] = n
        counts["bytes"] = f.tell()
    return counts


def child(mode: str, export: str, vault_root: str) -> None:
    """Runs in its own process; prints one JSON line."""
    t0 = time.perf_counter()
    if mode == "baseline":
        from mirrorfs import import_chatgpt
        from mirrorfs.import_streams import export_files, stream_array

        messages = conversations = 0
        for name, opener, size in export_files(export)[0]:
            for conv in stream_array(name, opener, size):
                s = import_chatgpt.convert(conv, conversations + 1)
                conversations += 1
                messages += len(getattr(s, "messages", []))
        result = {"conversations": conversations, "messages": messages}
    else:
        from mirrorfs.import_sources import import_path
        from mirrorfs.vault import Vault

        vault = Vault.open(vault_root, instance="bench") if mode == "reimport" else Vault.init(vault_root, instance="bench")
        report = import_path(vault, "chatgpt", export)
        result = {"conversations": report.sessions_new + report.sessions_updated + report.sessions_unchanged,
                  "messages": report.messages_new + report.messages_unchanged, "new": report.messages_new,
                  "skipped": len(report.skipped), "notes": len(report.notes)}
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result))


def measure(mode: str, export: Path, vault: Path, env: dict) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(export), str(vault)],
                            stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{mode} failed with exit status {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/mirrorfs-bench-import"))
    parser.add_argument("--keep", action="store_true", help="Keep the export and the vault afterwards.")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "EXPORT", "VAULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    export = args.dir / f"conversations-{args.size_mb}mb.json"
    if not export.exists():
        t0 = time.perf_counter()
        counts = generate(export, args.size_mb)
        print(f"generated {export}: {counts['bytes'] / 1e6:.0f} MB, {counts['conversations']:,} conversations, "
              f"{counts['messages']:,} messages in {time.perf_counter() - t0:.0f} s")
    size = export.stat().st_size
    vault = args.dir / "vault"
    shutil.rmtree(vault, ignore_errors=True)
    shutil.rmtree(args.dir / "state", ignore_errors=True)
    env = {**os.environ, "MIRRORFS_STATE_DIR": str(args.dir / "state")}
    rows = [(mode, measure(mode, export, vault, env)) for mode in ("baseline", "import", "reimport")]
    print(f"{'run':<10} {'seconds':>8} {'peak RSS':>10} {'MB/s':>7} {'conv/s':>8} {'msg/s':>9}")
    for mode, r in rows:
        print(f"{mode:<10} {r['seconds']:>8.1f} {r['peak_rss_mb']:>7.0f} MB {size / 1e6 / r['seconds']:>7.1f} "
              f"{r['conversations'] / r['seconds']:>8.0f} {r['messages'] / r['seconds']:>9.0f}")
    base, imp, again = (r for _, r in rows)
    print(f"import / baseline: {imp['seconds'] / base['seconds']:.2f}x time; {imp['conversations']:,} sessions, "
          f"{imp['new']:,} messages written; re-import wrote {again['new']} messages")
    files = sum(1 for _ in (vault / "sessions" / "import").glob("*.md"))
    print(f"vault: {files:,} session files; peak RSS target < 300 MB: "
          f"{'met' if max(imp['peak_rss_mb'], again['peak_rss_mb']) < 300 else 'NOT met'}")
    if not args.keep:
        shutil.rmtree(vault, ignore_errors=True)
        shutil.rmtree(args.dir / "state", ignore_errors=True)


if __name__ == "__main__":
    main()
