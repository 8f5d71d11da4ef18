"""The vault: a folder of Markdown notes plus this device's private state for it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import yaml

from mirrorfs import locate, recent, starter, state, storage
from mirrorfs import note as notes
from mirrorfs import trash as trash_bin
from mirrorfs.clock import timestamp
from mirrorfs.config import (  # the config is mirrorfs.config's
    FORMAT_VERSION,
    load_config,
)
from mirrorfs.errors import (
    ConflictError,
    InvalidValueError,
    LockedError,
    NotFoundError,
    PathOutsideVaultError,
    UnparseableNoteError,
    UnreadableNoteError,
    VaultNotFoundError,
)
from mirrorfs.ignore import is_ignored
from mirrorfs.instances import Instances
from mirrorfs.layout import CONFIG_FILE, FOLDERS, OWNED_TYPES
from mirrorfs.layout import (
    TRASH_DIR as TRASH_DIR,  # where tests and callers look for it
)
from mirrorfs.memory import Memory
from mirrorfs.session import Sessions
from mirrorfs.slug import slugify

# Resolving which vault and which instance is mirrorfs.locate's (the lean console shares it).
ENV_VAULT, ENV_INSTANCE, RESERVED_NAMES = locate.ENV_VAULT, locate.ENV_INSTANCE, locate.RESERVED_NAMES
check_instance_name = locate.check_instance_name
default_instance_name = locate.default_instance_name
find_root = locate.find_root


class Vault:
    """A mirrorfs vault opened by one instance on this device."""

    def __init__(self, root: Path, config: dict, instance: str, announce: bool = False):
        self.root = root
        self.config = config
        self.id = str(config["vault_id"])
        self.instance = check_instance_name(instance)
        self.state_dir = state.vault_state_dir(self.id, root)
        self.store = storage.Store(self.state_dir / "locks", root=root,
                                   on_write=self._announce if announce else None)
        self._announced = False
        self._device: dict | None = None  # this device's settings while it has no default instance
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
        for folder in root.resolve().parents:
            if (folder / CONFIG_FILE).is_file():
                # Its notes would be indexed, merged and reflected twice.
                raise InvalidValueError(
                    f"{root} is inside the vault {folder}: a vault inside a vault is not supported; "
                    "choose a folder outside it")
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
        for filename, text in starter.starter_files(display, created):
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
        announce: bool = False,
    ) -> "Vault":
        """Open the vault at *path* (or MIRRORFS_VAULT, or the one around the cwd).

        With *announce*, the instance's card is created before its first write
        (as the CLI does: a command that writes makes the instance present, a
        listing never does).
        """
        root = locate.vault_root(path)
        config = load_config(root)
        vault_state = state.vault_state_dir(str(config["vault_id"]), root)
        device_file = vault_state / locate.DEVICE_FILE
        device = _load_yaml_file(device_file) or {}
        chosen = instance or os.environ.get(ENV_INSTANCE) or device.get("instance") or default_instance_name()
        check_instance_name(chosen)
        # The instance named at `init` is this device's default; on a device
        # that never ran init (a clone, a synced copy), the first instance a
        # person writes as (see `_announce`). A listing with --instance, or an
        # MCP client, never changes it.
        if remember_instance and device.get("instance") != chosen:
            _remember_default(device_file, device, chosen)
        vault = cls(root, config, chosen, announce=announce)
        vault._device = device if not device.get("instance") else None
        return vault

    def _announce(self, path: Path) -> None:
        """Before this instance first writes to the vault, make sure it has a card.

        A card is presence: reading (listing sessions, searching) never makes one.
        """
        if self._announced:
            return
        self._announced = True
        if self._device is not None:
            _remember_default(self.state_dir / locate.DEVICE_FILE, self._device, self.instance)
        if path != self.instances.card_path():
            self.instances.ensure_card()

    # -- paths and notes ---------------------------------------------------

    def resolve(self, path: str | os.PathLike) -> Path:
        """An absolute path inside the vault; PathOutsideVaultError for anything else."""
        p = Path(path).expanduser()
        try:
            full = (p if p.is_absolute() else self.root / p).resolve()
        except (RuntimeError, OSError):  # a link that leads to itself, a name too long to resolve
            raise UnreadableNoteError(str(path), "a symbolic link loop: fix or remove the link") from None
        try:
            full.relative_to(self.root)
        except ValueError:
            raise PathOutsideVaultError(f"{path} is outside the vault {self.root}") from None
        return full

    def relpath(self, path: str | os.PathLike) -> str:
        """The vault-relative POSIX path of a file in the vault."""
        return self.resolve(path).relative_to(self.root).as_posix()

    def note_file(self, path: str | os.PathLike) -> Path:
        """The absolute path of a Markdown note of the vault: never a tool's file
        (`.mirrorfs/`, `.obsidian/`, `.git/`...), a temporary, JSON or a canvas."""
        full = self.resolve(path)
        rel = full.relative_to(self.root).as_posix()
        if is_ignored(rel):
            raise InvalidValueError(
                f"{rel} belongs to mirrorfs or another tool, not to your notes; nothing was changed")
        if full.suffix != ".md":
            raise InvalidValueError(
                f"{rel} is not a Markdown note (.md): mirrorfs reads and edits notes only; nothing was changed")
        return full

    def read(self, path: str | os.PathLike) -> tuple[notes.Note, storage.Snapshot]:
        """Parse a note and keep the snapshot its compare-and-swap write needs."""
        full = self.note_file(path)
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
        return self.edit_file(self.note_file(path), change)

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
        key = note.existing_key(key)
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
        if purge:
            self.store.delete(snap.path, snap.sha)
            return None
        # The instance in the entry's name lets reflections say who removed it.
        return self.root / trash_bin.move(self, self.relpath(snap.path), snap.sha, instance=self.instance)

    def restore(self, trashed: str | os.PathLike) -> Path:
        """Put a trashed note back where it was."""
        return trash_bin.restore(self, trashed)

    def trashed(self) -> list[Path]:
        return trash_bin.entries(self)

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

    def has_embeddings(self) -> bool:
        """True when this device holds vectors for the vault (`semantic` recall is possible).

        A cheap look for the store's file first: a vault that never had
        embeddings does not pay for importing numpy and the model.
        """
        if not state.vectors_file(self.state_dir).is_file():
            return False
        from mirrorfs import semantic

        return semantic.has_embeddings(self)

    def embed(self, embedder: str | None = None, progress=None):
        """Bring this device's embeddings up to date (build them the first time): an UpdateReport.

        Only notes whose stat changed are read, only chunks whose text changed are
        embedded; a running watcher keeps them fresh from then on.
        """
        from mirrorfs import semantic

        return semantic.update(self, None, embedder, progress)

    def search(self, query: str, types=None, sessions: bool = True, limit: int | None = 20,
               mode: str | None = None, min_score: float | None = None, **kwargs: Any):
        """Search notes and session messages: `keyword` (the query syntax of docs/search.md),
        `semantic` (by meaning) or `hybrid` (both; the default once embeddings exist).

        A running watcher answers all three (it holds the model loaded); else this process does.
        """
        from mirrorfs import search
        from mirrorfs.results import SemanticHit

        if search.plain_keyword(mode, min_score, state.vectors_file(self.state_dir).is_file):
            return search.search(self, query, types=types, sessions=sessions, limit=limit, **kwargs)
        search.check_query(query)
        args = dict(query=query, mode=mode, limit=limit or 20, types=list(types) if types else None,
                    min_score=min_score, sessions=sessions, **kwargs)
        served = search.ask_watcher(self, "semantic", args, SemanticHit)
        if served is not None:
            return served
        from mirrorfs import semantic

        return semantic.search(self, **args)

    def recall(self, query: str, limit: int = 10, **kwargs: Any):
        """Memory notes relevant to *query*, recent ones first among equals (hybrid once embeddings exist)."""
        if self.has_embeddings():
            from mirrorfs import semantic

            return semantic.recall(self, query, limit=limit, half_life_days=kwargs.get("half_life_days", 30.0))
        from mirrorfs import search

        return search.recall(self, query, limit=limit, **kwargs)

    def find_similar(self, text_or_path: str, limit: int = 10, threshold: float = 0.15,
                     method: str | None = None, **kwargs: Any):
        """Notes like a note or a text: by shared key terms (`keyword`), by meaning
        (`semantic`) or both (`hybrid`, the default once embeddings exist)."""
        if method == "keyword" or method is None and not self.has_embeddings():
            from mirrorfs import search

            return search.find_similar(self, text_or_path, limit=limit, threshold=threshold, **kwargs)
        from mirrorfs import semantic

        return semantic.similar(self, text_or_path, limit=limit, method=method or "hybrid",
                                sessions=kwargs.get("sessions", False))

    def set_conflict_strategy(self, strategy: str) -> str:
        """What the watcher does with sync conflict copies: `merge` (the default), `latest`
        (keep the newer side, the other to the trash) or `manual` (merge nothing, list them all)."""
        from mirrorfs import conflict_strategy

        value = conflict_strategy.set_strategy(self.store, self.root, strategy)
        self.config = load_config(self.root)
        return value

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
        """What other instances (and people) wrote since this instance last looked (or since *since*).

        A read-only look since a time is answered by a running watcher when there is
        one: it knows which notes changed lately without a `stat` of every note.
        """
        from mirrorfs.reflections import Reflection, parse_since, vault_reflections

        if since is not None and not mark_read:
            from mirrorfs import watch_client

            cutoff = parse_since(since)
            try:
                reply = watch_client.ask(self.state_dir, "reflections",
                                         {"instance": self.instance, "since": cutoff.isoformat()})
            except OSError:  # none listens, or it died mid-answer: look here
                pass
            else:
                return [Reflection.from_dict(item) for item in reply["items"]]
            since = cutoff
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

    def unlock(self, passphrase, *, create: bool = True) -> None:
        """Hold the vault's key in memory so secret sections can be read and written.

        A vault without a key yet gets this passphrase as its key (a salt and a
        check value added to .mirrorfs/config.yaml, every other byte kept) when
        *create* is true; with *create* false it raises NoKeyError and writes
        nothing. Later unlocks verify the passphrase against the check and raise
        WrongPassphraseError, changing nothing, when it does not open it.
        *passphrase* is a str or a crypto.Keyring (to share derived keys).
        """
        from mirrorfs import config, keys

        keyring = passphrase if isinstance(passphrase, keys.Keyring) else keys.Keyring(passphrase)
        own = keyring is not passphrase
        found: list[bytes] = []

        def change(current: dict) -> dict:
            salt, added = keys.vault_key(current, keyring, create=create)
            found.append(salt)
            return added

        try:
            self.config = config.edit_config(self.store, self.root, change)
        except BaseException:
            if own:
                keyring.forget()
            raise
        self.lock()
        self._salt = found[-1]
        self._keyring = keyring
        self._own_keyring = own

    def lock(self) -> None:
        """Forget the key (and the passphrase, when unlock() was given a str)."""
        keyring, self._keyring = self._keyring, None
        if keyring is not None and self._own_keyring:
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
        from mirrorfs import secret_blocks

        if not secret_blocks.has_unsealed(text):
            return text
        if self._keyring is None:
            raise LockedError(
                "this text holds a ```secret block and the vault is locked; nothing was written "
                "(give --passphrase-file PATH or set MIRRORFS_PASSPHRASE)"
            )
        return secret_blocks.seal_text(text, self._keyring, self._salt)

    def seal_body(self, body: str) -> str:
        """Encrypt a whole body as one section (needs the vault unlocked)."""
        from mirrorfs import secret_blocks

        if self._keyring is None:
            raise LockedError("unlock the vault to write secret memories (--passphrase-file or MIRRORFS_PASSPHRASE)")
        return secret_blocks.seal_body(body, self._keyring, self._salt)

    def remember(self, text: str, **kwargs: Any):
        """Write a new memory note; see Memory.add."""
        return self.memory.add(text, **kwargs)

    def __repr__(self) -> str:
        return f"<Vault {self.root} instance={self.instance}>"


def _remember_default(device_file: Path, device: dict, instance: str) -> None:
    device["instance"] = instance
    storage.atomic_write(device_file, yaml.safe_dump(device).encode("utf-8"))


def _load_yaml_file(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError):
        return None
