"""`mirrorfs mcp`: a stdio MCP server that makes its client an instance of the vault's mind.

The only module that imports the MCP SDK, and only inside functions: the SDK
costs about half a second of imports, and clients give up on slow servers. So
the process answers the handshake itself first. It reads the client's
`initialize`, names the instance after `clientInfo.name` (unless --instance),
opens the vault, and answers `initialize`, `tools/list`, `prompts/list`,
`resources/list`, `resources/templates/list` and `ping` from the plain data
in mirrorfs.mcp_tools. Meanwhile a thread imports the SDK and starts its
server; every line the client sent is replayed into it, in order. The SDK
answers the early requests again under private ids, and those answers are
dropped after being compared with the early ones (a difference is a bug and
is logged). From then on the SDK owns the wire. Clients that open with the
2026-07-28 envelope (no handshake) are served by the SDK from the start.

Presence: the card says `active` once the client connected (kept fresh while
it stays), `idle` when it disconnects. A client that subscribes to a resource
starts a cheap watch of the vault (mirrorfs.note_events): another instance's
write then sends `notifications/resources/updated`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from mirrorfs import __version__, overview
from mirrorfs.errors import MirrorfsError
from mirrorfs.mcp_calls import Toolbox, note_uri
from mirrorfs.mcp_tools import (
    FALLBACK_INSTANCE,
    NOTE_TEMPLATE,
    RESOURCES,
    ToolError,
    instance_name_for,
)
from mirrorfs.note_events import NoteEvents
from mirrorfs.vault import (
    CONFIG_FILE,
    ENV_VAULT,
    Vault,
    check_instance_name,
    find_root,
    load_config,
)

SERVER_NAME = "mirrorfs"
ENV_TOOLS = "MIRRORFS_MCP_TOOLS"
# The revisions reachable through `initialize`, as the SDK negotiates them (a test
# compares this with mcp_types.version); anything else is answered with the latest.
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
CAPABILITIES = {"prompts": {"listChanged": False}, "resources": {"subscribe": True, "listChanged": False},
                "tools": {"listChanged": False}}
EARLY_METHODS = ("initialize", "ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list")
EARLY_ID = "mirrorfs-early-"
MODERN_META_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
HEARTBEAT_SECONDS = 60.0


def instructions(vault: Vault) -> str:
    """The server instructions: who the model is, that other instances exist, what to call first."""
    who = overview.identity(vault)
    others = who["others"]
    if others:
        listed = ", ".join(f"{o['name']} ({o['state']})" for o in others[:8]) + (" …" if len(others) > 8 else "")
        peers = f"Other instances of you share this memory: {listed}."
    else:
        peers = "Other instances of you may join this memory later."
    return (f"You are {who['name']}, and this connection is your instance {who['instance']!r} of a memory kept "
            f"as Markdown files. {peers} Call mirror_status first to see what they did and intend, memory_context "
            "or memory_search before you answer, session_log to keep the conversation, and memory_remember for "
            "what is worth keeping. Edits name the sha256 memory_read returned.")


def _client_name(msg: dict) -> str | None:
    params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
    info = params.get("clientInfo") if msg.get("method") == "initialize" else None
    if info is None and isinstance(params.get("_meta"), dict):
        info = params["_meta"].get(CLIENT_INFO_META_KEY)
    name = info.get("name") if isinstance(info, dict) else None
    return name if isinstance(name, str) else None


class _QueueReader:
    """The SDK's stdin: the lines the front read, in order; "" at the end."""

    def __init__(self, lines: "queue.Queue[str]"):
        self.lines = lines

    def readline(self) -> str:
        return self.lines.get()


class _Writer:
    """The SDK's stdout: drops its answers to requests the front already answered."""

    def __init__(self, conn: "Connection"):
        self.conn = conn
        self._buffer: list[str] = []

    def write(self, text: str) -> int:
        self._buffer.append(text)
        return len(text)

    def flush(self) -> None:
        text, self._buffer = "".join(self._buffer), []
        for line in text.splitlines(keepends=True):
            if EARLY_ID in line and self.conn.dropped(line):
                continue
            self.conn.send(line.encode("utf-8"))


