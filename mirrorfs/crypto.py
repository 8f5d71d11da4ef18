"""Encrypted sections inside ordinary notes, in the Meld Encrypt in-place format.

A section is ``%%🔐β <base64(iv[16] ‖ salt[16] ‖ ciphertext ‖ tag[16])> 🔐%%``
(or the visible form ``🔐β … 🔐``, optionally with a hint ``💡hint💡`` before
the base64). The key is PBKDF2-HMAC-SHA512(passphrase, salt, 210000, 32 bytes)
and the cipher AES-256-GCM with the 16-byte IV, exactly as the Obsidian plugin
Meld Encrypt writes it, so a person can open the same sections in Obsidian.

mirrorfs writes every section of a vault with one per-vault salt (and a fresh
random IV each time), so a :class:`Keyring` derives one key and opens thousands
of sections; sections written by Meld (one random salt each) still open, at one
derivation per distinct salt.

A *seal marker* is a fenced code block whose info string is ``secret``; it is
plaintext a person typed and means "encrypt this on the next write"
(:func:`seal_text`).

Nothing in this module puts plaintext or a passphrase into an exception
message, a warning or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import re
import secrets
import threading
import warnings
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import (
    CryptoError,
    InvalidValueError,
    MalformedSectionError,
    TamperedSectionError,
    WrongPassphraseError,
)

__all__ = [
    "ITERATIONS",
    "SALT_BYTES",
    "IV_BYTES",
    "CONFIG_SALT_KEY",
    "CONFIG_CHECK_KEY",
    "PLACEHOLDER",
    "DAMAGED_PLACEHOLDER",
    "UNSEALED_PLACEHOLDER",
    "WeakSectionWarning",
    "Section",
    "SealMarker",
    "Keyring",
    "derivation_count",
    "derive_key",
    "new_vault_salt",
    "encode_salt",
    "decode_salt",
    "find_sections",
    "encrypt_section",
    "decrypt_section",
    "decrypt_text",
    "lock_placeholder",
    "strip_sections",
    "reencrypt_section",
    "rekey_text",
    "find_seal_markers",
    "seal_text",
    "unseal_text",
    "has_unsealed",
    "make_check",
    "verify_check",
    "with_path",
]

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

PLACEHOLDER = "🔒 [encrypted section]"
DAMAGED_PLACEHOLDER = "🔒 [damaged encrypted section]"
UNSEALED_PLACEHOLDER = "🔒 [secret block, not sealed yet]"

_LOCK = "🔐"
_HINT = "💡"
_HIDDEN_SUFFIX = " 🔐%%"
_VISIBLE_SUFFIX = " 🔐"
# Everything Meld treats as a marker: a section's content may hold none of them.
_MARKERS = (
    "%%🔐β ", "🔐β ", "%%🔐α ", "🔐α ", "%%🔐 ", "🔐 ", _HIDDEN_SUFFIX, _VISIBLE_SUFFIX,
)
_VERSION_TAGS = {"β ": 2, "α ": 1, " ": 0}
_FORM_NAMES = {2: "v2", 1: "alpha (v1)", 0: "obsolete (v0)"}
_MIN_RAW = {2: IV_BYTES + SALT_BYTES + TAG_BYTES, 1: IV_BYTES + TAG_BYTES, 0: TAG_BYTES}

_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# What follows an α/β prefix when it really is (the start of) a section: that is
# the only case where a missing suffix or a marker inside is an error rather
# than ordinary text that happens to contain the emoji.
_PAYLOAD_START = re.compile(r"(?:💡[^💡\n]*💡)?[A-Za-z0-9+/]{16,}={0,2}")
_CHECK_PLAINTEXT = "mirrorfs passphrase check"


class WeakSectionWarning(UserWarning):
    """A section uses an old Meld form (α or bare 🔐) whose key derivation is weak."""


# --------------------------------------------------------------------------- keys

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

    def _mark_verified(self, version: int, salt: bytes) -> None:
        with self._lock:
            self._verified.add((version, bytes(salt)))

    def _is_verified(self, version: int, salt: bytes) -> bool:
        with self._lock:
            return (version, bytes(salt)) in self._verified


def new_vault_salt() -> bytes:
    """A fresh random 16-byte salt for a vault (store it with :func:`encode_salt`)."""
    return secrets.token_bytes(SALT_BYTES)


def encode_salt(salt: bytes) -> str:
    """The base64 text kept under ``encryption_salt`` in ``.mirrorfs/config.yaml``."""
    _check_salt(salt)
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


def _check_salt(salt: object) -> None:
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_BYTES:
        raise InvalidValueError(f"a salt must be {SALT_BYTES} bytes")


# ----------------------------------------------------------------------- sections


@dataclass(frozen=True)
class Section:
    """One encrypted section found in a text.

    ``start``/``end`` index the text (``text[start:end]`` is the whole section,
    markers included); ``index`` counts sections from 1 in text order and
    ``line`` is the 1-based line where it starts. ``version`` is 2 (β), 1 (α)
    or 0 (bare 🔐); ``visible`` is True for the form without ``%%``.
    """

    index: int
    line: int
    start: int
    end: int
    version: int
    visible: bool
    hint: str | None
    payload: str = field(repr=False)

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)

    @property
    def form(self) -> str:
        return _FORM_NAMES[self.version]

    @property
    def weak(self) -> bool:
        """True for the old forms that mirrorfs reads but never writes."""
        return self.version < 2

    @property
    def salt(self) -> bytes | None:
        """The v2 salt (None for old forms or an undecodable payload)."""
        if self.version != 2:
            return None
        try:
            raw = _b64decode(self.payload)
        except ValueError:
            return None
        return raw[IV_BYTES:IV_BYTES + SALT_BYTES] if len(raw) >= IV_BYTES + SALT_BYTES else None

    @property
    def where(self) -> str:
        return f"encrypted section {self.index} (line {self.line})"


@dataclass(frozen=True)
class _Broken:
    """A span that is a damaged section: reported by find_sections, hidden by the lock views."""

    index: int
    line: int
    start: int
    end: int
    reason: str


class _Lines:
    """1-based line numbers for increasing positions, counting each newline once."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def __call__(self, pos: int) -> int:
        if pos < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _parse_content(content: str) -> tuple[str | None, str] | None:
    """Split a section's content into (hint, payload) as Meld does, or None if invalid."""
    if any(marker in content for marker in _MARKERS):
        return None
    if content.startswith(_HINT):
        close = content.find(_HINT, len(_HINT))
        if close < 0:
            return None
        return content[len(_HINT):close], content[close + len(_HINT):]
    return None, content


