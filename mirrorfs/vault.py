"""The vault: a folder of Markdown notes plus this device's private state for it."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mirrorfs import note as notes
from mirrorfs import recent, state, storage
from mirrorfs.clock import timestamp
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    LockedError,
    MirrorfsError,
    NotFoundError,
    PathOutsideVaultError,
    UnparseableNoteError,
    VaultNotFoundError,
)
from mirrorfs.instances import Instances
from mirrorfs.layout import CONFIG_FILE, FOLDERS, OWNED_TYPES, TRASH_DIR
from mirrorfs.memory import Memory
from mirrorfs.session import Sessions
from mirrorfs.slug import slugify

FORMAT_VERSION = 1
ENV_VAULT = "MIRRORFS_VAULT"
ENV_INSTANCE = "MIRRORFS_INSTANCE"
_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_instance_name(name: str) -> str:
    if not _INSTANCE_NAME.match(name or ""):
        raise InvalidValueError(
            f"invalid instance name {name!r}: use lowercase letters, digits, '-' and '_' "
            "(it names a folder), e.g. laptop or phone"
        )
    return name


def default_instance_name() -> str:
    """A readable default for this device: its host name as a slug."""
    host = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-_")
    return (host or "device")[:64]


def template(name: str) -> str:
    return resources.files("mirrorfs.templates").joinpath(name).read_text(encoding="utf-8")


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


class Vault:
    """A mirrorfs vault opened by one instance on this device."""

    def __init__(self, root: Path, config: dict, instance: str):
        self.root = root
        self.config = config
        self.id = str(config["vault_id"])
        self.instance = check_instance_name(instance)
        self.state_dir = state.vault_state_dir(self.id)
        self.store = storage.Store(self.state_dir / "locks", root=root)
        self._keyring = None
        self._salt: bytes | None = None
        self._own_keyring = False
        self.memory = Memory(self)
        self.sessions = Sessions(self)

    # -- opening -----------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike,
        name: str | None = None,
        instance: str | None = None,
    ) -> "Vault":
        """Create a vault in *path*, or adopt an existing folder without changing its files."""
        root = Path(path).expanduser()
        if root.exists() and not root.is_dir():
            raise VaultNotFoundError(f"{root} is a file, not a folder")
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        config_path = root / CONFIG_FILE
        created = timestamp()
        if not config_path.exists():
            config = {
                "format": FORMAT_VERSION,
                "vault_id": uuid.uuid4().hex,
                "name": name or "Mirror",
                "created": created,
            }
            config_path.parent.mkdir(exist_ok=True)
            storage.atomic_write(
                config_path,
                yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8"),
            )
        vault = cls.open(root, instance=instance, remember_instance=True)
        for folder in FOLDERS:
            (root / folder).mkdir(exist_ok=True)
        display = str(vault.config.get("name") or name or "Mirror")
        for filename, text in (
            ("SOUL.md", template("SOUL.md").replace("{name}", display).replace("{created}", created.isoformat())),
            ("README-mirrorfs.md", template("README-mirrorfs.md")),
        ):
            if not (root / filename).exists():
                vault.store.create(root / filename, text.encode("utf-8"))
        vault.instances.ensure_card()
        return vault

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        instance: str | None = None,
        remember_instance: bool = False,
    ) -> "Vault":
        """Open the vault at *path* (or MIRRORFS_VAULT, or the one around the cwd)."""
        if path is None and os.environ.get(ENV_VAULT):
            path = os.environ[ENV_VAULT]
        if path is None:
            root = find_root()
        else:
            root = Path(path).expanduser()
            if not root.is_dir():
                raise VaultNotFoundError(f"vault folder {root} does not exist")
            root = root.resolve()
            if not (root / CONFIG_FILE).is_file():
                raise VaultNotFoundError(
                    f"{root} is not a mirrorfs vault (no {CONFIG_FILE}); run `mirrorfs init {path}` to adopt it"
                )
        config = load_config(root)
        vault_state = state.vault_state_dir(str(config["vault_id"]))
        device_file = vault_state / "device.yaml"
        device = _load_yaml_file(device_file) or {}
        chosen = instance or os.environ.get(ENV_INSTANCE) or device.get("instance") or default_instance_name()
        check_instance_name(chosen)
        # The first instance name used on this device becomes its default.
        if device.get("instance") != chosen and (remember_instance or not device.get("instance")):
            device["instance"] = chosen
            storage.atomic_write(device_file, yaml.safe_dump(device).encode("utf-8"))
        return cls(root, config, chosen)

    # -- paths and notes ---------------------------------------------------

    def resolve(self, path: str | os.PathLike) -> Path:
        """An absolute path inside the vault; PathOutsideVaultError for anything else."""
        p = Path(path).expanduser()
        full = (p if p.is_absolute() else self.root / p).resolve()
        try:
            full.relative_to(self.root)
        except ValueError:
            raise PathOutsideVaultError(f"{path} is outside the vault {self.root}") from None
        return full

    def relpath(self, path: str | os.PathLike) -> str:
        """The vault-relative POSIX path of a file in the vault."""
        return self.resolve(path).relative_to(self.root).as_posix()

    def read(self, path: str | os.PathLike) -> tuple[notes.Note, storage.Snapshot]:
        """Parse a note and keep the snapshot its compare-and-swap write needs."""
        full = self.resolve(path)
        if not full.is_file():
            raise NotFoundError(f"no note at {self.relpath(full)}")
        data = notes.read_bytes(full)
        return notes.parse(data, self.relpath(full)), storage.Snapshot(full, data)

    def write(self, note: notes.Note, snapshot: storage.Snapshot) -> bool:
        """Write *note* over the file read as *snapshot* (compare-and-swap)."""
        return self.store.write(snapshot.path, note.render(), snapshot.sha)

    def stamp(self, note: notes.Note, **values: Any) -> notes.Note:
        """Set *values* plus `updated`/`updated_by` on notes mirrorfs owns."""
        if note.meta.get("type") in OWNED_TYPES:
            values = {**values, "updated": timestamp(), "updated_by": self.instance}
        return note.update(values)

    def edit(self, path: str | os.PathLike, change) -> notes.Note:
        """Apply *change* (Note -> Note) to a note of the vault under the one write path."""
        return self.edit_file(self.resolve(path), change)

    def edit_file(self, full: Path, change) -> notes.Note:
        """`edit` for an absolute path mirrorfs chose itself, in the vault or in this
        device's state folder (ephemeral sessions): same lock, same compare-and-swap."""
        try:
            label = self.relpath(full)
        except PathOutsideVaultError:
            label = full.name
        result: list[notes.Note] = []

        def apply(data: bytes | None) -> bytes:
            if data is None:
                raise NotFoundError(f"no note at {label}")
            parsed = notes.parse(data, label)
            parsed.check_editable()
            changed = change(parsed)
            result.append(changed)
            return changed.render() if changed is not parsed else data

        self.store.update(full, apply)
        return result[-1]

    def create_note(self, folder: str, title: str, data: bytes) -> str:
        """Write a new note as `<folder>/<slug of title>.md` (or `-2`, `-3`... when
        taken) without ever overwriting a file; returns its vault-relative path."""
        target = self.resolve(folder)
        base = slugify(title)
        for n in range(1, 1000):
            path = target / (f"{base}.md" if n == 1 else f"{base}-{n}.md")
            try:
                self.store.create(path, data)
                return self.relpath(path)
            except ConflictError:
                continue
        raise InvalidValueError(f"too many notes named {base} in {folder}")

    def meta_get(self, path: str | os.PathLike, key: str) -> Any:
        note, _ = self.read(path)
        if note.error:
            raise UnparseableNoteError(note.path, note.error)
        key = note._existing_key(key)
        if key not in note.meta:
            raise NotFoundError(f"{note.path} has no property {key!r}")
        return note.meta[key]

    def meta_set(self, path: str | os.PathLike, key: str, value: Any) -> bool:
        """Set one front-matter property; returns False when it already had that value."""
        return self._edit_property(path, lambda n: n.set(key, value))

    def meta_unset(self, path: str | os.PathLike, key: str) -> bool:
        """Remove one front-matter property; returns False when it was not set."""
        return self._edit_property(path, lambda n: n.unset(key))

    def _edit_property(self, path: str | os.PathLike, edit_one) -> bool:
        changed: list[bool] = []

        def change(n: notes.Note) -> notes.Note:
            updated = edit_one(n)
            changed.append(updated is not n)
            return self.stamp(updated) if updated is not n else n

        self.edit(path, change)
        return changed[-1]

    def trash(self, path: str | os.PathLike, purge: bool = False) -> Path | None:
        """Move a note to the vault's trash (or delete it with *purge*)."""
        _, snap = self.read(path)
        rel = self.relpath(snap.path)
        if purge:
            self.store.delete(snap.path, snap.sha)
            return None
        # The instance in the folder name lets reflections say who removed it.
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + f"-{self.instance}"
        target = self.root / TRASH_DIR / stamp / rel
        self.store.move(snap.path, target, snap.sha)
        return target

    def restore(self, trashed: str | os.PathLike) -> Path:
        """Put a trashed note back where it was."""
        full = self.resolve(trashed)
        trash_root = self.root / TRASH_DIR
        try:
            rel = full.relative_to(trash_root)
        except ValueError:
            raise InvalidValueError(f"{trashed} is not in the trash ({TRASH_DIR})") from None
        original = self.root / Path(*rel.parts[1:])
        snap = storage.read(full)
        if not snap.exists:
            raise NotFoundError(f"nothing in the trash at {trashed}")
        self.store.move(full, original, snap.sha)
        return original

    def trashed(self) -> list[Path]:
        root = self.root / TRASH_DIR
        return sorted(p for p in root.rglob("*.md")) if root.is_dir() else []

    # -- identity and instances -------------------------------------------

    @property
    def name(self) -> str:
        return str(self.config.get("name") or "Mirror")

    @property
    def soul(self) -> notes.Note:
        """SOUL.md, parsed."""
        return self.read("SOUL.md")[0]

    @property
    def instances(self) -> Instances:
        return Instances(self)

    # -- hooks filled in by the index and crypto layers -------------------

    def touched(self, relpath: str, action: str = "read") -> None:
        """Record that this device read or wrote a note (the working-memory log)."""
        recent.record_access(self, relpath, action)

    # -- search (mirrorfs.search does the work; see docs/search.md) -------

    def search(self, query: str, types=None, sessions: bool = True, limit: int | None = 20, **kwargs: Any):
        """Full-text search over notes and session messages."""
        from mirrorfs import search

        return search.search(self, query, types=types, sessions=sessions, limit=limit, **kwargs)

    def recall(self, query: str, limit: int = 10, **kwargs: Any):
        """Memory notes relevant to *query*, recent ones first among equals."""
        from mirrorfs import search

        return search.recall(self, query, limit=limit, **kwargs)

    def find_similar(self, text_or_path: str, limit: int = 10, threshold: float = 0.15, **kwargs: Any):
        """Notes sharing the most characteristic terms with a note or a text."""
        from mirrorfs import search

        return search.find_similar(self, text_or_path, limit=limit, threshold=threshold, **kwargs)

    def sessions_by_tag(self, tag: str):
        """Sessions tagged *tag* or a nested tag under it (from the index), newest first."""
        from mirrorfs import search

        return search.by_tag(self, tag)

    def sessions_by_category(self, category: str):
        """Sessions of *category* (from the index), newest first."""
        from mirrorfs import search

        return search.by_category(self, category)

    def recent(self, limit: int = 10, types=None):
        """The working memory: notes this device read or wrote lately."""
        from mirrorfs import search

        return search.recent(self, limit=limit, types=types)

    def reflections(self, since=None, mark_read: bool = False):
        """What other instances (and people) wrote since this instance last looked."""
        from mirrorfs.reflections import vault_reflections

        return vault_reflections(self, since=since, mark_read=mark_read)

    # -- the AI's context and conversations (mirrorfs.context, .conversation, .reflect) --

    def context(self, query: str | None = None, strategy: str = "recent", budget_tokens: int = 2000,
                session=None, include_locked: bool = False, **kwargs: Any):
        """The items a prompt is made of, within *budget_tokens*; see mirrorfs.context.build_context."""
        from mirrorfs.context import build_context

        return build_context(self, query=query, strategy=strategy, budget_tokens=budget_tokens, session=session,
                             include_locked=include_locked, **kwargs)

    def ask(self, text: str, **kwargs: Any):
        """Ask the AI in this instance's session and wait for the reply; see mirrorfs.conversation.ask."""
        from mirrorfs.conversation import ask

        return ask(self, text, **kwargs)

    def ask_stream(self, text: str, **kwargs: Any):
        """The reply as it streams (events); see mirrorfs.conversation.ask_stream."""
        from mirrorfs.conversation import ask_stream

        return ask_stream(self, text, **kwargs)

    def reflect(self, text: str, **kwargs: Any):
        """Reflect on *text* through reflective patterns; see mirrorfs.reflect.reflect."""
        from mirrorfs.reflect import reflect

        return reflect(self, text, **kwargs)

    def statistics(self) -> dict:
        """Counts over the vault (sessions, messages, per instance, type, kind, tag...)."""
        from mirrorfs import search

        return search.statistics(self)

    # -- encrypted sections (mirrorfs.crypto does the work; see docs/format.md) --

    @property
    def unlocked(self) -> bool:
        """True between unlock() and lock()."""
        return self._keyring is not None

    def unlock(self, passphrase) -> None:
        """Hold the vault's key in memory so secret sections can be read and written.

        The first unlock of a vault creates its salt and a check value in
        .mirrorfs/config.yaml (two lines appended, every other byte kept);
        later unlocks verify the passphrase against that check and raise
        WrongPassphraseError, changing nothing, when it does not open it.
        *passphrase* is a str or a crypto.Keyring (to share derived keys).
        """
        from mirrorfs import crypto

        keyring = passphrase if isinstance(passphrase, crypto.Keyring) else crypto.Keyring(passphrase)
        config_path = self.root / CONFIG_FILE
        found: dict[str, Any] = {}

        def change(data: bytes | None) -> bytes:
            if data is None:
                raise VaultNotFoundError(f"{config_path} disappeared")
            try:
                config = yaml.safe_load(data.decode("utf-8")) or {}
            except (UnicodeDecodeError, yaml.YAMLError) as exc:
                raise MirrorfsError(f"{config_path}: cannot read the vault config: {exc}") from None
            salt_value = config.get(crypto.CONFIG_SALT_KEY)
            check = config.get(crypto.CONFIG_CHECK_KEY)
            if check and not salt_value:
                raise crypto.CryptoError(f"{CONFIG_FILE} has {crypto.CONFIG_CHECK_KEY} but no {crypto.CONFIG_SALT_KEY}")
            salt = crypto.decode_salt(salt_value) if salt_value else crypto.new_vault_salt()
            found["salt"] = salt
            if check:
                crypto.verify_check(str(check), keyring)
                return data
            # First unlock: append (quoted, so YAML never reads base64 as anything else).
            text = data.decode("utf-8")
            newline = "\r\n" if "\r\n" in text else "\n"
            if text and not text.endswith("\n"):
                text += newline
            lines = [] if salt_value else [f'{crypto.CONFIG_SALT_KEY}: "{crypto.encode_salt(salt)}"']
            lines.append(f'{crypto.CONFIG_CHECK_KEY}: "{crypto.make_check(keyring, salt)}"')
            return (text + newline.join(lines) + newline).encode("utf-8")

        self.store.update(config_path, change)
        self.config = load_config(self.root)
        self._salt = found["salt"]
        self._keyring = keyring
        self._own_keyring = keyring is not passphrase

    def lock(self) -> None:
        """Forget the key (and the passphrase, when unlock() was given a str)."""
        keyring, self._keyring = self._keyring, None
        if keyring is not None and getattr(self, "_own_keyring", False):
            keyring.forget()

    @property
    def keyring(self):
        """The unlocked keyring; LockedError when locked."""
        if self._keyring is None:
            raise LockedError("the vault is locked: give --passphrase-file PATH or set MIRRORFS_PASSPHRASE")
        return self._keyring

    @property
    def salt(self) -> bytes:
        """The per-vault salt (only known once unlocked)."""
        self.keyring
        return self._salt

    def is_unlocked_for_sealing(self) -> bool:
        return self._keyring is not None

    def readable(self, text: str, errors: str = "placeholder") -> str:
        """*text* as a reader sees it: sections decrypted when unlocked, placeholders when locked.

        With errors="raise" a section that cannot be opened raises (see crypto.decrypt_text).
        """
        from mirrorfs import crypto

        if self._keyring is None:
            return crypto.lock_placeholder(text)
        return crypto.decrypt_text(text, self._keyring, errors=errors)

    def seal_text(self, text: str) -> str:
        """Encrypt the ```secret blocks of *text*; LockedError when it has any and the vault is locked."""
        from mirrorfs import crypto

        if not crypto.has_unsealed(text):
            return text
        if self._keyring is None:
            raise LockedError(
                "this text holds a ```secret block and the vault is locked; nothing was written "
                "(give --passphrase-file PATH or set MIRRORFS_PASSPHRASE)"
            )
        return crypto.seal_text(text, self._keyring, self._salt)

    def seal_body(self, body: str) -> str:
        """Encrypt a whole body as one section (needs the vault unlocked)."""
        from mirrorfs import crypto

        if self._keyring is None:
            raise LockedError("unlock the vault to write secret memories (--passphrase-file or MIRRORFS_PASSPHRASE)")
        newline = "\r\n" if "\r\n" in body else "\n"
        plaintext = body.strip("\r\n")
        if not plaintext.strip():
            raise InvalidValueError("a secret needs some text")
        return crypto.encrypt_section(plaintext, self._keyring, salt=self._salt) + newline

    def remember(self, text: str, **kwargs: Any):
        """Write a new memory note; see Memory.add."""
        return self.memory.add(text, **kwargs)

    def __repr__(self) -> str:
        return f"<Vault {self.root} instance={self.instance}>"


def load_config(root: Path) -> dict:
    path = root / CONFIG_FILE
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MirrorfsError(f"{path}: cannot read the vault config: {exc}") from None
    if not isinstance(config, dict) or not config.get("vault_id"):
        raise MirrorfsError(f"{path}: the vault config has no vault_id")
    fmt = config.get("format", FORMAT_VERSION)
    if isinstance(fmt, int) and fmt > FORMAT_VERSION:
        raise MirrorfsError(
            f"{path}: vault format {fmt} is newer than this mirrorfs understands ({FORMAT_VERSION}); upgrade mirrorfs"
        )
    return config


def _load_yaml_file(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError):
        return None
