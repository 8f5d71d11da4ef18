"""Meld Encrypt sections inside ordinary notes: find, encrypt, decrypt, re-encrypt.

A section is ``%%🔐β <base64(iv[16] ‖ salt[16] ‖ ciphertext ‖ tag[16])> 🔐%%``
(or the visible form ``🔐β … 🔐``, optionally with a hint ``💡hint💡`` before
the base64). The key is PBKDF2-HMAC-SHA512(passphrase, salt, 210000, 32 bytes)
and the cipher AES-256-GCM with the 16-byte IV, exactly as the Obsidian plugin
Meld Encrypt writes it, so a person can open the same sections in Obsidian.
Older Meld forms (α, bare 🔐) are read, never written. Keys come from a
:class:`mirrorfs.keys.Keyring`.

Nothing in this module puts plaintext or a passphrase into an exception
message, a warning or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
import warnings
from dataclasses import dataclass, field

from mirrorfs.errors import (
    CryptoError,
    InvalidValueError,
    MalformedSectionError,
    TamperedSectionError,
    WrongPassphraseError,
)
from mirrorfs.keys import (
    ALPHA_SALT,
    IV_BYTES,
    OBSOLETE_IV,
    SALT_BYTES,
    TAG_BYTES,
    Keyring,
    check_salt,
    split_v2,
)

PLACEHOLDER = "🔒 [encrypted section]"
DAMAGED_PLACEHOLDER = "🔒 [damaged encrypted section]"

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


class WeakSectionWarning(UserWarning):
    """A section uses an old Meld form (α or bare 🔐) whose key derivation is weak."""


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
        return split_v2(raw)[1] if len(raw) >= IV_BYTES + SALT_BYTES else None

    @property
    def where(self) -> str:
        return f"encrypted section {self.index} (line {self.line})"


@dataclass(frozen=True)
class Damaged:
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


def scan(text: str) -> list[Section | Damaged]:
    """Find sections the way Meld does (prefix … first matching suffix), in text order;
    damaged ones come back as :class:`Damaged` instead of raising."""
    found: list[Section | Damaged] = []
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
        item: Section | Damaged | None = None
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
                item = Damaged(len(found) + 1, _line_of(begin), begin, end, "its base64 text is damaged")
                break
        # Not a section: for α/β prefixes followed by what is clearly a payload,
        # the section is damaged; anything else is ordinary text with an emoji.
        if item is None and version > 0 and _PAYLOAD_START.match(text, body):
            if text.find(_VISIBLE_SUFFIX, body) < 0:
                item = Damaged(len(found) + 1, _line_of(start), start, _PAYLOAD_START.match(text, body).end(),
                               "it is unterminated (no closing ' 🔐%%' or ' 🔐')")
            else:
                item = Damaged(len(found) + 1, _line_of(start), start, _nested_end(text, body),
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
    for item in scan(text):
        if isinstance(item, Damaged):
            raise located_error(MalformedSectionError, item.index, item.line, item.reason)
        sections.append(item)
    return sections


def located_error(cls: type[CryptoError], index: int, line: int, reason: str,
                  what: str = "encrypted section") -> CryptoError:
    """A *cls* error naming the section (or block) and its line, with the reason as attributes."""
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


def check_hint(hint: str | None) -> None:
    """InvalidValueError unless *hint* can stand between the 💡 of a section (one line, no marker)."""
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
    check_salt(salt)
    check_hint(hint)
    if iv is None:
        iv = secrets.token_bytes(IV_BYTES)
    elif len(iv) != IV_BYTES:
        raise InvalidValueError(f"an IV must be {IV_BYTES} bytes")
    try:
        data = plaintext.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        raise InvalidValueError("the text to encrypt is not valid Unicode text") from None
    return _encode(bytes(iv) + bytes(salt) + keyring.seal(salt, iv, data), hint, visible)


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
        raise located_error(MalformedSectionError, section.index, section.line,
                            "its base64 text is damaged") from None
    if len(raw) < _MIN_RAW[section.version]:
        raise located_error(MalformedSectionError, section.index, section.line,
                            "it is truncated (too short to hold a ciphertext)")
    if section.version == 2:
        iv, salt, body = split_v2(raw)
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
    data = keyring.open(section.version, salt, iv, body)
    if data is None:
        # Only v2 salts are per vault (or per section): α shares one salt among all
        # Meld users and bare 🔐 has none, so there a failure says nothing more.
        if section.version == 2 and keyring.is_verified(2, salt):
            raise located_error(TamperedSectionError, section.index, section.line,
                                "it was changed or truncated after it was written (the passphrase "
                                "opens other sections with the same salt)")
        raise located_error(WrongPassphraseError, section.index, section.line,
                            "wrong passphrase (or the section was changed after it was written)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise located_error(MalformedSectionError, section.index, section.line,
                            "its decrypted content is not UTF-8 text") from None


def replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """*text* with each (start, end, replacement) span replaced; spans in order, not overlapping."""
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
    for item in scan(text) if errors == "placeholder" else find_sections(text):
        if isinstance(item, Damaged):
            spans.append((item.start, item.end, DAMAGED_PLACEHOLDER))
            continue
        try:
            spans.append((item.start, item.end, decrypt_section(item, keyring)))
        except CryptoError:
            if errors == "raise":
                raise
            spans.append((item.start, item.end, placeholder(item)))
    return replace_spans(text, spans)


def placeholder(section: Section) -> str:
    """What a locked reader sees in place of *section* (its hint shown, if any)."""
    if section.hint:
        return f"🔒 [encrypted section, hint: {section.hint}]"
    return PLACEHOLDER


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
    check_salt(salt)
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
    return replace_spans(text, spans)
