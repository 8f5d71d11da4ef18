"""One error hierarchy: everything mirrorfs raises on purpose is a MirrorfsError.

The CLI turns these into one line a person can act on; library users can catch
the base class or a named subclass.
"""


class MirrorfsError(Exception):
    """Base class of every error mirrorfs raises on purpose."""


class VaultNotFoundError(MirrorfsError):
    """No vault at the given path, or none found walking up from here."""


class VaultMissingError(VaultNotFoundError):
    """The vault folder vanished (moved, deleted, unmounted) while in use; nothing is written."""


class StorageError(MirrorfsError):
    """The operating system refused a read or write (disk full, permissions, read-only...)."""


class PathOutsideVaultError(MirrorfsError):
    """A path resolves to somewhere outside the vault root."""


class NotFoundError(MirrorfsError):
    """A note, session or message that was asked for does not exist."""


class ConflictError(MirrorfsError):
    """The file changed between our read and our write; nothing was written."""

    def __init__(self, path, message=None):
        self.path = path
        super().__init__(
            message
            or f"{path} changed on disk since it was read; nothing was written. "
            "Read it again and retry."
        )


class UnparseableNoteError(MirrorfsError):
    """A note's front matter is not valid YAML (or not a mapping); it is never rewritten."""

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: cannot parse front matter: {reason}")


class UnsafeEditError(MirrorfsError):
    """An edit would change more than it means to; nothing was written."""


class UnreadableNoteError(MirrorfsError):
    """A file is not UTF-8 text, is binary, too large or cannot be read."""

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InvalidValueError(MirrorfsError, ValueError):
    """An argument has a value mirrorfs does not accept (a role, a tier, a format...)."""


class CryptoError(MirrorfsError):
    """Base class of encryption errors; messages never contain plaintext."""


class WrongPassphraseError(CryptoError):
    """The passphrase does not open a section (or the section was tampered with)."""


class LockedError(CryptoError):
    """The operation needs the vault unlocked."""


class NoKeyError(LockedError):
    """The vault has no passphrase yet (its config holds no check value); a read must not set one."""

    def __init__(self, message=None):
        super().__init__(
            message
            or "this vault has no passphrase yet, so nothing in it is encrypted; nothing was changed "
            "(`mirrorfs key init`, or the first secret you write, sets one)"
        )


class EditInterruptedError(MirrorfsError):
    """A signal ended a private edit: the decrypted copy was removed and nothing was written."""


class SnapshotStoreError(MirrorfsError):
    """The store of last-seen versions cannot be used (misplaced or corrupt)."""


class KnownFilesError(MirrorfsError):
    """The watcher's store of known files cannot be used (it is derived and can be deleted)."""


class SearchIndexError(MirrorfsError):
    """The search index cannot answer (corrupt, busy beyond waiting, bad query)."""


class QueryError(MirrorfsError):
    """A search query is malformed."""


class MalformedSectionError(CryptoError):
    """An encrypted section or a ```secret block is damaged: unterminated, nested,
    truncated or not base64. Carries ``section_index``, ``line`` and ``reason``."""


class TamperedSectionError(CryptoError):
    """A section fails authentication although its key opens other sections with
    the same salt: it was changed or truncated after it was written."""


class KeyringUnavailableError(MirrorfsError):
    """The OS keyring cannot be used (the optional package is missing, no backend, it refused)."""


class ProviderError(MirrorfsError):
    """A language-model provider could not answer. Messages never contain an API key.

    Carries ``provider`` (its name), ``status`` (the HTTP status or None),
    ``error_type`` (the vendor's error type or code, e.g. ``overloaded_error``),
    ``request_id`` (the vendor's id, for a support ticket) and ``attempts`` (how
    many requests were sent).
    """

    def __init__(self, message, *, provider=None, status=None, error_type=None, request_id=None, attempts=1):
        self.provider = provider
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.attempts = attempts
        super().__init__(message)


class ProviderConfigError(ProviderError):
    """The provider configuration is incomplete or wrong: unknown provider or profile,
    no API key, a malformed providers.yaml or prices.yaml."""


class ProviderAuthError(ProviderError):
    """The provider refused the API key (401/403); the message names where the key came from."""


class SpendCapError(ProviderError):
    """The account's quota or credit is used up (``insufficient_quota``, a billing error); never retried."""


class ProviderRateLimitError(ProviderError):
    """The provider still answered 429 after every retry, or asked for a longer wait than we accept.
    ``retry_after`` is the wait it asked for, in seconds, when it said."""

    def __init__(self, message, *, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached or stayed overloaded/failing (connection, timeout, 5xx, 529)."""


class ProviderRequestError(ProviderError):
    """The provider rejected the request itself (bad parameters, unknown model, too large); not retried."""


class StreamInterruptedError(ProviderError):
    """A stream broke after it had produced text; it is not retried so nothing is said twice.

    ``partial_text`` is the text received so far and ``usage`` the usage known so
    far (a ``mirrorfs.llm.Usage``, estimated where the provider had not reported).
    """

    def __init__(self, message, *, partial_text="", usage=None, **kwargs):
        self.partial_text = partial_text
        self.usage = usage
        super().__init__(message, **kwargs)


class StaleEditError(ConflictError):
    """An edit named a sha256 the note no longer has; nothing was written.

    Carries ``expected`` (the sha256 the caller read), ``current`` (the note's
    sha256 now) and ``summary`` (what changed since, when this device knows)."""

    def __init__(self, path, expected, current, summary):
        self.expected = expected
        self.current = current
        self.summary = summary
        super().__init__(
            path,
            f"{path} changed since you read it (expected_sha256 {expected[:12]}…, it is now {current}); "
            f"nothing was written. {summary} Read it again and retry with the new sha256.",
        )


class WatchError(MirrorfsError):
    """Something the watcher could not see; reported to ``on_error``, never fatal."""

    def __init__(self, message: str, path: str | None = None, cause: BaseException | None = None):
        self.path = path
        self.cause = cause
        super().__init__(message)


class VaultUnavailableError(WatchError):
    """The vault root vanished or was replaced; deletions are held until it is back."""


class EventsLostError(WatchError):
    """The kernel dropped events (inotify queue overflow); a full rescan follows."""


class AlreadyWatchingError(MirrorfsError):
    """Another `mirrorfs watch` already serves this vault on this device."""


class ImportSourceError(MirrorfsError):
    """What was given to `mirrorfs import` cannot be read as that source at all; nothing was written."""


class ImportPasswordError(ImportSourceError):
    """The password for an encrypted source (an ActiveMirrorOS vault) is missing or does not open it."""


class EmbedderError(MirrorfsError):
    """An embedder cannot turn text into vectors; messages never contain an API key or the text."""


class EmbedderNotInstalledError(EmbedderError):
    """The local embedder's package (the `embed` extra) is not installed."""


class EmbedderRequestError(EmbedderError):
    """An embedding server could not be reached, refused the request or answered nonsense."""


class VectorStoreError(MirrorfsError):
    """The per-device vector store cannot be opened or is damaged (delete it: it is rebuilt)."""
class SyncEngineError(MirrorfsError):
    """git (or another sync engine mirrorfs sets up) is missing or refused what mirrorfs asked of it."""
