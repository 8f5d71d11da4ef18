"""Where a vault passphrase comes from: a file, the environment, the OS keyring or a hidden prompt.

Never from the command line (argv is visible to every user of the machine in
``ps``) and never logged: this module does no logging at all, and its errors
name the source, never the passphrase.

Order: ``--passphrase-file PATH`` > ``MIRRORFS_PASSPHRASE`` > the OS keyring
(only when the optional ``keyring`` package is installed, ``pip install
mirrorfs[keyring]``, and a vault id is given) > a hidden interactive prompt
(only on a terminal).
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
import warnings
from pathlib import Path

from mirrorfs import os_keyring
from mirrorfs.errors import (
    CryptoError,
    InvalidValueError,
    KeyringUnavailableError,
    LockedError,
    NoKeyError,
    WrongPassphraseError,
)
from mirrorfs.keys import has_key

__all__ = [
    "ENV_VAR",
    "KEYRING_SERVICE",
    "find_passphrase",
    "get_passphrase",
    "read_passphrase_file",
    "prompt_passphrase",
    "keyring_available",
    "from_keyring",
    "store_in_keyring",
    "forget_in_keyring",
    "unlock_vault",
]

ENV_VAR = "MIRRORFS_PASSPHRASE"
KEYRING_SERVICE = "mirrorfs"


def read_passphrase_file(path: str | os.PathLike) -> str:
    """The passphrase in ``path``: its text without one trailing line break.

    Raises InvalidValueError when the file is missing, unreadable, not UTF-8
    or empty; warns (UserWarning) when other users may read it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise InvalidValueError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(f"the passphrase file {path} is readable by other users (chmod 600 it)", UserWarning,
                      stacklevel=2)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValueError(f"the passphrase file {path} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if text == "":
        raise InvalidValueError(f"the passphrase file {path} is empty")
    return text


def keyring_available() -> bool:
    """True when the optional ``keyring`` package can be imported."""
    return os_keyring.available()


def from_keyring(vault_id: str) -> str | None:
    """The passphrase stored for ``vault_id`` in the OS keyring, or None (no package, no backend, none stored)."""
    return os_keyring.get(KEYRING_SERVICE, vault_id)


def store_in_keyring(vault_id: str, passphrase: str) -> None:
    """Keep ``passphrase`` for ``vault_id`` in the OS keyring; raises CryptoError when that is impossible."""
    try:
        os_keyring.store(KEYRING_SERVICE, vault_id, passphrase)
    except KeyringUnavailableError as exc:
        raise CryptoError(str(exc).replace("the secret", "the passphrase")) from None


def forget_in_keyring(vault_id: str) -> bool:
    """Remove the stored passphrase of ``vault_id``; True if one was removed."""
    try:
        return os_keyring.forget(KEYRING_SERVICE, vault_id)
    except KeyringUnavailableError as exc:
        raise CryptoError(str(exc).replace("the secret", "the passphrase")) from None


def prompt_passphrase(*, confirm: bool = False, text: str = "Vault passphrase") -> str:
    """Ask on the terminal without echo (getpass writes to the terminal, so stdout stays clean).

    ``confirm=True`` asks twice (for a new passphrase) until both agree. Raises
    LockedError at end of input; Ctrl-C raises KeyboardInterrupt as usual.
    """
    while True:
        try:
            first = getpass.getpass(f"{text}: ", stream=sys.stderr)
            if not first:
                continue
            if not confirm:
                return first
            second = getpass.getpass("Repeat for confirmation: ", stream=sys.stderr)
        except EOFError:
            raise LockedError("no passphrase given (end of input)") from None
        if first == second:
            return first
        print("Error: the two entered values do not match.", file=sys.stderr)


def find_passphrase(
    *,
    passphrase_file: str | os.PathLike | None = None,
    vault_id: str | None = None,
    environ: dict | None = None,
    use_keyring: bool = True,
    interactive: bool | None = None,
    confirm: bool = False,
) -> tuple[str, str]:
    """(passphrase, source) from the first source that has one.

    ``source`` is ``"file"``, ``"env"``, ``"keyring"`` or ``"prompt"`` (to say
    where a wrong passphrase came from). ``interactive`` defaults to whether
    stdin is a terminal. Raises LockedError when no source has one, and
    InvalidValueError for an unusable passphrase file.
    """
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file), "file"
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR)
    if value:
        return value, "env"
    if use_keyring and vault_id:
        value = from_keyring(vault_id)
        if value:
            return value, "keyring"
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        return prompt_passphrase(confirm=confirm), "prompt"
    raise LockedError(
        "no passphrase: give --passphrase-file PATH, set MIRRORFS_PASSPHRASE, "
        "store one in the OS keyring (mirrorfs[keyring]) or run in a terminal"
    )


def get_passphrase(**kwargs) -> str:
    """The passphrase from :func:`find_passphrase` (same arguments, same errors)."""
    return find_passphrase(**kwargs)[0]


# Where a passphrase came from, as a person would name it in an error.
_SOURCES = {"file": "--passphrase-file", "env": ENV_VAR, "keyring": "the OS keyring", "prompt": "the prompt"}


def unlock_vault(vault, passphrase_file: str | os.PathLike | None = None, *, create: bool = True) -> None:
    """Unlock *vault* from the usual sources; a wrong passphrase names where it came from.

    A vault without a key yet gets this passphrase as its key when *create* is
    true (the prompt then asks twice); with *create* false (a read) it raises
    NoKeyError before asking for anything, and writes nothing.
    """
    if vault.unlocked:
        return
    first = not has_key(vault.config)
    if first and not create:
        raise NoKeyError()
    passphrase, source = find_passphrase(passphrase_file=passphrase_file, vault_id=vault.id, confirm=first)
    try:
        vault.unlock(passphrase, create=create)
    except WrongPassphraseError:
        raise WrongPassphraseError(
            f"wrong passphrase for this vault (from {_SOURCES.get(source, source)}); nothing was changed"
        ) from None