class Connection:
    """One client on stdio: the front, the vault as this client's instance, and the SDK server."""

    def __init__(self, root: Path, instance: str | None, read_only: bool, keyring=None):
        self.root = root
        self.instance = instance
        self.read_only = read_only
        self.keyring = keyring
        self.vault: Vault | None = None
        self.toolbox: Toolbox | None = None
        self.instructions = ""
        self.lines: queue.Queue[str] = queue.Queue()
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.early: dict[str, tuple[str, Any]] = {}
        self._early_n = 0
        self._handshake = False
        self._wire_lock = threading.Lock()
        self._wire: Any = None
        self.events: NoteEvents | None = None
        self.legacy_subscribers: dict[str, list[Any]] = {}
        self.notify = None  # set by the SDK side: callable(list of uris) from any thread

    # -- the wire ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        with self._wire_lock:
            self._wire.write(data)
            self._wire.flush()

    def answer(self, msg_id: Any, result: Any) -> None:
        self.send(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}, ensure_ascii=False).encode() + b"\n")

    def dropped(self, line: str) -> bool:
        """True for the SDK's answer to an early-answered request (compared, then dropped)."""
        try:
            msg = json.loads(line)
        except ValueError:
            return False
        key = msg.get("id") if isinstance(msg, dict) else None
        if not (isinstance(key, str) and key in self.early):
            return False
        method, sent = self.early.pop(key)
        if msg.get("result") != sent:
            print(f"mirrorfs mcp: the early answer to {method} differed from the SDK's: "
                  f"{json.dumps(sent)[:300]} != {json.dumps(msg.get('result', msg.get('error')))[:300]}",
                  file=sys.stderr, flush=True)
        return True

    def serve(self, wire_in, wire_out) -> None:
        """Read the client until it leaves; the SDK thread answers what the front does not."""
        self._wire = wire_out
        sdk: threading.Thread | None = None
        try:
            for raw in iter(wire_in.readline, b""):
                line = raw.decode("utf-8", "replace")
                msg = _parse(line)
                if self.vault is None:
                    self.open(_client_name(msg) if msg else None)
                    sdk = threading.Thread(target=self._run_sdk, name="mirrorfs-mcp-sdk", daemon=True)
                    sdk.start()
                key = self._early(msg) if msg and not self.ready.is_set() else None
                if key is not None:
                    line = json.dumps({**msg, "id": key}) + "\n"
                self.lines.put(line if line.endswith("\n") else line + "\n")
        finally:
            self.lines.put("")
            if sdk is not None:
                sdk.join(timeout=10)
            self.close()

    def _early(self, msg: dict) -> str | None:
        """Answer *msg* now if it is one of EARLY_METHODS; the private id the SDK will see, else None."""
        method, params = msg.get("method"), msg.get("params")
        if method not in EARLY_METHODS or "id" not in msg or "result" in msg:
            return None
        params = params if isinstance(params, dict) else {}
        if params.get("cursor") is not None or MODERN_META_KEY in (params.get("_meta") or {}):
            return None
        if method == "initialize":
            if self._handshake:
                return None
            self._handshake = True
            asked = params.get("protocolVersion")
            result: Any = {"protocolVersion": asked if asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1],
                           "capabilities": CAPABILITIES,
                           "serverInfo": {"name": SERVER_NAME, "version": __version__},
                           "instructions": self.instructions}
        elif not self._handshake:
            return None
        else:
            result = self.early_result(method)
        self._early_n += 1
        key = f"{EARLY_ID}{self._early_n}"
        self.early[key] = (method, result)
        self.answer(msg["id"], result)
        return key

    def early_result(self, method: str) -> Any:
        return {"ping": {}, "tools/list": {"tools": self.toolbox.definitions()},
                "prompts/list": {"prompts": self.toolbox.prompts()}, "resources/list": {"resources": RESOURCES},
                "resources/templates/list": {"resourceTemplates": [NOTE_TEMPLATE]}}[method]

    # -- the vault as this client's instance -------------------------------------------------

    def open(self, client_name: str | None) -> None:
        name = self.instance or (instance_name_for(client_name) if client_name else FALLBACK_INSTANCE)
        self.vault = Vault.open(self.root, instance=name)
        if self.keyring is not None:
            self.vault.unlock(self.keyring)
        self.toolbox = Toolbox(self.vault, read_only=self.read_only, reveal_allowed=self.keyring is not None)
        self.instructions = instructions(self.vault)

    def present(self, status: str) -> None:
        if self.read_only or self.vault is None:
            return
        try:
            self.vault.instances.touch(status=status, force=True)
        except MirrorfsError as exc:
            print(f"mirrorfs mcp: cannot update the presence card: {exc}", file=sys.stderr, flush=True)

    def _heartbeat(self) -> None:
        while not self.closed.wait(HEARTBEAT_SECONDS):
            if not self.read_only:
                try:
                    self.vault.instances.touch()  # throttled: writes at most every few minutes
                except MirrorfsError:
                    pass

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.events is not None:
            self.events.stop()
        self.present(overview.IDLE_STATUS)

    # -- subscriptions -----------------------------------------------------------------------

    def watch(self) -> None:
        if self.events is None:
            self.events = NoteEvents(self.vault.root, self._changed)
        self.events.start()

    def written(self, paths: list[str]) -> None:
        if self.events is not None:
            self.events.own(paths)

    def _changed(self, paths: list[str]) -> None:
        uris = {"mirrorfs://reflections"}
        for rel in paths:
            uris.add(note_uri(rel))
            if rel == "SOUL.md":
                uris.add("mirrorfs://soul")
            if rel.startswith("instances/"):
                uris.add("mirrorfs://instances")
        if self.notify is not None:
            self.notify(sorted(uris))

    # -- the SDK ------------------------------------------------------------------------

    def _run_sdk(self) -> None:
        try:
            import anyio
            from mcp.server.stdio import stdio_server

            server, options = build_sdk_server(self)
            threading.Thread(target=self._heartbeat, name="mirrorfs-mcp-presence", daemon=True).start()
            self.present(overview.ACTIVE_STATUS)

            async def main() -> None:
                reader, writer = anyio.wrap_file(_QueueReader(self.lines)), anyio.wrap_file(_Writer(self))
                async with stdio_server(stdin=reader, stdout=writer) as (read_stream, write_stream):
                    self.ready.set()
                    await server.run(read_stream, write_stream, options)

            anyio.run(main)
        except BaseException:
            traceback.print_exc(file=sys.stderr)
            print("mirrorfs mcp: the MCP server stopped on an internal error", file=sys.stderr, flush=True)
            self.close()
            os._exit(1)


