"""The vault config, ``.mirrorfs/config.yaml``: read it, and change its flat keys keeping every other byte.

The config is synced to every device and a person may have edited it by hand
(comments, quoting, CRLF line endings, a BOM). A change never dumps the whole
YAML again: each key is set or removed as text with the tested
:mod:`mirrorfs.frontmatter_edit` (a top-level key owns its line and the lines
indented below it), the result is loaded again to prove that only those keys
changed, and it is written through the one write path
(:meth:`mirrorfs.storage.Store.update`: per-device lock, compare-and-swap).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from mirrorfs import frontmatter_edit, storage
from mirrorfs.errors import MirrorfsError, UnsafeEditError, VaultNotFoundError
from mirrorfs.layout import CONFIG_FILE
from mirrorfs.note import BOM, detect_newline, yaml_problem

FORMAT_VERSION = 1

# A value to set, or None to remove the key.
Changes = Mapping[str, Any]


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MirrorfsError(f"{path}: cannot read the vault config: it is not UTF-8 text") from None
    return (BOM, text[1:]) if text.startswith(BOM) else ("", text)


def _load(text: str, path: Path) -> dict:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MirrorfsError(f"{path}: cannot read the vault config: {yaml_problem(exc, first_line=1)}") from None
    if not isinstance(config, dict) or not config.get("vault_id"):
        raise MirrorfsError(f"{path}: the vault config has no vault_id")
    fmt = config.get("format", FORMAT_VERSION)
    if isinstance(fmt, int) and fmt > FORMAT_VERSION:
        raise MirrorfsError(
            f"{path}: vault format {fmt} is newer than this mirrorfs understands ({FORMAT_VERSION}); upgrade mirrorfs"
        )
    return config


def parse_config(data: bytes, path: str | os.PathLike = CONFIG_FILE) -> dict:
    """The config mapping in *data*; MirrorfsError (one line) when it is not a vault config."""
    return _load(_decode(data, Path(path))[1], Path(path))


def load_config(root: str | os.PathLike) -> dict:
    """The config of the vault at *root*; MirrorfsError (one line) when it cannot be read."""
    path = Path(root) / CONFIG_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MirrorfsError(f"{path}: cannot read the vault config: {exc.strerror or exc}") from None
    return parse_config(data, path)


def set_keys_text(text: str, changes: Changes, path: str | os.PathLike = CONFIG_FILE) -> str:
    """*text* (a YAML mapping, BOM removed) with each flat key of *changes* set, or removed
    when its value is None; every other byte stays.

    A new key goes at the end, in the file's line ending. Raises UnsafeEditError,
    changing nothing, when the result would not load to exactly the intended mapping
    (e.g. a config written as one flow mapping).
    """
    path = Path(path)
    before = _load(text, path) if text.strip() else {}
    newline = detect_newline(text)
    expected = dict(before)
    for key, value in changes.items():
        if expected.get(key) == value and (value is not None or key not in expected):
            continue  # already so: its line (and any comment on it) stays as written
        if value is None:
            text = frontmatter_edit.unset_key(text, key)
            expected.pop(key, None)
        else:
            text = frontmatter_edit.set_key(text, key, value, newline)
            expected[key] = value
    try:
        after = yaml.safe_load(text)
    except yaml.YAMLError:
        after = None
    if after != expected:
        names = ", ".join(sorted(str(k) for k in changes))
        raise UnsafeEditError(f"{path}: cannot change {names} without touching other lines; nothing was written")
    return text


def edit_config(store: storage.Store, root: str | os.PathLike,
                change: Callable[[dict], Changes]) -> dict:
    """Change the config of the vault at *root* through the one write path; returns the new mapping.

    *change* gets the current mapping (read under the file's lock) and returns
    the keys to set (None removes one); an empty answer writes nothing. What it
    raises propagates and nothing is written.
    """
    path = Path(root) / CONFIG_FILE
    result: list[dict] = []

    def apply(data: bytes | None) -> bytes:
        if data is None:
            raise VaultNotFoundError(f"{path} disappeared")
        bom, text = _decode(data, path)
        current = _load(text, path)
        changes = change(dict(current))
        if not changes:
            result.append(current)
            return data
        text = set_keys_text(text, changes, path)
        result.append(_load(text, path))
        return (bom + text).encode("utf-8")

    store.update(path, apply)
    return result[-1]


def set_config_keys(store: storage.Store, root: str | os.PathLike, changes: Changes) -> dict:
    """Set (or with None remove) flat keys of the config of the vault at *root*; returns the new mapping."""
    return edit_config(store, root, lambda current: changes)
