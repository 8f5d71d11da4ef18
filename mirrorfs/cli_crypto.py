"""Encrypted sections on the command line: seal, reveal, edit, rekey, doctor.

mirrorfs/cli.py imports this module at its end. Passphrases come only from
--passphrase-file, MIRRORFS_PASSPHRASE, the OS keyring or a hidden prompt
(mirrorfs.passphrase), never from argv, and are never printed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import click

from mirrorfs import crypto, ignore, storage
from mirrorfs import note as notes
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    unlock_vault,
)
from mirrorfs.errors import (
    CryptoError,
    InvalidValueError,
    MirrorfsError,
    WrongPassphraseError,
)
from mirrorfs.passphrase import prompt_passphrase, read_passphrase_file
from mirrorfs.vault import CONFIG_FILE

# Pending rekey state in config.yaml: the new salt and check, written before any
# note changes, so an interrupted rekey resumes with the same key.
REKEY_SALT_KEY = "encryption_rekey_salt"
REKEY_CHECK_KEY = "encryption_rekey_check"


def _note_paths(vault, paths) -> list[Path]:
    if paths:
        return [vault.resolve(p) for p in paths]
    return [vault.root / rel for rel in ignore.iter_note_paths(vault.root)]


def _decoded(full: Path, rel: str) -> tuple[storage.Snapshot, str, str]:
    snap = storage.read(full)
    if not snap.exists:
        raise MirrorfsError(f"no note at {rel}")
    bom, text = notes.decode(snap.data, rel)
    return snap, bom, text


def _seal_note(vault, full: Path) -> bool:
    """Seal the ```secret blocks of one note through the write path; True if it changed."""
    rel = vault.relpath(full)
    before = full.read_bytes()
    if not crypto.has_unsealed(notes.decode(before, rel)[1]):
        return False
    try:
        after = vault.edit(full, lambda n: n.with_body(vault.seal_text(n.body)))
    except CryptoError as exc:
        raise crypto.with_path(exc, rel) from None
    return after.render() != before


@click.command()
@click.argument("paths", nargs=-1)
@passphrase_file_option
@pass_vault
def seal(vault, paths, passphrase_file) -> None:
    """Encrypt the ```secret blocks in notes (default: every note of the vault).

    \b
    Examples:
      mirrorfs seal
      mirrorfs seal memory/bank.md --passphrase-file ~/.mirrorfs-pass
    """
    unlock_vault(vault, passphrase_file)
    sealed, failed = 0, 0
    for full in _note_paths(vault, paths):
        try:
            sealed += _seal_note(vault, full)
        except MirrorfsError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
    click.echo(f"sealed {sealed} note{'s' if sealed != 1 else ''}" + (f", {failed} failed" if failed else ""))
    if failed:
        click.get_current_context().exit(1)


@click.command()
@click.argument("path")
@passphrase_file_option
@pass_vault
def reveal(vault, path: str, passphrase_file) -> None:
    """Print a note with its encrypted sections decrypted (to stdout only; nothing is written).

    \b
    Example:
      mirrorfs reveal memory/bank.md
    """
    unlock_vault(vault, passphrase_file)
    full = vault.resolve(path)
    rel = vault.relpath(full)
    _, _, text = _decoded(full, rel)
    try:
        shown = vault.readable(text, errors="raise")
    except CryptoError as exc:
        raise crypto.with_path(exc, rel) from None
    click.echo(shown, nl=not shown.endswith("\n"))


def _private_dir() -> str:
    """A 0700 folder outside any vault, in RAM when the system has /dev/shm."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="mirrorfs-edit-", dir=base)  # mkdtemp makes it 0700


@click.command()
@click.argument("path")
@passphrase_file_option
@pass_vault
def edit(vault, path: str, passphrase_file) -> None:
    """Edit a note with its sections decrypted in $EDITOR; what changed is sealed again.

    The decrypted copy lives in a private folder in RAM (/dev/shm) where there
    is one, and is removed afterwards even on error. The note is written only if
    nobody changed it meanwhile (compare-and-swap).

    \b
    Example:
      EDITOR=vim mirrorfs edit memory/bank.md
    """
    unlock_vault(vault, passphrase_file)
    full = vault.resolve(path)
    rel = vault.relpath(full)
    snap, bom, text = _decoded(full, rel)
    try:
        opened = crypto.unseal_text(text, vault.keyring)
    except CryptoError as exc:
        raise crypto.with_path(exc, rel) from None
    folder = _private_dir()
    try:
        temp = Path(folder) / full.name
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(opened.encode("utf-8"))
        click.edit(filename=str(temp))
        edited = temp.read_bytes().decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise InvalidValueError(f"{rel}: the edited text is not UTF-8; nothing was written") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if edited == opened:
        click.echo(f"{rel}: no change")
        return
    try:
        sealed = crypto.seal_text(edited, vault.keyring, vault.salt, previous=text)
    except CryptoError as exc:
        raise crypto.with_path(exc, f"{rel} (edited copy; nothing was written)") from None
    vault.store.write(full, (bom + sealed).encode("utf-8"), snap.sha)
    vault.touched(rel, "write")
    click.echo(f"{rel}: saved")


def _set_config_keys(vault, values: dict[str, str | None]) -> None:
    """Set (or with None remove) flat keys of config.yaml, keeping every other line's bytes."""

    def change(data: bytes | None) -> bytes:
        if data is None:
            raise MirrorfsError(f"{CONFIG_FILE} disappeared")
        text = data.decode("utf-8")
        newline = "\r\n" if "\r\n" in text else "\n"
        for key, value in values.items():
            line = re.compile(rf"(?m)^{re.escape(key)}:[^\r\n]*(\r?\n|$)")
            new = "" if value is None else f'{key}: "{value}"{newline}'
            if line.search(text):
                text = line.sub(lambda m: new, text, count=1)
            elif value is not None:
                if text and not text.endswith("\n"):
                    text += newline
                text += new
        return text.encode("utf-8")

    vault.store.update(vault.root / CONFIG_FILE, change)


