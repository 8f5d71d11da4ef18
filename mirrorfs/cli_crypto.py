"""Encrypted sections on the command line: key init, seal, reveal, edit, rekey, doctor.

Each command translates its arguments, calls the library (sealing, private_edit,
rekey, doctor) and prints the result. Passphrases come only from
--passphrase-file, MIRRORFS_PASSPHRASE, the OS keyring or a hidden prompt
(mirrorfs.passphrase), never from argv, and are never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mirrorfs import doctor as doctor_mod
from mirrorfs import private_edit, sealing
from mirrorfs import rekey as rekey_mod
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    unlock_vault,
)
from mirrorfs.passphrase import find_passphrase, prompt_passphrase, read_passphrase_file


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _print_failures(failed) -> None:
    for failure in failed:
        click.echo(f"error: {failure}", err=True)


@click.group()
def key() -> None:
    """The vault's passphrase: `key init` sets it (so does the first secret you write).

    \b
    Example:
      mirrorfs key init --passphrase-file ~/.mira-pass
    """


@key.command("init")
@passphrase_file_option
@json_option
@pass_vault
def key_init(vault, passphrase_file, as_json: bool) -> None:
    """Set the passphrase of a vault that has none yet (a prompt asks twice).

    Without it nothing encrypted in the vault can be read again: keep it safe
    (the OS keyring can hold it, see docs/format.md).

    \b
    Examples:
      mirrorfs key init
      mirrorfs key init --passphrase-file ~/.mira-pass
    """
    sealing.refuse_second_key(vault)  # before asking for a passphrase that would be refused
    passphrase, _ = find_passphrase(passphrase_file=passphrase_file, vault_id=vault.id, confirm=True)
    sealing.init_key(vault, passphrase)
    output({"key": "set"}, as_json, "the vault's passphrase is set")


@click.command()
@click.argument("paths", nargs=-1)
@passphrase_file_option
@json_option
@pass_vault
def seal(vault, paths, passphrase_file, as_json: bool) -> None:
    """Encrypt the ```secret blocks in notes (default: every note of the vault).

    \b
    Examples:
      mirrorfs seal
      mirrorfs seal memory/bank.md --passphrase-file ~/.mirrorfs-pass
    """
    unlock_vault(vault, passphrase_file)
    report = sealing.seal_notes(vault, paths)
    if not as_json:
        _print_failures(report.failed)
    failed = f", {len(report.failed)} failed" if report.failed else ""
    output(report.to_dict(), as_json, f"sealed {_plural(len(report.sealed), 'note')}{failed}")
    if report.failed:
        click.get_current_context().exit(1)


@click.command()
@click.argument("path")
@passphrase_file_option
@json_option
@pass_vault
def reveal(vault, path: str, passphrase_file, as_json: bool) -> None:
    """Print a note with its encrypted sections decrypted (to stdout only; nothing is written).

    \b
    Example:
      mirrorfs reveal memory/bank.md
    """
    unlock_vault(vault, passphrase_file, create=False)
    shown = sealing.reveal(vault, path)
    if as_json:
        output({"path": vault.relpath(path), "text": shown}, True)
        return
    click.echo(shown, nl=not shown.endswith("\n"))


@click.command()
@click.argument("path")
@passphrase_file_option
@json_option
@pass_vault
def edit(vault, path: str, passphrase_file, as_json: bool) -> None:
    """Edit a note with its sections decrypted in $EDITOR; what changed is sealed again.

    The decrypted copy lives in a private folder in RAM (/dev/shm) where there
    is one, and is removed afterwards, even on error or when the command is
    ended by SIGTERM, SIGHUP or Ctrl-C (what a SIGKILL leaves, the next edit or
    `mirrorfs doctor` removes). The note is written only if nobody changed it
    meanwhile (compare-and-swap).

    \b
    Example:
      EDITOR=vim mirrorfs edit memory/bank.md
    """
    unlock_vault(vault, passphrase_file)
    result = private_edit.edit_note(vault, path, lambda temp: click.edit(filename=str(temp)))
    output(result.to_dict(), as_json, f"{result.path}: {'saved' if result.changed else 'no change'}")


class _Bar:
    """A progress bar on stderr, only on a terminal (a pipe gets no stray label)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int, path: str | None) -> None:
        if self.bar is None:
            if not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@click.command()
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the new passphrase from this file (else a hidden prompt, asked twice).")
@passphrase_file_option
@json_option
@pass_vault
def rekey(vault, new_passphrase_file, passphrase_file, as_json: bool) -> None:
    """Re-encrypt every section under a new passphrase and a new vault salt, file by file.

    Resumable: run it again after an interruption with the same new passphrase
    and notes already under the new key are skipped. Old weak Meld sections
    come out as v2.

    \b
    Example:
      mirrorfs rekey --passphrase-file old.txt --new-passphrase-file new.txt
    """
    unlock_vault(vault, passphrase_file, create=False)
    if new_passphrase_file is not None:
        new_passphrase = read_passphrase_file(new_passphrase_file)
    else:
        new_passphrase = prompt_passphrase(confirm=True, text="New vault passphrase")
    bar = _Bar("rekey")
    try:
        report = rekey_mod.rekey(vault, new_passphrase, progress=bar)
    finally:
        bar.close()
    changed = len(report.changed)
    if as_json:
        output(report.to_dict(), True)
        if not report.done:
            click.get_current_context().exit(1)
        return
    _print_failures(report.failed)
    if not report.done:
        click.echo(f"re-encrypted {_plural(changed, 'note')}; {len(report.failed)} failed: fix them and run "
                   "rekey again with the same new passphrase", err=True)
        click.get_current_context().exit(1)
    click.echo(f"re-encrypted {_plural(changed, 'note')} under the new passphrase")


@click.command()
@json_option
@pass_vault
def doctor(vault, as_json: bool) -> None:
    """Check the vault: unsealed secret blocks, weak sections, unparseable notes, conflict copies.

    Also removes the decrypted copies a killed `mirrorfs edit` left in RAM.
    Exits 1 when it finds a problem.

    \b
    Examples:
      mirrorfs doctor
      mirrorfs doctor --json
    """
    removed = private_edit.sweep()
    problems = doctor_mod.diagnose(vault)

    def text(data: dict) -> str:
        lines = [f"removed a decrypted copy a killed `mirrorfs edit` left: {path}" for path in data["removed"]]
        lines += [str(p) for p in data["problems"]] or ["no problems found"]
        return "\n".join(lines)

    output({"ok": not problems, "problems": problems, "removed": removed}, as_json, text)
    if problems:
        click.get_current_context().exit(1)
