"""Which vault a command acts on, as which instance, and where this device keeps its state.

Resolved from the options, the environment and the file system with the
standard library only: the full CLI (through Vault.open and mirrorfs.state)
and the lean console (mirrorfs.console) both decide here, so they cannot
disagree on which vault `mirrorfs search` means.

The lean console also needs the vault id and the state folder without YAML
or platformdirs (together a third of its start-up). `config_vault_id` and
`guess_state_base` give cheap answers for the ordinary case and None
otherwise; `existing_state_dir` accepts them only when the state folder they
name exists and records this very vault folder, so a wrong guess finds
nothing and the full CLI answers instead.
"""

from __future__ import annotations

import os
import re
import sys
from _socket import (
    gethostname,  # socket.gethostname itself, without socket.py's enum tables
)
from pathlib import Path

from mirrorfs.errors import InvalidValueError, VaultNotFoundError
from mirrorfs.layout import CONFIG_FILE

try:
    # The builtin SHA-1 gives hashlib's digests without loading OpenSSL (3 ms of a lean start).
    from _sha1 import sha1
except ImportError:  # an interpreter built without it
    from hashlib import sha1

ENV_VAULT = "MIRRORFS_VAULT"
ENV_INSTANCE = "MIRRORFS_INSTANCE"
ENV_STATE_DIR = "MIRRORFS_STATE_DIR"
APP = "mirrorfs"
VAULTS_DIR = "vaults"
ROOT_FILE = "root"  # in each vault's state folder: the vault folder it belongs to
DEVICE_FILE = "device.yaml"  # there too: this device's settings for the vault (its default instance)
VECTORS_FILE = ("vectors", "vectors.sqlite3")  # there too: the vector store (mirrorfs.vectors)

_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Names reflections and the bridge give to others than an instance.
RESERVED_NAMES = {"human": "a person", "someone": "an unknown writer", "all": "every instance"}


def check_instance_name(name: str) -> str:
    """*name*, or InvalidValueError when it cannot name an instance."""
    if not _INSTANCE_NAME.match(name or ""):
        raise InvalidValueError(
            f"invalid instance name {name!r}: use lowercase letters, digits, '-' and '_' "
            "(it names a folder), e.g. laptop or phone"
        )
    if name in RESERVED_NAMES:
        raise InvalidValueError(
            f"{name!r} cannot be an instance name: mirrorfs uses it for {RESERVED_NAMES[name]}; "
            "choose another, e.g. laptop or phone"
        )
    return name


def default_instance_name() -> str:
    """A readable default for this device: its host name as a slug."""
    host = re.sub(r"[^a-z0-9_-]+", "-", gethostname().split(".")[0].lower()).strip("-_")
    return (host or "device")[:64]


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The vault holding *start* (or the cwd): the nearest folder with .mirrorfs/config.yaml."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise VaultNotFoundError(
        f"no mirrorfs vault here: none of {here} and its parents holds {CONFIG_FILE}. "
        "Run `mirrorfs init` or pass --vault PATH (or set MIRRORFS_VAULT)."
    )


def vault_root(path: str | os.PathLike | None = None) -> Path:
    """The vault folder of *path* (or $MIRRORFS_VAULT, or the one around the cwd), resolved."""
    if path is None and os.environ.get(ENV_VAULT):
        path = os.environ[ENV_VAULT]
    if path is None:
        return find_root()
    root = Path(path).expanduser()
    if not root.is_dir():
        raise VaultNotFoundError(f"vault folder {root} does not exist")
    root = root.resolve()
    if not (root / CONFIG_FILE).is_file():
        raise VaultNotFoundError(
            f"{root} is not a mirrorfs vault (no {CONFIG_FILE}); run `mirrorfs init {path}` to adopt it"
        )
    return root


def state_override() -> Path | None:
    """`MIRRORFS_STATE_DIR`, the state root a person or a test chose, or None."""
    override = os.environ.get(ENV_STATE_DIR)
    return Path(override).expanduser() if override else None


def state_key(vault_id: str, root: str | os.PathLike) -> str:
    """The name of one vault folder's state folder: `<vault_id>-<sha1(root)[:8]>`."""
    return f"{vault_id}-{sha1(os.fsencode(root)).hexdigest()[:8]}"


def recorded_root(folder: Path) -> Path | None:
    """The vault folder a state folder says it belongs to, or None."""
    try:
        return Path(os.fsdecode((folder / ROOT_FILE).read_bytes().rstrip(b"\n")))
    except OSError:
        return None


def guess_state_base() -> Path | None:
    """The state root (see state.base_dir) in the ordinary case, None when unsure.

    platformdirs decides for the full CLI; this is its answer for a Linux user
    with an absolute $HOME (and $XDG_STATE_HOME absolute or unset), computed
    without importing it.
    """
    override = state_override()
    if override is not None:
        return override
    if sys.platform != "linux" or os.environ.get("ANDROID_DATA"):
        return None
    xdg = os.environ.get("XDG_STATE_HOME", "")
    if xdg:
        return Path(xdg, APP) if xdg.startswith("/") else None
    home = os.environ.get("HOME", "")
    return Path(home.rstrip("/") + "/.local/state", APP) if home.startswith("/") else None


# A config.yaml whose vault id can be read without YAML: mirrorfs writes
# `vault_id: <hex>` as a top-level line; anything that could make that line
# mean something else (flow style, anchors, tags, several documents) -> None.
_ID_LINE = re.compile(rb"^vault_id:[ \t]*(['\"]?)([0-9a-f]{8,64})\1[ \t]*(?:#.*)?$", re.M)
_UNUSUAL = re.compile(rb"^(?:---|\.\.\.|%|[{\[&*!|>])|\t", re.M)
_PLAIN_STRING = re.compile(rb"^(?!0b[01]+$)(?=.*[a-f])")


def config_vault_id(root: Path) -> str | None:
    """The vault id in *root*'s config when it is plainly written, else None (ask YAML)."""
    try:
        data = (root / CONFIG_FILE).read_bytes()
    except OSError:
        return None
    data = data.removeprefix(b"\xef\xbb\xbf")
    found = _ID_LINE.findall(data)
    if len(found) != 1 or _UNUSUAL.search(data):
        return None
    quote, value = found[0]
    if not quote and not _PLAIN_STRING.match(value):
        return None  # YAML reads 01234567 or 0b101010 as a number
    return value.decode("ascii")


def existing_state_dir(root: Path, vault_id: str | None, base: Path | None) -> Path | None:
    """The state folder of the vault folder *root* when it already exists and records *root*."""
    if vault_id is None or base is None:
        return None
    folder = base / VAULTS_DIR / state_key(vault_id, root)
    return folder if recorded_root(folder) == root else None
