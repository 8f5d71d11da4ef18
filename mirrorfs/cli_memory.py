"""Memory commands: remember, and memory list|show|forget|restore."""

from __future__ import annotations

import click

from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    read_text_arg,
    unlock_vault,
)
from mirrorfs.memory import KINDS, TIERS
from mirrorfs.vault import Vault


@click.command()
@click.argument("text")
@click.option("--title", help="Title (default: the first words of TEXT).")
@click.option("--kind", default="fact", show_default=True, help=f"What it is: {', '.join(KINDS)} or another word.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--tier", type=click.Choice(TIERS), default="long_term", show_default=True)
@click.option("--source", help="Session id this memory came from.")
@click.option("--secret", is_flag=True, help="Encrypt the whole text (title and properties stay clear).")
@passphrase_file_option
@json_option
@pass_vault
def remember(vault: Vault, text: str, title, kind, tags, tier, source, secret: bool, passphrase_file,
             as_json: bool) -> None:
    """Write a new memory note and print its path. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs remember "Sam prefers tea in the morning" --kind preference --tag drinks
      echo "Project Atlas ships in March" | mirrorfs remember - --kind project
    """
    link = f"[[{vault.sessions.load(source).id}]]" if source else None
    text = read_text_arg(text)
    from mirrorfs.crypto import has_unsealed

    if secret or passphrase_file is not None or has_unsealed(text):
        unlock_vault(vault, passphrase_file)
    m = vault.remember(text, title=title, kind=kind, tags=tags, tier=tier, source=link, secret=secret)
    output(m.to_dict(), as_json, lambda d: d["path"])


@click.group()
def memory() -> None:
    """List, show, forget and restore memory notes.

    \b
    Examples:
      mirrorfs memory list --kind preference
      mirrorfs memory show prefers-tea
      mirrorfs memory forget prefers-tea
    """


def _memory_line(d: dict) -> str:
    tags = " ".join(f"#{t}" for t in d["tags"])
    return f"{d['path']}  [{d['kind']}/{d['tier']}] {d['title']}" + (f"  {tags}" if tags else "")


@memory.command("list")
@click.option("--kind", help="Only this kind.")
@click.option("--tag", help="Only notes with this tag.")
@click.option("--tier", type=click.Choice(TIERS), help="Only this tier.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@json_option
@pass_vault
def memory_list(vault: Vault, kind, tag, tier, limit, as_json: bool) -> None:
    """List memory notes, most recently updated first.

    \b
    Examples:
      mirrorfs memory list --kind preference
      mirrorfs memory list --tag drinks --json
    """
    problems: list[str] = []
    found = vault.memory.list(kind=kind, tag=tag, tier=tier, limit=limit, on_error=lambda e: problems.append(str(e)))
    for problem in problems:
        click.echo(f"warning: {problem}; skipped", err=True)
    output([m.to_dict() for m in found], as_json, lambda items: "\n".join(_memory_line(d) for d in items))


@memory.command("show")
@click.argument("ref")
@json_option
@pass_vault
def memory_show(vault: Vault, ref: str, as_json: bool) -> None:
    """Show one memory note (REF: path, file name, id or title).

    \b
    Example:
      mirrorfs memory show prefers-tea
    """
    m = vault.memory.get(ref)
    output(m.to_dict(), as_json, lambda d: m.text.rstrip("\n"))


@memory.command("forget")
@click.argument("ref")
@click.option("--purge", is_flag=True, help="Delete for good instead of moving to the trash.")
@json_option
@pass_vault
def memory_forget(vault: Vault, ref: str, purge: bool, as_json: bool) -> None:
    """Move a memory note to the trash (.mirrorfs/trash), or delete it with --purge.

    \b
    Examples:
      mirrorfs memory forget prefers-tea
      mirrorfs memory restore .mirrorfs/trash/20261121T100412Z/memory/prefers-tea.md
    """
    target = vault.memory.forget(ref, purge=purge)
    rel = vault.relpath(target) if target else None
    output({"trashed": rel, "purged": purge}, as_json, lambda d: f"moved to {rel}" if rel else "deleted")


@memory.command("restore")
@click.argument("path")
@json_option
@pass_vault
def memory_restore(vault: Vault, path: str, as_json: bool) -> None:
    """Put a forgotten note (or session) back from the trash, where it was.

    \b
    Example:
      mirrorfs memory restore .mirrorfs/trash/20261121T100412000000Z-laptop/memory/prefers-tea.md
    """
    restored = vault.relpath(vault.restore(path))
    output({"restored": restored}, as_json, lambda d: f"restored {restored}")
