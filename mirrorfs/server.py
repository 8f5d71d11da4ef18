"""The running watcher answers queries over a Unix socket in the state folder.

A one-shot search pays for importing Whoosh and opening the index; the
watcher already has both, so `search.search` and `search.recall` ask it first
(the client and the protocol: `mirrorfs.watch_client`). The socket sits in the
per-device state folder (mode 0700) and is itself made 0600, so only this
user can talk to it.
"""

from __future__ import annotations

import json
import os
import socketserver
import threading
from pathlib import Path
from typing import Any, Callable

from mirrorfs import watch_client
from mirrorfs.errors import MirrorfsError
from mirrorfs.watch_client import SOCKET_NAME, ask  # noqa: F401  (callers of server.ask)

# Unix socket paths are limited to ~108 bytes; beyond that we cannot serve.
_MAX_SOCKET_PATH = watch_client.MAX_SOCKET_PATH

Handler = Callable[[dict], Any]


def socket_path(state_dir: Path) -> Path:
    return Path(watch_client.socket_path(state_dir))


# One request is one line of JSON; a query is a few hundred bytes. A client
# that sends more (or never ends its line) is refused, so it cannot hold a
# handler thread or the index for long.
MAX_REQUEST_BYTES = 64 * 1024
REQUEST_TIMEOUT = 10.0


class _RequestHandler(socketserver.StreamRequestHandler):
    timeout = REQUEST_TIMEOUT  # a client that stalls mid-request is dropped

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            except OSError:  # timed out or reset: nothing to answer
                return
            if not line:
                return
            if len(line) > MAX_REQUEST_BYTES and not line.endswith(b"\n"):
                self._reply({"ok": False, "type": "QueryError",
                             "error": f"request over {MAX_REQUEST_BYTES // 1024} KiB refused; queries are short"})
                return
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                op = request.get("op")
                handler = self.server.handlers.get(op)  # type: ignore[attr-defined]
                if handler is None:
                    raise MirrorfsError(f"unknown request {op!r}")
                reply = {"ok": True, "result": handler(request.get("args") or {})}
            except MirrorfsError as exc:
                reply = {"ok": False, "error": str(exc), "type": type(exc).__name__}
            except Exception as exc:  # the server must outlive one bad request
                reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "type": "MirrorfsError"}
            if not self._reply(reply):
                return

    def _reply(self, reply: dict) -> bool:
        try:
            self.wfile.write(json.dumps(reply, ensure_ascii=False, default=str).encode("utf-8") + b"\n")
            self.wfile.flush()
            return True
        except OSError:  # the client went away
            return False


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


def _private_folder(folder: Path) -> bool:
    """True when *folder* exists (or was made) 0700 and belongs to this user: no one else may connect."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


class QueryServer:
    """Serve *handlers* (op name -> function of the args dict) on the vault's socket."""

    def __init__(self, state_dir: Path, handlers: dict[str, Handler]):
        self.path = socket_path(state_dir)
        self.handlers = handlers
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start serving; False (and no server) when no private folder can hold the socket."""
        if len(os.fsencode(str(self.path))) > _MAX_SOCKET_PATH or not _private_folder(self.path.parent):
            return False
        if self.path.exists() or self.path.is_symlink():
            # A socket left by a watcher that died; the single-watcher lock proves it is stale.
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), _RequestHandler)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._server.handlers = self.handlers  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="mirrorfs-query-server", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