def _scan(text: str) -> list[Section | _Broken]:
    """Find sections the way Meld does (prefix … first matching suffix), in text order."""
    found: list[Section | _Broken] = []
    _line_of = _Lines(text)
    pos = floor = 0
    while True:
        i = text.find(_LOCK, pos)
        if i < 0:
            return found
        after = i + len(_LOCK)
        version = None
        for tag, ver in _VERSION_TAGS.items():
            if text.startswith(tag, after):
                version, body = ver, after + len(tag)
                break
        if version is None:
            pos = after
            continue
        # The "%%" must not be the end of the previous section's " 🔐%%".
        hidden = i - 2 >= floor and text[i - 2:i] == "%%"
        start = i - 2 if hidden else i
        item: Section | _Broken | None = None
        # Meld pairs the hidden prefix with the hidden suffix; failing that, the
        # visible prefix inside it (after the %%) with the visible suffix.
        attempts = [(i - 2, _HIDDEN_SUFFIX)] if hidden else []
        attempts.append((i, _VISIBLE_SUFFIX))
        for begin, suffix in attempts:
            close = text.find(suffix, body)
            parsed = None if close < 0 else _parse_content(text[body:close])
            if parsed is None:
                continue
            hint, payload = parsed
            end = close + len(suffix)
            if _B64.fullmatch(payload) and (version > 0 or len(payload) >= 16):
                item = Section(len(found) + 1, _line_of(begin), begin, end, version,
                               suffix == _VISIBLE_SUFFIX, hint, payload)
                break
            if version > 0 and len(payload) >= 16 and not any(c.isspace() for c in payload):
                item = _Broken(len(found) + 1, _line_of(begin), begin, end, "its base64 text is damaged")
                break
        # Not a section: for α/β prefixes followed by what is clearly a payload,
        # the section is damaged; anything else is ordinary text with an emoji.
        if item is None and version > 0 and _PAYLOAD_START.match(text, body):
            if text.find(_VISIBLE_SUFFIX, body) < 0:
                item = _Broken(len(found) + 1, _line_of(start), start, _PAYLOAD_START.match(text, body).end(),
                               "it is unterminated (no closing ' 🔐%%' or ' 🔐')")
            else:
                item = _Broken(len(found) + 1, _line_of(start), start, _nested_end(text, body),
                               "a section marker opens inside it (nested or unterminated section)")
        if item is None:
            pos = after
            continue
        found.append(item)
        pos = floor = item.end


