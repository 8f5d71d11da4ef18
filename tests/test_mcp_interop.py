"""`mirrorfs mcp` against clients mirrorfs did not write: the TypeScript SDK's, and bare JSON-RPC lines."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import close_pipes

from mirrorfs import mcp_server

REPO = Path(__file__).resolve().parent.parent
MIRRORFS = Path(sys.executable).parent / "mirrorfs"
NODE_DEPS = Path(os.environ.get("MIRRORFS_NODE_DEPS", Path.home() / ".cache" / "mirrorfs-node"))
TS_CLIENT = REPO / "tests" / "mcp" / "ts_client.mjs"


def test_typescript_sdk_client(vault):
    if not (NODE_DEPS / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(f"@modelcontextprotocol/sdk is missing in {NODE_DEPS}: run .ci/install-node-deps")
    proc = subprocess.run(["node", str(TS_CLIENT), str(NODE_DEPS), str(MIRRORFS), "--vault", str(vault.root), "mcp"],
                          capture_output=True, text=True, timeout=120, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["server"] == {"name": "mirrorfs", "version": "0.1.0"}
    assert "You are Mira" in out["instructions"]
    assert [t["name"] for t in out["tools"]][:2] == ["memory_search", "memory_read"]
    path = out["remember"]["data"]["path"]
    assert path == "memory/the-typescript-client-likes-oolong-tea.md"
    assert out["search"]["data"]["hits"][0]["path"] == path
    assert out["read"]["data"]["sha256"] == out["remember"]["data"]["sha256"]
    assert out["stale"]["isError"] and out["stale"]["text"].startswith(
        f"{path} changed since you read it (expected_sha256 000000000000…, it is now {out['read']['data']['sha256']});"
        " nothing was written.")
    assert not out["edit"]["isError"] and out["edit"]["data"]["changed"]
    assert "Brewed at 90 degrees." in (vault.root / path).read_text()
    assert out["session"]["data"]["path"].startswith("sessions/ts-sdk-client/")
    assert out["status"]["data"]["instance"] == "ts-sdk-client"
    assert "laptop" in [i["name"] for i in out["status"]["data"]["instances"]]
    assert out["escape"]["text"] == ("path '%2e%2e/%2e%2e/etc/passwd.md' points outside the vault; give a path inside "
                                     "it like memory/tea.md")


class Wire:
    """`mirrorfs mcp` as a subprocess spoken to in bare JSON-RPC lines."""

    def __init__(self, root: Path, *args: str):
        self.proc = subprocess.Popen([str(MIRRORFS), "--vault", str(root), "mcp", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
        self.replies: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))

    def send(self, msg: dict) -> None:
        self.proc.stdin.write((json.dumps({"jsonrpc": "2.0", **msg}) + "\n").encode())
        self.proc.stdin.flush()

    def reply(self, msg_id) -> dict:
        while True:
            msg = self.replies.get(timeout=60)
            if msg.get("id") == msg_id:
                return msg

    def close(self) -> str:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode()
        close_pipes(self.proc, self.reader)
        return err


def _initialize(version: str, name: str = "Cursor") -> dict:
    return {"id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}}


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2024-11-05", "2099-01-01"])
def test_handshake_revisions_and_early_answers_match_the_sdk(vault, version):
    wire = Wire(vault.root)
    wire.send(_initialize(version))
    init = wire.reply(1)["result"]
    wire.send({"method": "notifications/initialized"})
    for n, method in enumerate(mcp_server.EARLY_METHODS[1:], 2):
        wire.send({"id": n, "method": method})
    early = {method: wire.reply(n)["result"] for n, method in enumerate(mcp_server.EARLY_METHODS[1:], 2)}
    # A tool call is answered by the SDK, so after it the same requests reach the SDK itself.
    wire.send({"id": 20, "method": "tools/call", "params": {"name": "mirror_status", "arguments": {}}})
    assert wire.reply(20)["result"]["structuredContent"]["instance"] == "cursor"
    for n, method in enumerate(mcp_server.EARLY_METHODS[1:], 30):
        wire.send({"id": n, "method": method})
        assert wire.reply(n)["result"] == early[method], method
    stderr = wire.close()
    assert init["protocolVersion"] == (version if version != "2099-01-01" else "2025-11-25")
    assert init["serverInfo"] == {"name": "mirrorfs", "version": "0.1.0"}
    assert "differed" not in stderr, stderr
    assert vault.instances.get("cursor").status == "idle"


def test_the_early_answer_knows_the_sdk_revisions():
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

    assert mcp_server.HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert mcp_server.HANDSHAKE_VERSIONS[-1] == LATEST_HANDSHAKE_VERSION


def test_presence_while_connected(vault):
    wire = Wire(vault.root)
    wire.send(_initialize("2025-06-18", "Claude Desktop"))
    wire.reply(1)
    wire.send({"method": "notifications/initialized"})
    wire.send({"id": 2, "method": "tools/call", "params": {"name": "mirror_status", "arguments": {}}})
    me = wire.reply(2)["result"]["structuredContent"]["me"]
    assert (me["state"], me["status"]) == ("active", "active")
    wire.close()
    card = vault.instances.get("claude-desktop")
    assert card.status == "idle"


def test_a_missing_vault_is_one_line_on_stderr(tmp_path):
    proc = subprocess.run([str(MIRRORFS), "--vault", str(tmp_path), "mcp"], input=b"", capture_output=True,
                          timeout=60, env=os.environ)
    assert proc.returncode == 1
    assert proc.stderr.decode() == (f"Error: {tmp_path} is not a mirrorfs vault (no .mirrorfs/config.yaml); "
                                    f"run `mirrorfs init {tmp_path}`\n")
