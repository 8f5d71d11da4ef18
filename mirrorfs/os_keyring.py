"""The OS keyring, through the optional ``keyring`` package, for secrets that stay on this device.

Every function copes with the package missing or having no usable backend:
reading gives None, storing raises `KeyringUnavailableError` saying why, never
with the secret in the message. (mirrorfs.passphrase keeps vault passphrases
under the service ``mirrorfs``; provider API keys live under
``mirrorfs-provider``.)
"""

from __future__ import annotations

from mirrorfs.errors import KeyringUnavailableError

__all__ = ["available", "get", "store", "forget"]


def available() -> bool:
    """True when the optional ``keyring`` package can be imported."""
    try:
        import keyring  # noqa: F401
    except ImportError:
        return False
    return True


def get(service: str, account: str) -> str | None:
    """The secret stored for (``service``, ``account``), or None (no package, no backend, none stored)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        value = keyring.get_password(service, account)
    except (KeyringError, RuntimeError):
        return None
    return value or None


def store(service: str, account: str, secret: str) -> None:
    """Keep ``secret`` for (``service``, ``account``); raises KeyringUnavailableError when impossible."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        raise KeyringUnavailableError("the OS keyring needs the optional package: pip install 'mirrorfs[keyring]'") \
            from None
    try:
        keyring.set_password(service, account, secret)
    except (KeyringError, RuntimeError) as exc:
        raise KeyringUnavailableError(f"the OS keyring refused to store the secret: {type(exc).__name__}") from None


def forget(service: str, account: str) -> bool:
    """Remove the secret of (``service``, ``account``); True if one was removed."""
    try:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError
    except ImportError:
        return False
    try:
        keyring.delete_password(service, account)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError) as exc:
        raise KeyringUnavailableError(f"the OS keyring refused to forget the secret: {type(exc).__name__}") \
            from None
    return True
