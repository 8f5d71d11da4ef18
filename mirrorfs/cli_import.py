"""`mirrorfs import SOURCE PATH`: a thin adapter over mirrorfs.import_sources and mirrorfs.import_markdown.

A row of the command registry in mirrorfs/cli.py: imported only when `import` runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mirrorfs.cli_base import (
    State,
    json_option,
    output,
    passphrase_file_option,
    unlock_vault,
)
from mirrorfs.import_sources import SOURCES
from mirrorfs.importer import DEFAULT_INSTANCE
from mirrorfs.passphrase import read_passphrase_file


def _progress_bar(label: str):
    """A progress bar on stderr when it is a terminal; (callback, finish)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    bar = click.progressbar(length=1, label=label, file=sys.stderr)
    started = []

    def progress(done: int, total: int) -> None:
        if not started:
            bar.__enter__()
            started.append(True)
        bar.length = max(total, 1)
        bar.update(min(done, bar.length) - bar.pos)

    def finish() -> None:
        if started:
            bar.__exit__(None, None, None)

    return progress, finish


@click.command("import")
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="activemirror: a file holding the VaultMemory password (or its raw Fernet key).")
@passphrase_file_option
@click.option("--instance", "into", default=DEFAULT_INSTANCE, show_default=True, metavar="NAME",
              help="Imported sessions go to sessions/NAME/ and are signed by NAME.")
@click.option("--dry-run", is_flag=True, help="Show what would be imported; write nothing.")
@click.option("--adopt", is_flag=True, help="markdown: make the folder PATH a vault in place (changes no file).")
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, source: str, path: Path, password_file, passphrase_file, into: str,
               dry_run: bool, adopt: bool, as_json: bool) -> None:
    """Import conversations and memories from another tool, idempotently.

    \b
    SOURCE and PATH:
      activemirror  an ActiveMirrorOS SQLite store, session JSON, Markdown/txt export,
                    VaultMemory folder (*.vault, needs --password-file), or a folder of them
      chatgpt       a ChatGPT data export: the zip, its folder, or conversations.json
      claude        a Claude.ai data export: the zip, its folder, or conversations.json
      mirrordna     files written by `mirrorfs session export --format mirrordna` (checksums verified)
      markdown      a folder of notes (basic-memory, OpenClaw, /memories): reported, and
                    with --adopt made a vault in place (nothing is copied or rewritten)

    Importing the same data again changes nothing; a newer export adds only what
    is new. Vault entries become sealed memories: the vault passphrase comes from
    --passphrase-file, MIRRORFS_PASSPHRASE, the OS keyring or a prompt.

    \b
    Examples:
      mirrorfs import chatgpt ~/Downloads/chatgpt-export.zip
      mirrorfs import claude ~/Downloads/claude-export.zip --dry-run
      mirrorfs import activemirror ~/activemirror/data --password-file ~/.am-password
      mirrorfs import markdown ~/openclaw-workspace
    """
    state = ctx.find_object(State)
    if source == "markdown":
        from mirrorfs import import_markdown

        if adopt and not dry_run:
            report = import_markdown.adopt(path, instance=state.instance)
        else:
            report = import_markdown.survey(path)
        output(report.to_dict(), as_json, lambda d: "\n".join(report.lines()))
        return
    if adopt:
        raise click.UsageError("--adopt is for the markdown source only")
    from mirrorfs.import_sources import import_path

    vault = state.vault
    password = read_passphrase_file(password_file) if password_file is not None else None

    def unlock() -> None:
        unlock_vault(vault, passphrase_file)

    progress, finish = _progress_bar(f"importing {path.name}")
    try:
        report = import_path(vault, source, path, instance=into, password=password, dry_run=dry_run,
                             progress=progress, unlock=unlock)
    finally:
        finish()
    output(report.to_dict(), as_json, lambda d: "\n".join(report.lines()))