_NEST_TOKENS = re.compile(r"(?:%%)?🔐[βα] | 🔐(?![βα] )(?:%%)?")


def _nested_end(text: str, body: int) -> int:
    """End of a damaged α/β section whose content holds other markers: where the
    suffixes balance the openings, or the last suffix when they never do."""
    depth, end = 1, body
    for m in _NEST_TOKENS.finditer(text, body):
        if m.group().startswith(" "):
            depth -= 1
            end = m.end()
            if depth == 0:
                break
        else:
            depth += 1
    return end


def find_sections(text: str) -> list[Section]:
    """Every encrypted section of ``text`` in order.

    Raises MalformedSectionError (naming the section and its line) for a damaged
    section: unterminated, nested, or base64 that is not base64.
    """
    sections = []
    for item in _scan(text):
        if isinstance(item, _Broken):
            raise _err(MalformedSectionError, item.index, item.line, item.reason)
        sections.append(item)
    return sections


def _err(cls: type[CryptoError], index: int, line: int, reason: str, what: str = "encrypted section") -> CryptoError:
    err = cls(f"{what} {index} (line {line}): {reason}")
    err.section_index = index
    err.line = line
    err.reason = reason
    err.path = None
    return err


def with_path(err: CryptoError, path: object) -> CryptoError:
    """The same error (same class and attributes) with the file path in front of its message."""
    new = copy.copy(err)
    new.args = (f"{path}: {err}",)
    new.path = path
    return new


def _b64decode(payload: str) -> bytes:
    # atob-style: padding may be missing; a length of 4n+1 can never be base64.
    if not payload or len(payload) % 4 == 1 or not _B64.fullmatch(payload):
        raise ValueError("not base64")
    stripped = payload.rstrip("=")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def _check_hint(hint: str | None) -> None:
    if hint is None or hint == "":
        return
    if not isinstance(hint, str) or "\n" in hint or "\r" in hint or _HINT in hint or _LOCK in hint or "%%" in hint:
        raise InvalidValueError("a hint must be one line without 💡, 🔐 or %%")


def _encode(payload: bytes, hint: str | None, visible: bool) -> str:
    prefix = "🔐β " if visible else "%%🔐β "
    suffix = _VISIBLE_SUFFIX if visible else _HIDDEN_SUFFIX
    b64 = base64.b64encode(payload).decode("ascii")
    if hint:
        return f"{prefix}{_HINT}{hint}{_HINT}{b64}{suffix}"
    return f"{prefix}{b64}{suffix}"


