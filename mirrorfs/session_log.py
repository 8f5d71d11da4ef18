"""The conversation an entrance is logging: this instance's current session in one process.

An MCP server (or any long-running caller) logs messages without managing
session ids: the first message creates a session in this instance's folder,
titled from that message unless a title is given, and later messages append
to it. Concurrent callers in the same process share the one current session:
creating it is serialised, appending is the library's append-only write path
(re-read and re-apply), so no message is lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mirrorfs.errors import InvalidValueError, NotFoundError
from mirrorfs.messages import Message, check_role
from mirrorfs.session import Session
from mirrorfs.slug import title_from_text

if TYPE_CHECKING:
    from mirrorfs.vault import Vault


@dataclass(frozen=True)
class Logged:
    """One appended message and the session it went to."""

    session: Session
    message: Message
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session.id,
            "path": self.session.relpath,
            "message_id": self.message.id,
            "role": self.message.role,
            "time": self.message.to_dict()["time"],
            "created": self.created,
        }


class SessionLog:
    """The current session of `vault.instance` for this process; see the module docstring."""

    def __init__(self, vault: "Vault"):
        self.vault = vault
        self._lock = threading.Lock()
        self._current: Session | None = None

    @property
    def current(self) -> Session | None:
        return self._current

    def _own(self, ref: str) -> Session:
        found = self.vault.sessions.load(ref)
        owner = found.meta.get("instance")
        if not found.ephemeral and found.path.parent != self.vault.sessions.folder_of(self.vault.instance):
            raise InvalidValueError(
                f"session {found.id} belongs to instance {owner or found.path.parent.name}; "
                "each instance writes only its own sessions (omit session to log to yours)"
            )
        return found

    def _session(self, ref: str | None, title: str | None, content: str) -> tuple[Session, bool]:
        with self._lock:
            if ref:
                self._current = self._own(ref)
                return self._current, False
            current = self._current
            if current is not None and current.path.is_file() and current.status == "open":
                return current, False
            name = (title or "").strip() or title_from_text(self.vault.readable(content))
            self._current = self.vault.sessions.create(name)
            return self._current, True

    def append(self, role: str, content: str, session: str | None = None, title: str | None = None,
               **metadata: Any) -> Logged:
        """Append one message to the current session (created on first use) or to *session*."""
        check_role(role)
        if not isinstance(content, str) or not content.strip():
            raise InvalidValueError("content must be the message text")
        try:
            target, created = self._session(session, title, content)
        except NotFoundError:
            raise NotFoundError(f"no session {session!r}; omit session to log to this instance's current one") from None
        message = target.add_message(role, content, **metadata)
        return Logged(target, message, created)
