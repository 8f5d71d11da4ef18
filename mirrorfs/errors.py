"""One error hierarchy: everything mirrorfs raises on purpose is a MirrorfsError.

The CLI turns these into one line a person can act on; library users can catch
the base class or a named subclass.
"""


class MirrorfsError(Exception):
    """Base class of every error mirrorfs raises on purpose."""


class VaultNotFoundError(MirrorfsError):
    """No vault at the given path, or none found walking up from here."""


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


class EmbedderError(MirrorfsError):
    """An embedder cannot turn text into vectors; messages never contain an API key or the text."""


class EmbedderNotInstalledError(EmbedderError):
    """The local embedder's package (the `embed` extra) is not installed."""


class EmbedderRequestError(EmbedderError):
    """An embedding server could not be reached, refused the request or answered nonsense."""


class VectorStoreError(MirrorfsError):
    """The per-device vector store cannot be opened or is damaged (delete it: it is rebuilt)."""