def encrypt_section(
    plaintext: str,
    keyring: Keyring,
    *,
    salt: bytes,
    hint: str | None = None,
    visible: bool = False,
    iv: bytes | None = None,
) -> str:
    """Encrypt ``plaintext`` into one v2 section string (hidden ``%%`` form unless ``visible``).

    Pass the vault salt so every section shares one derived key (Meld itself
    uses a random salt per section: pass ``new_vault_salt()`` for that). A fresh
    random IV is drawn each time; ``iv`` exists only for known-answer tests and
    must never repeat under one key. Raises InvalidValueError for a bad salt,
    hint, or text that is not valid Unicode.
    """
    _check_salt(salt)
    _check_hint(hint)
    if iv is None:
        iv = secrets.token_bytes(IV_BYTES)
    elif len(iv) != IV_BYTES:
        raise InvalidValueError(f"an IV must be {IV_BYTES} bytes")
    try:
        data = plaintext.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        raise InvalidValueError("the text to encrypt is not valid Unicode text") from None
    sealed = keyring._cipher(2, salt).encrypt(bytes(iv), data, None)
    return _encode(bytes(iv) + bytes(salt) + sealed, hint, visible)


def decrypt_section(section: Section, keyring: Keyring) -> str:
    """The plaintext of one section.

    Raises MalformedSectionError (not base64, too short, not UTF-8),
    WrongPassphraseError (the key opens nothing so far), or TamperedSectionError
    (the same key opened another section, so this one was changed or truncated).
    Old forms also emit a WeakSectionWarning.
    """
    try:
        raw = _b64decode(section.payload)
    except ValueError:
        raise _err(MalformedSectionError, section.index, section.line, "its base64 text is damaged") from None
    if len(raw) < _MIN_RAW[section.version]:
        raise _err(MalformedSectionError, section.index, section.line,
                   "it is truncated (too short to hold a ciphertext)")
    if section.version == 2:
        iv, salt, body = raw[:IV_BYTES], raw[IV_BYTES:IV_BYTES + SALT_BYTES], raw[IV_BYTES + SALT_BYTES:]
    elif section.version == 1:
        iv, salt, body = raw[:IV_BYTES], ALPHA_SALT, raw[IV_BYTES:]
    else:
        iv, salt, body = OBSOLETE_IV, b"", raw
    if section.weak:
        warnings.warn(
            f"{section.where} uses the old Meld Encrypt {section.form} form, whose key "
            "derivation is weak; `mirrorfs rekey` rewrites it in the v2 form",
            WeakSectionWarning,
            stacklevel=2,
        )
    try:
        data = keyring._cipher(section.version, salt).decrypt(iv, body, None)
    except InvalidTag:
        # Only v2 salts are per vault (or per section): α shares one salt among all
        # Meld users and bare 🔐 has none, so there a failure says nothing more.
        if section.version == 2 and keyring._is_verified(2, salt):
            raise _err(TamperedSectionError, section.index, section.line,
                       "it was changed or truncated after it was written (the passphrase "
                       "opens other sections with the same salt)") from None
        raise _err(WrongPassphraseError, section.index, section.line,
                   "wrong passphrase (or the section was changed after it was written)") from None
    keyring._mark_verified(section.version, salt)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _err(MalformedSectionError, section.index, section.line,
                   "its decrypted content is not UTF-8 text") from None


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for start, end, repl in spans:
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def decrypt_text(text: str, keyring: Keyring, *, errors: str = "raise") -> str:
    """``text`` with every section replaced by its plaintext; everything else unchanged.

    ``errors="raise"`` (default) raises the first section's error (see
    :func:`decrypt_section`, :func:`find_sections`); ``errors="placeholder"``
    puts :data:`PLACEHOLDER` (or :data:`DAMAGED_PLACEHOLDER`) where a section
    cannot be opened, e.g. a Meld section under another passphrase.
    """
    if errors not in ("raise", "placeholder"):
        raise InvalidValueError("errors must be 'raise' or 'placeholder'")
    spans = []
    for item in _scan(text) if errors == "placeholder" else find_sections(text):
        if isinstance(item, _Broken):
            spans.append((item.start, item.end, DAMAGED_PLACEHOLDER))
            continue
        try:
            spans.append((item.start, item.end, decrypt_section(item, keyring)))
        except CryptoError:
            if errors == "raise":
                raise
            spans.append((item.start, item.end, _placeholder(item)))
    return _replace(text, spans)


def _placeholder(section: Section) -> str:
    if section.hint:
        return f"🔒 [encrypted section, hint: {section.hint}]"
    return PLACEHOLDER


