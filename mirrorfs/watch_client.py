"""Asking the running watcher (`mirrorfs watch`) over its Unix socket.

The watcher keeps the index open and fresh, so a search it answers costs a few
milliseconds instead of importing Whoosh and checking the vault. The protocol
is one JSON object per line each way: `{"op": "search", "args": {...}}` ->
`{"ok": true, "result": ...}` or `{"ok": false, "error": "...", "type": "QueryError"}`.

This module needs only the standard library (`_socket`, `json`, `os`), so a lean
client can use it without importing the rest of mirrorfs.
"""

from __future__ import annotations

import _socket  # socket.socket minus socket.py's enum tables (3 ms, a twentieth of a lean search)
import json
import os
from typing import Any

from mirrorfs.locate import sha1

SOCKET_NAME = "watch.sock"
CLIENT_TIMEOUT = 30.0


# Unix socket paths are limited to about 108 bytes.
MAX_SOCKET_PATH = 100


def socket_path(state_dir: str | os.PathLike) -> str:
    """Where the watcher of the vault with this state folder listens.

    In the state folder itself when the path is short enough for a socket;
    otherwise in this user's private runtime folder, under a name derived
    from the state folder (so server and clients agree without asking).
    """
    path = os.path.join(os.fspath(state_dir), SOCKET_NAME)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    return os.path.join(runtime_dir(), sha1(os.fsencode(state_dir)).hexdigest()[:16] + ".sock")


def runtime_dir() -> str:
    """This user's folder for sockets: $XDG_RUNTIME_DIR/mirrorfs, else /tmp/mirrorfs-<uid>."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return os.path.join(base, "mirrorfs")
    return os.path.join("/tmp", f"mirrorfs-{os.getuid()}")


def request(state_dir: str | os.PathLike, op: str, args: dict | None = None,
            timeout: float = CLIENT_TIMEOUT) -> dict:
    """The watcher's raw reply to one request.

    Raises ConnectionError when no watcher listens (the caller then answers
    itself).
    """
    path = socket_path(state_dir)
    if not os.path.exists(path):
        raise ConnectionError("no watcher socket")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            raise ConnectionError(str(exc)) from None
        sock.sendall(json.dumps({"op": op, "args": args or {}}).encode("utf-8") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the watcher closed the connection")
            data += chunk
    finally:
        sock.close()
    return json.loads(data)


def ask(state_dir: str | os.PathLike, op: str, args: dict | None = None,
        timeout: float = CLIENT_TIMEOUT) -> Any:
    """The result of one request to the running watcher.

    Raises ConnectionError when no watcher listens; re-raises the watcher's
    MirrorfsError subclasses as such, with the watcher's message.
    """
    reply = request(state_dir, op, args, timeout)
    if reply.get("ok"):
        return reply.get("result")
    raise _error(reply)


def _error(reply: dict) -> Exception:
    # Only a failed request needs the error classes; the lean path never gets here.
    from mirrorfs import errors

    cls = getattr(errors, reply.get("type") or "", None)
    if not (isinstance(cls, type) and issubclass(cls, errors.MirrorfsError)):
        cls = errors.MirrorfsError
    # The watcher's message is already final: build the same class around it
    # without its own __init__ (ConflictError(path) would rephrase it).
    exc = cls.__new__(cls)
    errors.MirrorfsError.__init__(exc, reply.get("error"))
    return exc
