"""`mirrorfs git setup`: the merge driver for a vault synced with git (mirrorfs.gitsync)."""

from __future__ import annotations

import click

from mirrorfs.cli_base import json_option, output, pass_vault


@click.group("git")
def git() -> None:
    """A vault synced with git (the Obsidian Git plugin, or git by hand).

    \b
    Examples:
      mirrorfs git setup
      mirrorfs git setup --no-ignore
    """


@git.command("setup")
@click.option("--ignore/--no-ignore", default=True, show_default=True,
              help="Also write the temporaries of editors and sync tools into a block of .gitignore.")
@json_option
@pass_vault
def setup_cmd(vault, ignore: bool, as_json: bool) -> None:
    """Register the mirrorfs merge driver in .gitattributes and this clone's .git/config.

    Sessions then merge as the union of their messages, instance cards by each
    instance's latest card, other notes three ways; where both sides changed
    the same line the note keeps ours and theirs is kept beside it as a
    conflict copy (`mirrorfs conflicts list`). Run it once in every clone.

    \b
    Example:
      mirrorfs git setup
    """
    from mirrorfs import gitsync

    report = gitsync.setup(vault, ignore=ignore)

    def text(_) -> str:
        lines = [f"git merge driver set up for {report.work_tree}"]
        lines += [f"  wrote {what}" for what in report.changed] or ["  (already set up: nothing changed)"]
        lines += [f"  driver: {report.driver}"]
        lines += [f"note: {line}" for line in report.advice]
        return "\n".join(lines)

    output(report.to_dict(), as_json, text)
