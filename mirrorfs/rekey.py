"""Move every encrypted section of a vault to a new passphrase and a new vault salt, resumably.

Before any note changes, the new salt and a check value of the new passphrase
are written to ``.mirrorfs/config.yaml`` as a *pending* rekey
(:data:`REKEY_SALT_KEY`, :data:`REKEY_CHECK_KEY`). Notes are then rewritten one
at a time through the write path; a section already under the new salt that
opens with the new passphrase is left as it is. So a rekey interrupted at any
point (a crash, Ctrl-C, a note that fails) resumes with the same new
passphrase and touches only what is left; only when every note is done does
the vault's own salt and check switch to the new ones, in one write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mirrorfs import config
from mirrorfs.errors import MirrorfsError, WrongPassphraseError
from mirrorfs.keys import (
    CONFIG_CHECK_KEY,
    CONFIG_SALT_KEY,
    Keyring,
    decode_salt,
    encode_salt,
    make_check,
    new_vault_salt,
    verify_check,
)
from mirrorfs.sealing import FileError, located, note_paths, read_text
from mirrorfs.sections import rekey_text

REKEY_SALT_KEY = "encryption_rekey_salt"
REKEY_CHECK_KEY = "encryption_rekey_check"

# progress(done, total, path): called with done=0 and path None before the first
# note, then after each note.
Progress = Callable[[int, int, "str | None"], None]


@dataclass
class RekeyReport:
    """What :func:`rekey` did. ``done`` is True once the vault is under the new passphrase."""

    total: int = 0
    changed: list[str] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)
    done: bool = False

    def to_dict(self) -> dict:
        return {"total": self.total, "changed": self.changed, "failed": [f.to_dict() for f in self.failed],
                "done": self.done}


def pending(vault_config: dict) -> bool:
    """True when an interrupted rekey waits to be finished."""
    return bool(vault_config.get(REKEY_SALT_KEY) and vault_config.get(REKEY_CHECK_KEY))


def _begin(vault, new_keyring: Keyring) -> bytes:
    """The new salt: the pending one (when *new_keyring* opens its check) or a fresh one, recorded."""
    found: list[bytes] = []

    def change(current: dict) -> dict:
        if pending(current):
            salt = decode_salt(current[REKEY_SALT_KEY])
            try:
                verify_check(str(current[REKEY_CHECK_KEY]), new_keyring)
            except WrongPassphraseError:
                raise WrongPassphraseError(
                    "an interrupted rekey is pending with another new passphrase: give that one to finish it"
                ) from None
            found.append(salt)
            return {}
        salt = new_vault_salt()
        found.append(salt)
        return {REKEY_SALT_KEY: encode_salt(salt), REKEY_CHECK_KEY: make_check(new_keyring, salt)}

    config.edit_config(vault.store, vault.root, change)
    return found[-1]


def rekey(vault, new_passphrase: str | Keyring, *, progress: Progress | None = None) -> RekeyReport:
    """Re-encrypt every section of the (unlocked) vault under *new_passphrase* and a new salt.

    Old weak Meld sections come out as v2. A note that fails is listed in the
    report's ``failed`` and the others go on; then the rekey stays pending
    (run it again with the same new passphrase once they are fixed). When every
    note is done the config switches to the new salt and check and the vault is
    locked (unlock it with the new passphrase). Raises LockedError when the vault
    is locked, WrongPassphraseError when a pending rekey has another new passphrase.
    """
    old_keyring = vault.keyring
    new_keyring = new_passphrase if isinstance(new_passphrase, Keyring) else Keyring(new_passphrase)
    try:
        new_salt = _begin(vault, new_keyring)
        files = note_paths(vault)
        report = RekeyReport(total=len(files))
        if progress is not None:
            progress(0, report.total, None)

        def change(n):
            return n.with_body(rekey_text(n.body, old_keyring, new_keyring, salt=new_salt))

        for done, full in enumerate(files, 1):
            rel = vault.relpath(full)
            try:
                _, _, text = read_text(vault, full)
                if "🔐" in text:
                    before = full.read_bytes()
                    if vault.edit(full, change).render() != before:
                        report.changed.append(rel)
            except MirrorfsError as exc:
                report.failed.append(FileError(rel, located(exc, rel)))
            if progress is not None:
                progress(done, report.total, rel)
        if report.failed:
            return report
        config.set_config_keys(vault.store, vault.root, {
            CONFIG_SALT_KEY: encode_salt(new_salt),
            CONFIG_CHECK_KEY: make_check(new_keyring, new_salt),
            REKEY_SALT_KEY: None,
            REKEY_CHECK_KEY: None,
        })
        report.done = True
        vault.lock()
        return report
    finally:
        if new_keyring is not new_passphrase:
            new_keyring.forget()
