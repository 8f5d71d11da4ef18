"""Secrets inside ordinary notes: the one import for every reader and writer of them.

The format lives in three modules, imported here so callers (and tests) use
one name space:

* :mod:`mirrorfs.keys` — the :class:`Keyring`, key derivation and its cache,
  vault salts and the passphrase check value;
* :mod:`mirrorfs.sections` — Meld Encrypt sections: find, encrypt, decrypt,
  re-encrypt (docs/format.md, "Encrypted sections");
* :mod:`mirrorfs.secret_blocks` — the ```secret fence a person types: find,
  seal, unseal.

This module adds what needs both: the views of a text for readers who may not
see its secrets (:func:`lock_placeholder`, :func:`strip_sections`).
"""

from __future__ import annotations

from mirrorfs.keys import (
    CONFIG_CHECK_KEY,
    CONFIG_SALT_KEY,
    ITERATIONS,
    IV_BYTES,
    SALT_BYTES,
    Keyring,
    decode_salt,
    derivation_count,
    derive_key,
    encode_salt,
    make_check,
    new_vault_salt,
    verify_check,
)
from mirrorfs.secret_blocks import (
    UNSEALED_PLACEHOLDER,
    SealMarker,
    find_seal_markers,
    has_unsealed,
    seal_scan,
    seal_spans,
    seal_text,
    unseal_text,
)
from mirrorfs.sections import (
    DAMAGED_PLACEHOLDER,
    PLACEHOLDER,
    Damaged,
    Section,
    WeakSectionWarning,
    decrypt_section,
    decrypt_text,
    encrypt_section,
    find_sections,
    placeholder,
    reencrypt_section,
    rekey_text,
    replace_spans,
    scan,
    with_path,
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

# The raw scanners under their former private names: they list damaged items too.
_scan = scan
_seal_scan = seal_scan


def _hidden_spans(text: str, section_repl, damaged_repl: str, block_repl: str) -> list[tuple[int, int, str]]:
    spans = []
    for item in scan(text):
        repl = damaged_repl if isinstance(item, Damaged) else section_repl(item)
        spans.append((item.start, item.end, repl))
    for start, end in seal_spans(text):
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
    return replace_spans(text, _hidden_spans(text, placeholder, DAMAGED_PLACEHOLDER, UNSEALED_PLACEHOLDER))


def strip_sections(text: str) -> str:
    """``text`` for the search index: sections and secret blocks removed, so neither
    ciphertext nor text meant to be secret becomes search terms. Never raises."""
    return replace_spans(text, _hidden_spans(text, lambda s: " ", " ", ""))
