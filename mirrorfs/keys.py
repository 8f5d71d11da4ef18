"""The keys behind encrypted sections: derivation, the per-salt cache, vault salts, the passphrase check.

A :class:`Keyring` holds a passphrase in memory and the AES-256-GCM ciphers
derived from it, cached per (form, salt): mirrorfs writes every section of a
vault under one per-vault salt, so one PBKDF2 derivation opens thousands of
sections, while sections written by Meld (a random salt each) cost one
derivation per distinct salt.

The vault's salt and a *check value* live in ``.mirrorfs/config.yaml``
(:data:`CONFIG_SALT_KEY`, :data:`CONFIG_CHECK_KEY`); :func:`vault_key` decides
from that config whether a passphrase opens the vault, and what to add to the
config when the vault has no key yet.

Nothing here puts a passphrase or plaintext into a message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mirrorfs.errors import (
    CryptoError,
    InvalidValueError,
    NoKeyError,
    WrongPassphraseError,
)

# --- Meld Encrypt v2 ("β", CryptoHelper2304(16, 16, 210000)) -----------------
ITERATIONS = 210_000
SALT_BYTES = 16
IV_BYTES = 16
TAG_BYTES = 16
KEY_BYTES = 32

# --- older Meld forms, read-only ----------------------------------------------
# "α" (CryptoHelper): PBKDF2-HMAC-SHA256, 1000 iterations, one fixed salt for
# every user, iv[16] ‖ ciphertext ‖ tag. Bare "🔐" (CryptoHelperObsolete):
# key = SHA-256(passphrase), one fixed 12-byte IV for every section, ciphertext ‖ tag.
ALPHA_ITERATIONS = 1000
ALPHA_SALT = b"XHWnDAT6ehMVY2zD"
OBSOLETE_IV = bytes([196, 190, 240, 190, 188, 78, 41, 132, 15, 220, 84, 211])

# Keys in .mirrorfs/config.yaml (flat, so a line-preserving YAML edit is one line).
CONFIG_SALT_KEY = "encryption_salt"
CONFIG_CHECK_KEY = "encryption_check"

_CHECK_PLAINTEXT = b"mirrorfs passphrase check"

_count_lock = threading.Lock()
_derivations = 0


def derivation_count() -> int:
    """How many PBKDF2 derivations this process has run (all keyrings together)."""
    return _derivations


def _count() -> None:
    global _derivations
    with _count_lock:
        _derivations += 1


def derive_key(passphrase: str | bytes, salt: bytes) -> bytes:
    """One bare v2 derivation, uncached: PBKDF2-HMAC-SHA512, 210000 iterations, 32 bytes."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    _count()
    return hashlib.pbkdf2_hmac("sha512", secret, salt, ITERATIONS, KEY_BYTES)