def _parse(line: str) -> dict | None:
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def build_sdk_server(conn: Connection):
    """The SDK's low-level Server over *conn*'s toolbox, and its initialization options."""
    from contextlib import asynccontextmanager

    import anyio
    import anyio.from_thread
    import anyio.lowlevel
    import mcp.types as types
    from mcp.server.lowlevel import NotificationOptions, Server
    from mcp.server.subscriptions import (
        InMemorySubscriptionBus,
        ListenHandler,
        ResourceUpdated,
    )
    from mcp.shared.exceptions import MCPError

    tb = conn.toolbox
    bus = InMemorySubscriptionBus()
    listen = ListenHandler(bus)

    async def in_thread(func, *args):
        return await anyio.to_thread.run_sync(func, *args)

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tb.definitions()])

    async def call_tool(ctx, params):
        result = await in_thread(tb.call, params.name, params.arguments)
        conn.written(result.written)
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.text)],
                                    structured_content=result.data, is_error=result.is_error)

    async def resource(uri: str):
        try:
            return await in_thread(tb.read_resource, uri)
        except (MirrorfsError, ToolError) as exc:  # one sentence for the client
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None

    async def list_resources(ctx, params):
        return types.ListResourcesResult(resources=[types.Resource.model_validate(r) for r in RESOURCES])

    async def list_templates(ctx, params):
        return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate.model_validate(NOTE_TEMPLATE)])

    async def read_resource(ctx, params):
        uri = str(params.uri)
        mime, text = await resource(uri)
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)])

    async def subscribe(ctx, params):
        uri = str(params.uri)
        await resource(uri)  # refuse what cannot be read
        conn.legacy_subscribers.setdefault(uri, []).append(ctx.session)
        await in_thread(conn.watch)
        return types.EmptyResult()

    async def unsubscribe(ctx, params):
        conn.legacy_subscribers.pop(str(params.uri), None)
        return types.EmptyResult()

    async def listen_stream(ctx, params):
        await in_thread(conn.watch)
        return await listen(ctx, params)

    async def list_prompts(ctx, params):
        return types.ListPromptsResult(prompts=[types.Prompt.model_validate(p) for p in tb.prompts()])

    async def get_prompt(ctx, params):
        try:
            description, text = await in_thread(tb.prompt, params.name, params.arguments)
        except (MirrorfsError, ToolError) as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
        return types.GetPromptResult(description=description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])

    async def send_updates(uris: list[str]) -> None:
        for uri in uris:
            await bus.publish(ResourceUpdated(uri=uri))
            for session in list(conn.legacy_subscribers.get(uri, ())):
                try:
                    await session.send_resource_updated(uri)
                except Exception:  # that client went away; the others still hear
                    conn.legacy_subscribers.get(uri, []).remove(session)

    @asynccontextmanager
    async def lifespan(server):
        token = anyio.lowlevel.current_token()

        def notify(uris: list[str]) -> None:
            try:
                anyio.from_thread.run(send_updates, uris, token=token)
            except Exception:
                pass  # the loop is shutting down

        conn.notify = notify
        yield {}
        conn.notify = None

    server = Server(
        SERVER_NAME, version=__version__, instructions=conn.instructions, lifespan=lifespan,
        on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
        on_list_resource_templates=list_templates, on_read_resource=read_resource,
        on_subscribe_resource=subscribe, on_unsubscribe_resource=unsubscribe,
        on_subscriptions_listen=listen_stream, on_list_prompts=list_prompts, on_get_prompt=get_prompt,
    )
    return server, server.create_initialization_options(NotificationOptions())


