"""Deterministic generator of realistic mirrorfs vaults for benchmarks and tests.

    python bench/generate.py small  /tmp/vault-small     # ~1,000 notes + 5,000 messages
    python bench/generate.py medium /tmp/vault-medium    # 10,000 notes + 100,000 messages
    python bench/generate.py large  /tmp/vault-large     # 10,000 notes + 1,000,000 messages

The same size and seed always give the same bytes. Notes have front matter as
docs/format.md describes (memory notes, bridge notes, patterns, plain Obsidian
notes in topic folders) with tags, wikilinks, headings, lists and code; sessions
hold many messages from several instances, written with mirrorfs.messages so
they follow the format exactly. Some notes and messages carry a *planted*
word found nowhere else; `planted.json` in the output's parent folder (or the
returned manifest) maps each planted word to its file (and message id), so a
benchmark or test can check that every one is found.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mirrorfs import messages as messages_mod  # noqa: E402

SIZES = {
    "tiny": {"notes": 120, "messages": 600},
    "small": {"notes": 1_000, "messages": 5_000},
    "medium": {"notes": 10_000, "messages": 100_000},
    "large": {"notes": 10_000, "messages": 1_000_000},
}

COMMON = """the of and to in is that it for on with as was at by be this are from or an have not
but they which you one all were we when there can more if has so what about up out their
who will would been into some them time only other its than then now could also two way may
like use these first any new just even most make over such after know how our very through
where much should well people back good each those take see work because here give day""".split()

TOPIC_WORDS = """memory preference morning coffee tea breakfast travel lisbon sevilla madrid porto
train flight hotel museum garden project deadline meeting roadmap release testing index search
query python rust markdown obsidian vault sync device laptop phone desktop backup encryption
passphrase password budget invoice salary family birthday gift recipe pasta soup bread cheese
running cycling swimming yoga sleep doctor dentist medicine allergy music piano guitar concert
book novel chapter author library podcast episode movie series weather rain snow summer winter
spring autumn mountain river ocean beach island forest camping hiking climbing language spanish
portuguese japanese french german grammar vocabulary lesson teacher student school university
research paper experiment dataset model training evaluation benchmark latency throughput server
client protocol network router firewall kernel compiler debugger editor terminal keyboard monitor
window kitchen bedroom garden balcony neighbour friend colleague manager team hiring interview
contract lawyer insurance bank mortgage apartment rent moving furniture plant flower tomato basil
""".split()

SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vel", "dor", "qui", "ban", "sel", "mor", "tin",
             "pra", "glo", "fen", "hu", "zar", "nis", "opt", "cle", "ver", "lan", "sto", "bri"]

INSTANCES = ("laptop", "phone", "desktop", "server")
KINDS = ("fact", "preference", "project", "insight", "person", "event")
TIERS = ("working", "long_term", "semantic")
CATEGORIES = ("travel", "work", "health", "family", "learning", "cooking", "music", "money")
FOLDERS = ("notes/projects", "notes/journal", "notes/reading", "notes/people", "notes/recipes",
           "notes/travel", "notes/work/meetings", "notes/learning")


class Words:
    """A Zipf-like English-ish vocabulary: common words, topic words, a long tail."""

    def __init__(self, rng: random.Random):
        tail = set()
        while len(tail) < 15_000:
            n = rng.choice((2, 2, 3, 3, 3, 4))
            tail.add("".join(rng.choice(SYLLABLES) for _ in range(n)))
        self.vocab = COMMON + TOPIC_WORDS + sorted(tail)
        cum, total = [], 0.0
        for i in range(len(self.vocab)):
            total += 1.0 / (i + 8) ** 1.05
            cum.append(total)
        self.cum = cum
        self.rng = rng

    def words(self, n: int) -> list[str]:
        return self.rng.choices(self.vocab, cum_weights=self.cum, k=n)

    def sentence(self, lo: int = 6, hi: int = 18) -> str:
        w = self.words(self.rng.randint(lo, hi))
        w[0] = w[0].capitalize()
        return " ".join(w) + self.rng.choice(".......?!")

    def paragraph(self, lo: int = 2, hi: int = 5) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(lo, hi)))

    def topic(self) -> str:
        return self.rng.choice(TOPIC_WORDS)


def _planted_word(rng: random.Random, used: set) -> str:
    # Letters only, ending in x: the stemmer leaves it whole, and no generated
    # word contains "zq", so it occurs in exactly one place.
    while True:
        w = "zq" + "".join(rng.choice("bcdfghjklmnprstvw") for _ in range(7)) + "x"
        if w not in used:
            used.add(w)
            return w


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _yaml_list(key: str, values: list[str]) -> str:
    if not values:
        return f"{key}: []\n"
    return f"{key}:\n" + "".join(f"  - {v}\n" for v in values)


def _note_body(w: Words, rng: random.Random, titles: list[str], planted: str | None) -> str:
    parts = [w.paragraph()]
    for _ in range(rng.randint(0, 3)):
        kind = rng.random()
        if kind < 0.35:
            parts.append(f"## {w.sentence(2, 5).rstrip('.?!')}\n\n{w.paragraph()}")
        elif kind < 0.6:
            parts.append("\n".join(f"- {w.sentence(3, 9)}" for _ in range(rng.randint(2, 6))))
        elif kind < 0.75:
            parts.append("\n".join(f"{i}. {w.sentence(3, 9)}" for i in range(1, rng.randint(3, 6))))
        elif kind < 0.85:
            parts.append("```python\n" + "\n".join(
                f"{a} = {b}({c!r})" for a, b, c in zip(w.words(3), w.words(3), w.words(3))) + "\n```")
        else:
            parts.append(f"> [!note] {w.sentence(3, 8)}\n> {w.sentence()}")
    if titles and rng.random() < 0.7:
        links = ", ".join(f"[[{rng.choice(titles)}]]" for _ in range(rng.randint(1, 3)))
        parts.append(f"See {links}. #{w.topic()}")
    if planted:
        parts.insert(rng.randint(0, len(parts)), f"{w.sentence(3, 6)[:-1]} {planted} {w.sentence(3, 6)}")
    return "\n\n".join(parts) + "\n"


def generate(root: str | os.PathLike, notes: int, messages: int, seed: int = 7,
             plant_every: int = 20, avg_session: int = 50) -> dict:
    """Write a vault into *root* (must not exist or be empty); return the planted manifest.

    The manifest maps each planted word to {"path": relpath} for notes or
    {"path": relpath, "message": id} for messages.
    """
    rng = random.Random(seed)
    w = Words(rng)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".mirrorfs").mkdir(exist_ok=True)
    vault_id = "%032x" % random.Random(seed * 7919).getrandbits(128)
    (root / ".mirrorfs" / "config.yaml").write_text(
        f"format: 1\nvault_id: {vault_id}\nname: Bench\ncreated: 2023-01-01T00:00:00+00:00\n",
        encoding="utf-8")
    used: set[str] = set()
    manifest: dict[str, dict] = {}
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    span = 3 * 365 * 86400
    titles: list[str] = []
    made: set[str] = set()

    def unique(path: str) -> str:
        base, n = path[:-3], 2
        while path in made:
            path = f"{base}-{n}.md"
            n += 1
        made.add(path)
        return path

    (root / "SOUL.md").write_text(
        "---\ntype: soul\nname: Bench\n---\n\n# Bench\n\n## Who you are\n\n" + w.paragraph() + "\n",
        encoding="utf-8")
    for i in range(notes):
        created = start + dt.timedelta(seconds=rng.randrange(span))
        updated = created + dt.timedelta(seconds=rng.randrange(90 * 86400))
        title = w.sentence(2, 6).rstrip(".?!")
        slug = "-".join(title.lower().split())[:60]
        inst = rng.choice(INSTANCES)
        tags = sorted(set(rng.choice(TOPIC_WORDS) for _ in range(rng.randint(0, 3))))
        if rng.random() < 0.2 and tags:
            tags[0] = f"{tags[0]}/{rng.choice(TOPIC_WORDS)}"
        planted = _planted_word(rng, used) if i % plant_every == 0 else None
        r = rng.random()
        if r < 0.55:
            path = unique(f"memory/{slug}.md")
            fm = (f"id: {rng.getrandbits(48):012x}\ntype: memory\ntitle: {title}\n"
                  f"kind: {rng.choice(KINDS)}\ntier: {rng.choice(TIERS)}\n" + _yaml_list("tags", tags)
                  + f"created: {_iso(created)}\nupdated: {_iso(updated)}\ninstance: {inst}\n"
                  f"updated_by: {inst}\n")
        elif r < 0.62:
            path = unique(f"bridge/{slug}.md")
            fm = (f"id: {rng.getrandbits(48):012x}\ntype: bridge\ntitle: {title}\nfrom: human\n"
                  f"to: all\nstatus: {rng.choice(('open', 'answered'))}\n" + _yaml_list("tags", tags)
                  + f"created: {_iso(created)}\nupdated: {_iso(updated)}\ninstance: {inst}\n")
        elif r < 0.67:
            path = unique(f"patterns/{slug}.md")
            fm = (f"id: {rng.getrandbits(48):012x}\ntype: pattern\ntitle: {title}\n"
                  + _yaml_list("tags", tags) + f"created: {_iso(created)}\nupdated: {_iso(updated)}\n")
        else:  # an Obsidian note the human wrote: title is the file name
            path = unique(f"{rng.choice(FOLDERS)}/{title}.md")
            fm = _yaml_list("tags", tags) + f"created: {_iso(created)}\n"
            if rng.random() < 0.3:
                fm += _yaml_list("aliases", [w.sentence(1, 3).rstrip('.?!')])
        body = _note_body(w, rng, titles[-200:], planted)
        text = f"---\n{fm}---\n\n# {title}\n\n{body}" if rng.random() < 0.9 else body
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text, encoding="utf-8")
        titles.append(path.rsplit("/", 1)[-1][:-3])
        if planted:
            manifest[planted] = {"path": path}
    # Sessions: sizes vary a lot, like real conversations.
    remaining = messages
    n_session = 0
    while remaining > 0:
        size = min(remaining, max(2, int(rng.expovariate(1 / avg_session))))
        remaining -= size
        n_session += 1
        created = start + dt.timedelta(seconds=rng.randrange(span))
        inst = rng.choice(INSTANCES)
        title = w.sentence(2, 5).rstrip(".?!")
        slug = "-".join(title.lower().split())[:40]
        sid = f"{created:%Y-%m-%d}-{slug}-{rng.getrandbits(16):04x}"
        path = unique(f"sessions/{inst}/{sid}.md")
        t = created
        blocks = []
        tokens = 0
        for k in range(size):
            t = t + dt.timedelta(seconds=rng.randint(5, 600), milliseconds=rng.randint(0, 999))
            role = "user" if k % 2 == 0 else "assistant"
            if rng.random() < 0.03:
                role = rng.choice(("system", "tool"))
            content = w.paragraph(1, 3) if role == "user" else w.paragraph(2, 6)
            if rng.random() < 0.08:
                content += "\n\n" + "\n".join(f"- {w.sentence(3, 8)}" for _ in range(3))
            planted = _planted_word(rng, used) if rng.randrange(plant_every * 5) == 0 else None
            if planted:
                content = content[: len(content) // 2] + f" {planted} " + content[len(content) // 2:]
            m_inst = inst if rng.random() < 0.8 else rng.choice(INSTANCES)
            tok = len(content) // 4
            tokens += tok
            mid = f"{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}-{rng.getrandbits(24):06x}"
            msg = messages_mod.Message(id=mid, role=role, time=t, instance=m_inst, content=content,
                                       meta={"tokens": tok} if role == "assistant" else {})
            blocks.append(messages_mod.render(msg))
            if planted:
                manifest[planted] = {"path": path, "message": mid}
        tags = sorted(set(rng.choice(TOPIC_WORDS) for _ in range(rng.randint(0, 2))))
        fm = (f"id: {sid}\ntype: session\ntitle: {title}\ninstance: {inst}\nstatus: closed\n"
              f"persistence: persistent\ncategory: {rng.choice(CATEGORIES)}\n" + _yaml_list("tags", tags)
              + f"created: {_iso(created)}\nupdated: {_iso(t)}\nupdated_by: {inst}\ntokens: {tokens}\n")
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(f"---\n{fm}---\n" + "".join(blocks), encoding="utf-8")
    return manifest


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in SIZES:
        raise SystemExit(f"usage: generate.py {{{'|'.join(SIZES)}}} OUTPUT_DIR [SEED]")
    size, out = argv[0], Path(argv[1])
    seed = int(argv[2]) if len(argv) > 2 else 7
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    manifest = generate(out, **SIZES[size], seed=seed)
    (out.parent / f"{out.name}.planted.json").write_text(json.dumps(manifest, indent=1))
    print(f"{out}: {len(manifest)} planted words -> {out.parent / (out.name + '.planted.json')}")


if __name__ == "__main__":
    main(sys.argv[1:])
