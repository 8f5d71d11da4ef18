"""`mirrorfs demo`: the main job, narrated, on a copy of the bundled sample vault."""

from __future__ import annotations

import difflib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from mirrorfs import clock, conversation
from mirrorfs.errors import MirrorfsError
from mirrorfs.vault import Vault

ENV_SAMPLE = "MIRRORFS_SAMPLE_VAULT"


def sample_vault_path() -> Path:
    """The bundled sample vault: next to the package in a checkout."""
    override = os.environ.get(ENV_SAMPLE)
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().parent.parent / "sample_vault")
    for candidate in candidates:
        if (candidate / ".mirrorfs" / "config.yaml").is_file():
            return candidate
    raise MirrorfsError(
        "cannot find the bundled sample_vault/ (run from a checkout, or set MIRRORFS_SAMPLE_VAULT)"
    )


def copy_sample(into: str | os.PathLike | None = None) -> Path:
    """Copy the sample vault to *into* (must not exist or be empty) or a temp folder."""
    source = sample_vault_path()
    if into is None:
        target = Path(tempfile.mkdtemp(prefix="mirrorfs-demo-")) / "vault"
    else:
        target = Path(into).expanduser()
        if target.exists() and any(target.iterdir()):
            raise MirrorfsError(f"{target} is not empty; give a new or empty folder to --into")
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def run(into: str | None = None, echo: Callable[[str], None] = print, keep: bool = False) -> Path:
    """Walk through what mirrorfs does, printing every step. Returns the copy's path.

    A copy made in a temp folder (no *into*) is removed at the end, with this
    device's state for it, unless *keep*: demos must not pile up.
    """
    temporary = into is None and not keep
    root = copy_sample(into)
    try:
        return _walk_through(root, echo, temporary)
    finally:
        if temporary:
            _remove_copy(root)


def _remove_copy(root: Path) -> None:
    try:
        state_dir = Vault.open(root, instance="demo").state_dir
    except MirrorfsError:
        state_dir = None
    shutil.rmtree(root.parent, ignore_errors=True)
    if state_dir is not None:
        shutil.rmtree(state_dir, ignore_errors=True)


def _walk_through(root: Path, echo: Callable[[str], None], temporary: bool) -> Path:
    step = iter(range(1, 100))

    def say(title: str) -> None:
        echo("")
        echo(f"== {next(step)}. {title}")

    say("Copy the sample vault (the original stays untouched)")
    echo(f"   {sample_vault_path()} -> {root}")

    vault = Vault.open(root, instance="demo")
    vault.instances.ensure_card()
    say(f"Open it as a new instance called '{vault.instance}'")
    echo(f"   Identity: {vault.soul.meta.get('name', vault.name)} (SOUL.md)")
    cards = vault.instances.list()
    echo(f"   Instances sharing this folder: {', '.join(c.name for c in cards)}")

    say("What the other instances remember")
    memories = vault.memory.list()
    echo(f"   {len(memories)} memory notes, e.g.:")
    for m in memories[:5]:
        echo(f"   - [{m.meta.get('kind')}] {m.title}  ({m.path})")

    say("What the other instances talked about")
    sessions = vault.sessions.list()
    total = sum(len(s) for s in sessions)
    echo(f"   {len(sessions)} sessions, {total} messages")
    for s in sessions[:4]:
        d = s.to_dict()
        echo(f"   - {d['instance']:<7} {d['title']}  ({d['message_count']} messages)")

    say("Search notes and messages (the index lives on this device, outside the vault)")
    for hit in vault.search("syncthing conflict", limit=3):
        where = f"{hit.role} in session {hit.session_title!r}" if hit.doc == "message" else hit.type
        echo(f"   {hit.score:6.2f}  {hit.path}  ({where})")

    say("Reflections: what the other instances (and Sam) wrote, as this new instance sees it")
    # Since the beginning: a first look would otherwise cover only the last 7 days.
    reflections = vault.reflections(since="2000-01-01")
    echo(f"   {len(reflections)} reflections, e.g.:")
    for r in reflections[-5:]:
        echo(f"   - {r.line()}")

    say("Ask the AI — a dry run: what it would be given, with no API key and nothing sent")
    question = "What did the phone plan for the Kyoto trip, and is the ryokan booked?"
    # The sample was written in November 2026: look back far enough to see what the phone did then.
    seen = [c.last_seen for c in cards if c.name != vault.instance and c.last_seen]
    days = max(3, math.ceil((clock.now() - max(seen)).total_seconds() / 86400)) if seen else None
    run_ = conversation.dry_run(vault, question, budget_tokens=1500, activity_days=days)
    bundle = run_.bundle
    echo(f'   mirrorfs ask "{question}" --dry-run')
    echo(f"   {len(bundle.items)} items, {bundle.used_tokens} of {bundle.budget_tokens} tokens, in the order sent:")
    for item in bundle.items:
        where = item.path or item.title or "your message"
        echo(f"   - {item.kind:<8} {item.tokens:>4} tok  {where}")
        echo(f"     {item.why}")
    echo("   (add --provider anthropic, openai or ollama without --dry-run to send it; `mirrorfs context` shows"
         " the messages in full)")

    say("Remember something new: one Markdown file per memory")
    m = vault.remember(
        "Sam wants the demo to leave the sample vault untouched.",
        title="Demo leaves the sample untouched",
        kind="preference",
        tags=["demo"],
    )
    echo(f"   wrote {m.path}:")
    for line in (root / m.path).read_text(encoding="utf-8").splitlines():
        echo(f"   | {line}")

    say("Hold a conversation: messages are appended to this instance's session file")
    s = vault.sessions.create("Demo conversation", category="demo", tags=["demo"])
    s.add_message("user", "What did the phone instance do yesterday?")
    s.add_message("assistant", f"I read its sessions in this folder: {len(sessions)} in all.")
    echo(f"   wrote {s.relpath} with {len(s)} messages")

    say("Change one property: only that line of the file changes")
    before = (root / m.path).read_text(encoding="utf-8")
    vault.meta_set(m.path, "tier", "working")
    after = (root / m.path).read_text(encoding="utf-8")
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            echo(f"   {line}")

    say("Export the conversation (MirrorDNA: Markdown with a checksum)")
    exported = s.export("mirrordna")
    checksum = next(line for line in exported.splitlines() if line.startswith("checksum_sha256:"))
    echo(f"   {checksum}")

    echo("")
    if temporary:
        echo(f"Done. The copy in {root} is removed again; to keep one to explore (or open in Obsidian):")
        echo("   mirrorfs demo --into ~/mira-demo")
    else:
        echo("Done. Explore the copy yourself, or open it in Obsidian:")
        echo(f"   mirrorfs --vault {root} memory list")
        echo(f"   mirrorfs --vault {root} session list")
    return root