# -- the process ------------------------------------------------------------------------------


def vault_root(path: str | None) -> Path:
    """The vault folder the server will open, checked now (before any client talks to it)."""
    if path is None and os.environ.get(ENV_VAULT):
        path = os.environ[ENV_VAULT]
    root = find_root() if path is None else Path(path).expanduser().resolve()
    if not (root / CONFIG_FILE).is_file():
        raise MirrorfsError(f"{root} is not a mirrorfs vault (no {CONFIG_FILE}); run `mirrorfs init {root}`")
    load_config(root)
    return root


def unlock_keyring(root: Path, passphrase_file: str | None):
    """A keyring holding the vault key, from --passphrase-file, MIRRORFS_PASSPHRASE or the OS keyring."""
    from mirrorfs import crypto
    from mirrorfs.passphrase import find_passphrase

    config = load_config(root)
    passphrase, _ = find_passphrase(passphrase_file=passphrase_file, vault_id=str(config["vault_id"]),
                                    interactive=False)
    keyring = crypto.Keyring(passphrase)
    Vault(root, config, FALLBACK_INSTANCE).unlock(keyring)  # checks it now; the key stays cached
    return keyring


def serve(vault_path: str | None = None, instance: str | None = None, read_only: bool = False,
          unlock: bool = False, passphrase_file: str | None = None) -> None:
    """Serve one MCP client on stdin/stdout until it disconnects."""
    if instance is not None:
        check_instance_name(instance)
    read_only = read_only or os.environ.get(ENV_TOOLS, "").strip().lower() == "read"
    root = vault_root(vault_path)
    keyring = unlock_keyring(root, passphrase_file) if unlock or passphrase_file else None
    # The wire gets private descriptors; fd 0 and 1 point elsewhere, so nothing a
    # library or a child process prints can corrupt the protocol.
    wire_in = os.fdopen(os.dup(0), "rb")
    wire_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    Connection(root, instance, read_only, keyring).serve(wire_in, wire_out)


def main(argv: list[str] | None = None) -> int:
    """`mirrorfs-mcp` / `python -m mirrorfs.mcp_server`: the server without the CLI around it."""
    parser = argparse.ArgumentParser(prog="mirrorfs-mcp", description="Serve a mirrorfs vault to one MCP client "
                                     "over stdio.")
    parser.add_argument("--vault", metavar="PATH", help="the vault (default: $MIRRORFS_VAULT or the cwd's)")
    parser.add_argument("--instance", metavar="NAME", help="the instance name (default: from the client's name)")
    parser.add_argument("--read-only", action="store_true", help="offer only the reading tools")
    parser.add_argument("--unlock", action="store_true", help="hold the vault key (passphrase from "
                        "MIRRORFS_PASSPHRASE or the OS keyring) so memory_read can reveal locked sections")
    parser.add_argument("--passphrase-file", metavar="PATH", help="read the passphrase from this file (implies --unlock)")
    args = parser.parse_args(argv)
    try:
        serve(args.vault, args.instance or os.environ.get("MIRRORFS_INSTANCE") or None, args.read_only,
              args.unlock, args.passphrase_file)
    except MirrorfsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