class Keyring:
    """A passphrase held in memory plus the keys derived from it, cached per salt.

    Thread-safe. ``derivations`` counts this keyring's PBKDF2 runs. ``forget()``
    drops the keys and overwrites the passphrase bytes (best effort: Python may
    still hold copies of the ``str`` it was built from).
    """

    def __init__(self, passphrase: str) -> None:
        if not isinstance(passphrase, str) or passphrase == "":
            raise InvalidValueError("the passphrase must be a non-empty string")
        try:
            self._secret = bytearray(passphrase.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidValueError("the passphrase is not valid Unicode text") from None
        self._ciphers: dict[tuple[int, bytes], AESGCM] = {}
        # Salts whose key has opened at least one section: a later failure under
        # such a key means the section changed, not that the passphrase is wrong.
        self._verified: set[tuple[int, bytes]] = set()
        self._lock = threading.Lock()
        self.derivations = 0

    def __repr__(self) -> str:
        state = "forgotten" if self._secret is None else f"{len(self._ciphers)} keys cached"
        return f"<Keyring {state}>"

    def forget(self) -> None:
        """Drop every cached key and overwrite the passphrase bytes; the keyring is unusable after."""
        with self._lock:
            if self._secret is not None:
                for i in range(len(self._secret)):
                    self._secret[i] = 0
            self._secret = None
            self._ciphers.clear()
            self._verified.clear()

    @property
    def forgotten(self) -> bool:
        return self._secret is None

    def same_passphrase(self, other: Keyring) -> bool:
        """True when both keyrings hold the same passphrase (constant-time compare)."""
        if self._secret is None or other._secret is None:
            return False
        return hmac.compare_digest(bytes(self._secret), bytes(other._secret))

    def _cipher(self, version: int, salt: bytes) -> AESGCM:
        slot = (version, bytes(salt))
        with self._lock:
            if self._secret is None:
                raise CryptoError("this keyring was forgotten (the vault was locked)")
            cipher = self._ciphers.get(slot)
            if cipher is None:
                secret = bytes(self._secret)
                if version == 2:
                    key = derive_key(secret, slot[1])
                elif version == 1:
                    _count()
                    key = hashlib.pbkdf2_hmac("sha256", secret, ALPHA_SALT, ALPHA_ITERATIONS, KEY_BYTES)
                else:
                    key = hashlib.sha256(secret).digest()
                self.derivations += 1
                cipher = self._ciphers[slot] = AESGCM(key)
            return cipher

    def seal(self, salt: bytes, iv: bytes, data: bytes) -> bytes:
        """AES-256-GCM ciphertext ‖ tag of *data* under the v2 key for *salt* (derived once, then cached)."""
        return self._cipher(2, salt).encrypt(bytes(iv), data, None)

    def open(self, version: int, salt: bytes, iv: bytes, body: bytes) -> bytes | None:
        """The plaintext bytes of ciphertext ‖ tag *body*, or None when the tag does not verify.

        *version* is the Meld form (2 β, 1 α, 0 bare 🔐). Success marks the
        (form, salt) key as verified (see :meth:`is_verified`).
        """
        try:
            data = self._cipher(version, salt).decrypt(bytes(iv), bytes(body), None)
        except InvalidTag:
            return None
        with self._lock:
            self._verified.add((version, bytes(salt)))
        return data

    def is_verified(self, version: int, salt: bytes) -> bool:
        """True once this keyring's key for (form, salt) opened something."""
        with self._lock:
            return (version, bytes(salt)) in self._verified


def new_vault_salt() -> bytes:
    """A fresh random 16-byte salt for a vault (store it with :func:`encode_salt`)."""
    return secrets.token_bytes(SALT_BYTES)


def encode_salt(salt: bytes) -> str:
    """The base64 text kept under ``encryption_salt`` in ``.mirrorfs/config.yaml``."""
    check_salt(salt)
    return base64.b64encode(salt).decode("ascii")


def decode_salt(value: object) -> bytes:
    """Read ``encryption_salt`` back; raises CryptoError when it is not 16 bytes of base64."""
    try:
        salt = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{CONFIG_SALT_KEY} in .mirrorfs/config.yaml is not base64") from None
    if len(salt) != SALT_BYTES:
        raise CryptoError(f"{CONFIG_SALT_KEY} in .mirrorfs/config.yaml must decode to {SALT_BYTES} bytes")
    return salt


def check_salt(salt: object) -> None:
    """InvalidValueError unless *salt* is 16 bytes."""
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_BYTES:
        raise InvalidValueError(f"a salt must be {SALT_BYTES} bytes")


def split_v2(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(iv, salt, ciphertext ‖ tag) of a decoded v2 payload."""
    return raw[:IV_BYTES], raw[IV_BYTES:IV_BYTES + SALT_BYTES], raw[IV_BYTES + SALT_BYTES:]


def make_check(keyring: Keyring, salt: bytes) -> str:
    """A v2 payload of a fixed text, kept under ``encryption_check`` in config.yaml, that
    lets :func:`verify_check` tell a wrong passphrase at unlock time, before anything is sealed.

    It is exactly the base64 part of a v2 section (docs/format.md)."""
    check_salt(salt)
    iv = secrets.token_bytes(IV_BYTES)
    return base64.b64encode(iv + bytes(salt) + keyring.seal(salt, iv, _CHECK_PLAINTEXT)).decode("ascii")


def verify_check(check: str, keyring: Keyring) -> None:
    """Raise WrongPassphraseError unless ``keyring`` opens the vault's check value."""
    try:
        raw = base64.b64decode(str(check).strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < IV_BYTES + SALT_BYTES + TAG_BYTES:
        raise CryptoError(f"{CONFIG_CHECK_KEY} in .mirrorfs/config.yaml is damaged")
    iv, salt, body = split_v2(raw)
    if keyring.open(2, salt, iv, body) != _CHECK_PLAINTEXT:
        raise WrongPassphraseError("wrong passphrase for this vault")


def has_key(config: Mapping) -> bool:
    """True when the vault config holds a passphrase check (a passphrase was set)."""
    return bool(config.get(CONFIG_CHECK_KEY))


def vault_key(config: Mapping, keyring: Keyring, *, create: bool = True) -> tuple[bytes, dict[str, str]]:
    """(vault salt, config keys to add) for unlocking a vault whose config is *config*.

    With a check value: verify *keyring* against it (WrongPassphraseError, nothing
    to add). Without one the vault has no passphrase yet: with *create*, this
    passphrase becomes its key (a new salt unless one is there, and a check);
    without, NoKeyError.
    """
    salt_value = config.get(CONFIG_SALT_KEY)
    check = config.get(CONFIG_CHECK_KEY)
    if check and not salt_value:
        raise CryptoError(f"the vault config has {CONFIG_CHECK_KEY} but no {CONFIG_SALT_KEY}")
    salt = decode_salt(salt_value) if salt_value else new_vault_salt()
    if check:
        verify_check(str(check), keyring)
        return salt, {}
    if not create:
        raise NoKeyError()
    added = {} if salt_value else {CONFIG_SALT_KEY: encode_salt(salt)}
    added[CONFIG_CHECK_KEY] = make_check(keyring, salt)
    return salt, added