@click.command()
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the new passphrase from this file (else a hidden prompt, asked twice).")
@passphrase_file_option
@pass_vault
def rekey(vault, new_passphrase_file, passphrase_file) -> None:
    """Re-encrypt every section under a new passphrase and a new vault salt, file by file.

    Resumable: run it again after an interruption with the same new passphrase
    and notes already under the new key are skipped. Old weak Meld sections
    come out as v2.

    \b
    Example:
      mirrorfs rekey --passphrase-file old.txt --new-passphrase-file new.txt
    """
    unlock_vault(vault, passphrase_file)
    if new_passphrase_file is not None:
        new_passphrase = read_passphrase_file(new_passphrase_file)
    else:
        new_passphrase = prompt_passphrase(confirm=True, text="New vault passphrase")
    new_keyring = crypto.Keyring(new_passphrase)
    pending_salt, pending_check = vault.config.get(REKEY_SALT_KEY), vault.config.get(REKEY_CHECK_KEY)
    if pending_salt and pending_check:
        new_salt = crypto.decode_salt(pending_salt)
        try:
            crypto.verify_check(str(pending_check), new_keyring)
        except WrongPassphraseError:
            raise WrongPassphraseError(
                "an interrupted rekey is pending with another new passphrase: give that one to finish it"
            ) from None
    else:
        new_salt = crypto.new_vault_salt()
        _set_config_keys(vault, {REKEY_SALT_KEY: crypto.encode_salt(new_salt),
                                 REKEY_CHECK_KEY: crypto.make_check(new_keyring, new_salt)})
    files = _note_paths(vault, ())
    changed, failed = 0, 0
    with click.progressbar(files, label="rekey", file=click.get_text_stream("stderr")) as bar:
        for full in bar:
            rel = vault.relpath(full)
            try:
                _, _, text = _decoded(full, rel)
                if "🔐" not in text:
                    continue

                def change(n, rel=rel):
                    return n.with_body(crypto.rekey_text(n.body, vault.keyring, new_keyring, salt=new_salt))

                before = full.read_bytes()
                after = vault.edit(full, change)
                changed += after.render() != before
            except CryptoError as exc:
                failed += 1
                click.echo(f"\nerror: {crypto.with_path(exc, rel)}", err=True)
            except MirrorfsError as exc:
                failed += 1
                click.echo(f"\nerror: {exc}", err=True)
    if failed:
        click.echo(f"re-encrypted {changed} notes; {failed} failed: fix them and run rekey again "
                   "with the same new passphrase", err=True)
        click.get_current_context().exit(1)
    _set_config_keys(vault, {crypto.CONFIG_SALT_KEY: crypto.encode_salt(new_salt),
                             crypto.CONFIG_CHECK_KEY: crypto.make_check(new_keyring, new_salt),
                             REKEY_SALT_KEY: None, REKEY_CHECK_KEY: None})
    vault.lock()
    click.echo(f"re-encrypted {changed} note{'s' if changed != 1 else ''} under the new passphrase")


def diagnose(vault) -> list[dict]:
    """Problems in the vault's notes: unsealed secrets, weak or damaged sections,
    unparseable front matter, conflict copies waiting."""
    from mirrorfs.conflicts import conflict_original

    problems: list[dict] = []
    for rel_path in ignore.iter_note_paths(vault.root, on_error=lambda e: problems.append(
            {"check": "unreadable", "path": str(getattr(e, "filename", "")), "message": str(e)})):
        rel = rel_path.as_posix()
        original = conflict_original(rel)
        if original is not None:
            problems.append({"check": "conflict", "path": rel,
                             "message": f"conflict copy of {original} waiting (`mirrorfs conflicts`)"})
        try:
            note = notes.read_note(vault.root / rel_path)
        except MirrorfsError as exc:
            problems.append({"check": "unreadable", "path": rel, "message": str(exc)})
            continue
        if note.error:
            problems.append({"check": "unparseable", "path": rel,
                             "message": f"cannot parse front matter: {note.error}"})
        text = note.text
        if crypto.has_unsealed(text):
            problems.append({"check": "unsealed", "path": rel, "message": (
                "holds a ```secret block in plaintext: it touched the disk when a person saved it; "
                "`mirrorfs seal` encrypts it (sync tools or backups may still hold the plaintext)")})
        try:
            sections = crypto.find_sections(text)
        except CryptoError as exc:
            problems.append({"check": "damaged", "path": rel, "message": str(exc)})
            continue
        weak = sum(1 for s in sections if s.weak)
        if weak:
            problems.append({"check": "weak", "path": rel, "message": (
                f"{weak} section{'s' if weak != 1 else ''} in an old, weak Meld form; `mirrorfs rekey` upgrades them")})
    return problems


@click.command()
@json_option
@pass_vault
def doctor(vault, as_json: bool) -> None:
    """Check the vault: unsealed secret blocks, weak sections, unparseable notes, conflict copies.

    Exits 1 when it finds a problem.

    \b
    Examples:
      mirrorfs doctor
      mirrorfs doctor --json
    """
    problems = diagnose(vault)
    output({"ok": not problems, "problems": problems}, as_json,
           lambda d: "\n".join(f"{p['check']}: {p['path']}: {p['message']}" for p in d["problems"])
           or "no problems found")
    if problems:
        click.get_current_context().exit(1)