def _hidden_spans(text: str, sections_repl, broken_repl, block_repl) -> list[tuple[int, int, str]]:
    spans = []
    for item in _scan(text):
        repl = broken_repl if isinstance(item, _Broken) else sections_repl(item)
        spans.append((item.start, item.end, repl))
    for start, end in _seal_spans(text):
        spans.append((start, end, block_repl))
    # A section typed inside a secret block is covered by the block: keep the outer span.
    spans.sort(key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, str]] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            continue
        merged.append(span)
    return merged


def lock_placeholder(text: str) -> str:
    """What a locked reader sees: every section (and every unsealed secret block) replaced by a placeholder.

    Never raises: damaged sections become :data:`DAMAGED_PLACEHOLDER`.
    """
    return _replace(text, _hidden_spans(text, _placeholder, DAMAGED_PLACEHOLDER, UNSEALED_PLACEHOLDER))


def strip_sections(text: str) -> str:
    """``text`` for the search index: sections and secret blocks removed, so neither
    ciphertext nor text meant to be secret becomes search terms. Never raises."""
    return _replace(text, _hidden_spans(text, lambda s: " ", " ", ""))


_KEEP = object()


def reencrypt_section(
    section: Section,
    keyring: Keyring,
    *,
    salt: bytes,
    new_keyring: Keyring | None = None,
    hint: str | None | object = _KEEP,
    visible: bool | None = None,
) -> str:
    """Decrypt ``section`` with ``keyring`` and write it again as a v2 section.

    Used to upgrade the old α/bare forms and by rekey. ``new_keyring`` defaults
    to ``keyring``; the hint and visibility are kept unless given. Raises what
    :func:`decrypt_section` raises.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSectionWarning)
        plaintext = decrypt_section(section, keyring)
    return encrypt_section(
        plaintext,
        new_keyring or keyring,
        salt=salt,
        hint=section.hint if hint is _KEEP else hint,
        visible=section.visible if visible is None else visible,
    )


def rekey_text(
    text: str,
    keyring: Keyring,
    new_keyring: Keyring | None = None,
    *,
    salt: bytes,
    only_weak: bool = False,
) -> str:
    """Every section of ``text`` re-encrypted under ``new_keyring`` and ``salt``; other bytes unchanged.

    Resumable: a v2 section that already carries ``salt`` and opens with
    ``new_keyring`` is kept as it is, so running rekey again after an
    interruption only touches what is left. ``only_weak=True`` upgrades just the
    old α/bare sections (same passphrase). Raises what :func:`decrypt_section` raises.
    """
    new_keyring = new_keyring or keyring
    _check_salt(salt)
    spans = []
    for section in find_sections(text):
        if only_weak and not section.weak:
            continue
        if section.version == 2 and section.salt == bytes(salt):
            try:
                decrypt_section(section, new_keyring)
                continue
            except CryptoError:
                pass
        spans.append((section.start, section.end,
                      reencrypt_section(section, keyring, salt=salt, new_keyring=new_keyring)))
    return _replace(text, spans)


def make_check(keyring: Keyring, salt: bytes) -> str:
    """A v2 payload of a fixed text, kept under ``encryption_check`` in config.yaml, that
    lets :func:`verify_check` tell a wrong passphrase at unlock time, before anything is sealed."""
    section = encrypt_section(_CHECK_PLAINTEXT, keyring, salt=salt)
    return section[len("%%🔐β "):-len(_HIDDEN_SUFFIX)]


def verify_check(check: str, keyring: Keyring) -> None:
    """Raise WrongPassphraseError unless ``keyring`` opens the vault's check value."""
    section = Section(0, 0, 0, 0, 2, False, None, str(check).strip())
    try:
        ok = decrypt_section(section, keyring) == _CHECK_PLAINTEXT
    except (WrongPassphraseError, TamperedSectionError):
        ok = False
    except MalformedSectionError:
        raise CryptoError(f"{CONFIG_CHECK_KEY} in .mirrorfs/config.yaml is damaged") from None
    if not ok:
        raise WrongPassphraseError("wrong passphrase for this vault")


# ------------------------------------------------------------------ seal markers


