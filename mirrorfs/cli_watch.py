"""`mirrorfs watch` and `mirrorfs status` (rows of the registry in mirrorfs/cli.py)."""

from __future__ import annotations

import json

import click

from mirrorfs import render
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    unlock_vault,
)


@click.command()
@click.option("--polling", is_flag=True, help="Poll instead of inotify (network drives, some sync folders).")
@click.option("--exec", "exec_cmd", metavar="CMD",
              help="Run CMD for every reflection, with MIRRORFS_* variables describing it.")
@click.option("--unlock", is_flag=True,
              help="Ask for the passphrase once, then seal the ```secret blocks people save.")
@passphrase_file_option
@json_option
@pass_vault
def watch(vault, polling: bool, exec_cmd: str | None, unlock: bool, passphrase_file, as_json: bool) -> None:
    """Watch the vault: index every change, merge conflict copies, print reflections.

    Runs until Ctrl-C or SIGTERM. While it runs, `mirrorfs search` asks it
    instead of opening the index itself, and each thing another instance or a
    person writes is printed as one line, e.g.
    `phone added memory "Prefers tea" (memory/prefers-tea.md)`.

    \b
    Examples:
      mirrorfs watch
      mirrorfs --instance laptop watch --polling
      mirrorfs watch --exec 'notify-send mirrorfs "$MIRRORFS_SUMMARY"'
      mirrorfs watch --json | jq .summary    # one JSON object per reflection; status lines on stderr
    """
    from mirrorfs.daemon import WatchDaemon

    if unlock or passphrase_file is not None:
        unlock_vault(vault, passphrase_file)
    WatchDaemon(
        vault,
        polling=polling,
        exec_cmd=exec_cmd,
        echo=lambda line: click.echo(line, err=as_json),
        warn=lambda line: click.echo(f"warning: {line}", err=True),
        on_reflection=(lambda r: click.echo(json.dumps(r.to_dict(), ensure_ascii=False))) if as_json else None,
    ).run()


@click.command()
@json_option
@pass_vault
def status(vault, as_json: bool) -> None:
    """Tell whether a watcher runs for this vault on this device, and how it is doing.

    \b
    Examples:
      mirrorfs status
      mirrorfs status --json
    """
    from mirrorfs.daemon import read_status

    output(read_status(vault), as_json, render.status_text)
