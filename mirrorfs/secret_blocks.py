"""The ```secret fence: plaintext a person marked to be sealed, and turning sections back into it.

A *seal marker* is a fenced code block whose info string is ``secret``
(options ``visible`` and ``hint: text``); it is plaintext a person typed and
means "encrypt this on the next write" (:func:`seal_text`). For ``mirrorfs
edit`` the opposite, :func:`unseal_text`, shows every section that stands
alone on its line as such a block. Fences follow CommonMark (docs/format.md).

Nothing in this module puts plaintext into an exception message or a ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mirrorfs.errors import CryptoError, InvalidValueError, MalformedSectionError
from mirrorfs.keys import Keyring, check_salt
from mirrorfs.sections import (
    Damaged,
    check_hint,
    decrypt_section,
    encrypt_section,
    find_sections,
    located_error,
    replace_spans,
    scan,
)

UNSEALED_PLACEHOLDER = "🔒 [secret block, not sealed yet]"


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
            check_hint(hint)
        except InvalidValueError as exc:
            return (None, False, str(exc))
    return (hint, visible, None)


def seal_scan(text: str):
    """Yield SealMarker or Damaged for every secret block outside other code fences.

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
                yield Damaged(done["index"], done["line"], done["start"], end, done["error"])
            else:
                yield SealMarker(done["index"], done["line"], done["start"], end, done["hint"],
                                 done["visible"], _block_plaintext(text, done["body"], start, done["prefix"]))
            continue
        if fence["secret"] and not fence["error"]:
            if m is not None and _secret_info(m["info"]) is not None:
                fence["error"] = f"a ```secret block opens inside it at line {lineno} (nested secret block)"
            elif scan(text[start:end]):
                fence["error"] = f"line {lineno} inside it is already an encrypted section (nested)"
    if fence is not None and fence["secret"]:
        yield Damaged(fence["index"], fence["line"], fence["start"], len(text),
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


def seal_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every secret block, damaged or not (what a locked view hides). Never raises."""
    return [(item.start, item.end) for item in seal_scan(text)]


def find_seal_markers(text: str) -> list[SealMarker]:
    """Every ```secret block of ``text`` in order (blocks inside other code fences are examples, not markers).

    Raises MalformedSectionError naming the block and its line for an
    unterminated or nested block or an unknown option.
    """
    markers = []
    for item in seal_scan(text):
        if isinstance(item, Damaged):
            raise located_error(MalformedSectionError, item.index, item.line, item.reason, what="secret block")
        markers.append(item)
    return markers


def has_unsealed(text: str) -> bool:
    """True when ``text`` holds a ```secret block (well-formed or not): plaintext meant to be sealed. Never raises."""
    return any(True for _ in seal_scan(text))


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
    check_salt(salt)
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
    return replace_spans(text, spans)


def seal_body(body: str, keyring: Keyring, salt: bytes) -> str:
    """A whole body as one section (a secret memory or message), ending in the body's line break.

    Leading and trailing blank lines are not part of the secret; InvalidValueError
    when nothing else is left.
    """
    newline = "\r\n" if "\r\n" in body else "\n"
    plaintext = body.strip("\r\n")
    if not plaintext.strip():
        raise InvalidValueError("a secret needs some text")
    return encrypt_section(plaintext, keyring, salt=salt) + newline


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
    return replace_spans(text, spans)