@dataclass(frozen=True)
class SealMarker:
    """A ```secret fenced block waiting to be sealed.

    ``start``/``end`` cover the block from its opening fence to the end of its
    closing fence line (the line break after it, and any indentation or ``>``
    before the opening fence, are not part of it). ``plaintext`` is the block's
    content without the fences (kept out of ``repr``).
    """

    index: int
    line: int
    start: int
    end: int
    hint: str | None
    visible: bool
    plaintext: str = field(repr=False)


_FENCE = re.compile(r"(?P<prefix>[ \t>]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\r\n]*)")


def _lines(text: str):
    """(start, end_without_line_break, end_with_line_break) of every line."""
    pos, n = 0, len(text)
    while pos < n:
        nl = text.find("\n", pos)
        stop = n if nl < 0 else nl + 1
        content_end = stop
        if content_end > pos and text[content_end - 1] == "\n":
            content_end -= 1
            if content_end > pos and text[content_end - 1] == "\r":
                content_end -= 1
        yield pos, content_end, stop
        pos = stop


def _secret_info(info: str):
    """Parse a fence info string; None if it is not a secret block, else (hint, visible, error)."""
    words = info.strip()
    if words != "secret" and not words.startswith(("secret ", "secret\t")):
        return None
    rest = words[len("secret"):].strip()
    visible, hint = False, None
    while rest:
        if rest.startswith("hint:"):
            hint = rest[len("hint:"):].strip() or None
            break
        word, _, rest = rest.partition(" ")
        rest = rest.strip()
        if word == "visible":
            visible = True
        else:
            return (None, False, f"unknown option {word[:20]!r} after 'secret' (use 'visible' or 'hint: ...')")
    if hint is not None:
        try:
            _check_hint(hint)
        except InvalidValueError as exc:
            return (None, False, str(exc))
    return (hint, visible, None)


def _seal_scan(text: str):
    """Yield SealMarker or _Broken for every secret block outside other code fences.

    Fences follow CommonMark: a block closes at a line holding only the same
    fence character, at least as many times; inside any fence nothing opens.
    """
    fence = None  # the open fence: dict
    index = 0
    for lineno, (start, end, stop) in enumerate(_lines(text), 1):
        m = _FENCE.fullmatch(text, start, end)
        if fence is None:
            if not m or (m["fence"][0] == "`" and "`" in m["info"]):
                continue
            fence = {"char": m["fence"][0], "length": len(m["fence"]), "secret": False}
            info = _secret_info(m["info"])
            if info is None:
                continue
            index += 1
            hint, visible, error = info
            fence.update(secret=True, index=index, line=lineno, start=start + len(m["prefix"]),
                         prefix=m["prefix"], hint=hint, visible=visible, body=stop, error=error)
            continue
        if (m is not None and m["fence"][0] == fence["char"] and len(m["fence"]) >= fence["length"]
                and m["info"].strip() == ""):
            done, fence = fence, None
            if not done["secret"]:
                continue
            if done["error"]:
                yield _Broken(done["index"], done["line"], done["start"], end, done["error"])
            else:
                yield SealMarker(done["index"], done["line"], done["start"], end, done["hint"],
                                 done["visible"], _block_plaintext(text, done["body"], start, done["prefix"]))
            continue
        if fence["secret"] and not fence["error"]:
            if m is not None and _secret_info(m["info"]) is not None:
                fence["error"] = f"a ```secret block opens inside it at line {lineno} (nested secret block)"
            elif _scan(text[start:end]):
                fence["error"] = f"line {lineno} inside it is already an encrypted section (nested)"
    if fence is not None and fence["secret"]:
        yield _Broken(fence["index"], fence["line"], fence["start"], len(text),
                      "it is unterminated (no closing fence line)")


