"""CLI commands for sync-conflict copies (rows of the registry in mirrorfs/cli.py)."""

from __future__ import annotations

import click

from mirrorfs import conflict_strategy
from mirrorfs import conflicts as api
from mirrorfs.cli_base import json_option, output, pass_vault
from mirrorfs.conflict_strategy import STRATEGIES


@click.group("conflicts")
def conflicts() -> None:
    """Conflict copies of sync tools (Syncthing, Dropbox, Nextcloud, Obsidian Sync, ...),
    and notes holding git conflict markers.

    mirrorfs merges a copy by itself when the merge is certain (and the vault's
    conflict strategy is `merge`); the rest wait here for a person, on every
    device. "mine" is the note the sync tool kept under its name, "theirs" is
    the conflict copy (for git markers: the two sides of the merge).

    \b
    Examples:
      mirrorfs conflicts list
      mirrorfs conflicts show "memory/tea.sync-conflict-20261121-100412-ABCDEF7.md"
      mirrorfs conflicts resolve memory/tea.md --keep both
      mirrorfs conflicts merge
      mirrorfs conflicts strategy latest
    """


def _list_text(items: list[api.OpenConflict]) -> str:
    if not items:
        return "no open conflicts"
    lines = []
    for c in items:
        where = "git conflict markers" if c.copy == c.original else c.copy
        lines.append(f"{c.original}  <-  {where}  [{c.tool}]")
        lines.append(f"    {c.reason}" + (f" (noticed by {c.detected_by})" if c.detected_by else ""))
    return "\n".join(lines)


@conflicts.command("list")
@json_option
@pass_vault
def list_cmd(vault, as_json: bool) -> None:
    """Conflict copies waiting for a person, and copies not merged yet (from every device).

    \b
    Examples:
      mirrorfs conflicts list
      mirrorfs conflicts list --json
    """
    items = api.list_open(vault)
    output([c.to_dict() for c in items], as_json, lambda _: _list_text(items))


@conflicts.command("show")
@click.argument("path")
@json_option
@pass_vault
def show_cmd(vault, path: str, as_json: bool) -> None:
    """Show both sides of a conflict as a diff (PATH: the copy, or its note).

    \b
    Example:
      mirrorfs conflicts show memory/tea.md
    """
    view = api.show(vault, path)

    def text(_) -> str:
        head = f"{view.original} (mine)  vs  {view.copy} (theirs, {view.tool})\n{view.reason}\n"
        return head + view.diff.rstrip("\n")

    output(view.to_dict(), as_json, text)


@conflicts.command("resolve")
@click.argument("path")
@click.option(
    "--keep", type=click.Choice(api.KEEP), required=True,
    help="mine: the note as the sync tool kept it; theirs: the conflict copy; "
    "both: the note with the copy's text in a section below it.",
)
@json_option
@pass_vault
def resolve_cmd(vault, path: str, keep: str, as_json: bool) -> None:
    """Settle a conflict (PATH: the copy, or its note). Replaced text goes to the trash.

    \b
    Examples:
      mirrorfs conflicts resolve memory/tea.md --keep both
      mirrorfs conflicts resolve "memory/tea.sync-conflict-20261121-100412-ABCDEF7.md" --keep theirs
    """
    result = api.resolve(vault, path, keep)
    output(result.to_dict(), as_json, lambda _: result.summary())


@conflicts.command("merge")
@click.option("--strategy", type=click.Choice(STRATEGIES),
              help="For this run only, instead of the vault's conflict strategy.")
@json_option
@pass_vault
def merge_cmd(vault, strategy: str | None, as_json: bool) -> None:
    """Merge every conflict copy (and note with git markers) now, as the watcher does as they arrive.

    \b
    Examples:
      mirrorfs conflicts merge
      mirrorfs conflicts merge --strategy latest
    """
    results = api.merge_all(vault, strategy=strategy)
    output(
        [r.to_dict() for r in results], as_json,
        lambda _: "\n".join(r.summary() for r in results) or "no conflict copies",
    )


@conflicts.command("strategy")
@click.argument("strategy", type=click.Choice(STRATEGIES), required=False)
@json_option
@pass_vault
def strategy_cmd(vault, strategy: str | None, as_json: bool) -> None:
    """Show or set what happens to conflict copies (a vault setting, synced to every device).

    \b
    merge   merge when the merge is certain, else keep both for a person (the default)
    latest  keep the newer side; the other goes to the vault's trash
    manual  merge nothing; every copy waits here for a person

    \b
    Examples:
      mirrorfs conflicts strategy
      mirrorfs conflicts strategy manual
    """
    if strategy is not None:
        conflict_strategy.set_strategy(vault.store, vault.root, strategy)
    value = conflict_strategy.current(vault.root)
    output({"strategy": value}, as_json, f"conflict strategy: {value}")