def _block_plaintext(text: str, body_start: int, body_end: int, prefix: str) -> str:
    lines = []
    for start, end, stop in _lines(text[body_start:body_end]):
        line = text[body_start + start:body_start + stop]
        if prefix and line.startswith(prefix):
            line = line[len(prefix):]
        elif prefix:
            cut = 0
            while cut < len(prefix) and cut < len(line) and line[cut] in " \t>":
                cut += 1
            line = line[cut:]
        lines.append(line)
    joined = "".join(lines)
    # The line break before the closing fence belongs to the block, not to the secret.
    if joined.endswith("\r\n"):
        return joined[:-2]
    if joined.endswith("\n"):
        return joined[:-1]
    return joined


def _seal_spans(text: str) -> list[tuple[int, int]]:
    return [(item.start, item.end) for item in _seal_scan(text)]


def find_seal_markers(text: str) -> list[SealMarker]:
    """Every ```secret block of ``text`` in order (blocks inside other code fences are examples, not markers).

    Raises MalformedSectionError naming the block and its line for an
    unterminated or nested block or an unknown option.
    """
    markers = []
    for item in _seal_scan(text):
        if isinstance(item, _Broken):
            raise _err(MalformedSectionError, item.index, item.line, item.reason, what="secret block")
        markers.append(item)
    return markers


def has_unsealed(text: str) -> bool:
    """True when ``text`` holds a ```secret block (well-formed or not): plaintext meant to be sealed. Never raises."""
    return any(True for _ in _seal_scan(text))


def seal_text(text: str, keyring: Keyring, salt: bytes, *, previous: str | None = None) -> str:
    """Replace every ```secret block with a v2 section; every other byte stays as it is.

    With ``previous`` (the text as it was before a person edited a decrypted
    copy), a block whose plaintext, hint and visibility equal a section of
    ``previous`` gets that section's exact bytes back (each at most once), so
    unchanged secrets do not churn; old α/bare sections come back as v2.
    Raises MalformedSectionError for damaged blocks, before anything is encrypted.
    """
    markers = find_seal_markers(text)
    if not markers:
        return text
    _check_salt(salt)
    # Each old section is given back at most once: two blocks with the same text
    # must not end up as two copies of one ciphertext (same IV under one key).
    reuse: dict[tuple[str, str | None, bool], list[str]] = {}
    if previous is not None:
        for section in find_sections(previous):
            if section.weak:  # an old-form section comes back as v2: an upgrade, on purpose
                continue
            try:
                plain = decrypt_section(section, keyring)
            except CryptoError:
                continue
            reuse.setdefault((plain, section.hint, section.visible), []).append(
                previous[section.start:section.end])
    spans = []
    for marker in markers:
        candidates = reuse.get((marker.plaintext, marker.hint, marker.visible))
        again = candidates.pop(0) if candidates else None
        if again is None:
            again = encrypt_section(marker.plaintext, keyring, salt=salt, hint=marker.hint, visible=marker.visible)
        spans.append((marker.start, marker.end, again))
    return _replace(text, spans)


def unseal_text(text: str, keyring: Keyring) -> str:
    """Turn every section that stands alone on its line into a ```secret block holding its
    plaintext (for ``mirrorfs edit``); :func:`seal_text` with ``previous=text`` turns it back.

    Sections inside a line of other text stay encrypted (a fence cannot start
    mid-line). Raises what :func:`decrypt_section` raises.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    spans = []
    for section in find_sections(text):
        line_start = text.rfind("\n", 0, section.start) + 1
        prefix = text[line_start:section.start]
        rest_end = text.find("\n", section.end)
        rest = text[section.end:len(text) if rest_end < 0 else rest_end]
        if prefix.strip(" \t>") or rest.strip(" \t\r"):
            continue
        plaintext = decrypt_section(section, keyring)
        longest = max((len(m.group(1)) for m in re.finditer(r"(?m)^[ \t>]*(`{3,})", plaintext)), default=0)
        fence = "`" * max(3, longest + 1)
        info = "secret" + (" visible" if section.visible else "") + (f" hint: {section.hint}" if section.hint else "")
        lines = [prefix + line for line in plaintext.replace("\r\n", "\n").split("\n")]
        block = f"{fence}{info}{newline}{newline.join(lines)}{newline}{prefix}{fence}"
        spans.append((section.start, section.end, block))
    return _replace(text, spans)
