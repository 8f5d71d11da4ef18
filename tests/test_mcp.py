"""`mirrorfs mcp` driven by the official MCP SDK's client over stdio, as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters

from mirrorfs import crypto
from mirrorfs.storage import sha256

MIRRORFS = Path(sys.executable).parent / "mirrorfs"
TIMEOUT = 60
TOOL_NAMES = ["memory_search", "memory_read", "memory_context", "memory_similar", "memory_remember",
              "memory_edit", "session_log", "mirror_status", "mirror_intend"]
READERS = {"memory_search", "memory_read", "memory_context", "memory_similar", "mirror_status"}


def params(root: Path, *extra: str, env: dict | None = None, instance: str | None = None) -> StdioServerParameters:
    head = ["--vault", str(root)] + (["--instance", instance] if instance else [])
    return StdioServerParameters(command=str(MIRRORFS), args=[*head, "mcp", *extra],
                                 env={**os.environ, **(env or {})})


@asynccontextmanager
async def connect(root: Path, name: str, *extra: str, mode: str = "legacy", env: dict | None = None,
                  instance: str | None = None, message_handler=None):
    client = Client(params(root, *extra, env=env, instance=instance), mode=mode, read_timeout_seconds=TIMEOUT,
                    client_info=types.Implementation(name=name, version="1.0"), message_handler=message_handler)
    async with client as c:
        yield c


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 240))


async def call(c: Client, name: str, args: dict) -> types.CallToolResult:
    return await c.call_tool(name, args)


def ok(result: types.CallToolResult) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def refused(result: types.CallToolResult) -> str:
    assert result.is_error, result.structured_content
    text = result.content[0].text
    assert result.structured_content["error"] == text
    return text


def test_tools_list_names_annotations_and_size(vault):
    async def main():
        async with connect(vault.root, "Claude Desktop") as c:
            assert c.protocol_version == "2025-11-25"
            assert c.server_info.name == "mirrorfs"
            assert "You are Mira" in c.instructions and "mirror_status" in c.instructions
            assert "laptop" in c.instructions  # the other instance
            return (await c.list_tools()).tools

    tools = run(main())
    assert [t.name for t in tools] == TOOL_NAMES
    for t in tools:
        a = t.annotations
        assert a.read_only_hint is (t.name in READERS), t.name
        assert a.open_world_hint is False
        assert a.destructive_hint is (True if t.name == "memory_edit" else (None if t.name in READERS else False))
    wire = json.dumps({"tools": [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools]})
    tokens = len(wire.encode("utf-8")) / 4
    assert tokens < 2500, tokens


def test_remember_search_read_edit_log_status(vault):
    root = vault.root

    async def main():
        async with connect(root, "Claude Desktop") as c:
            made = ok(await call(c, "memory_remember", {"content": "Sam prefers green tea in the morning",
                                                        "tags": ["drinks"], "kind": "preference"}))
            path, first_sha = made["path"], made["sha256"]
            assert path == "memory/sam-prefers-green-tea-in-the-morning.md"
            assert first_sha == sha256((root / path).read_bytes())

            hits = ok(await call(c, "memory_search", {"query": "green tea"}))["hits"]
            assert [h["path"] for h in hits] == [path] and hits[0]["sha256"] == first_sha
            assert hits[0]["type"] == "memory" and "**tea**" in hits[0]["snippet"]

            read = ok(await call(c, "memory_read", {"path": path}))
            assert read["sha256"] == first_sha and read["front_matter"]["instance"] == "claude-desktop"
            assert "Sam prefers green tea" in read["text"] and read["truncated"] is False

            # A person changes the note in an editor after the read: the edit is refused, nothing written.
            before = (root / path).read_bytes()
            changed = before.replace(b"\nSam prefers green tea", b"\nSam prefers jasmine tea")
            (root / path).write_bytes(changed)
            stale = await call(c, "memory_edit", {"path": path, "expected_sha256": first_sha,
                                                  "command": "str_replace", "old_str": "jasmine", "new_str": "oolong"})
            line = changed.decode().splitlines().index("Sam prefers jasmine tea in the morning") + 1
            now = sha256(changed)
            assert refused(stale) == (
                f"{path} changed since you read it (expected_sha256 {first_sha[:12]}…, it is now {now}); nothing "
                f"was written. Changes since your version: +1 -1 lines, first at line {line}: was 'Sam prefers "
                "green tea in the morning', now 'Sam prefers jasmine tea in the morning'. Read it again and retry "
                "with the new sha256.")
            assert stale.structured_content["current_sha256"] == now
            assert (root / path).read_bytes() == changed

            edited = ok(await call(c, "memory_edit", {"path": path, "expected_sha256": now, "command": "str_replace",
                                                      "old_text": "jasmine", "new_text": "oolong"}))
            assert edited["changed"] is True and edited["sha256"] == sha256((root / path).read_bytes())
            assert b"Sam prefers oolong tea" in (root / path).read_bytes()
            prop = ok(await call(c, "memory_edit", {"path": path, "expected_sha256": edited["sha256"],
                                                    "command": "set_property", "key": "tier", "value": "working"}))
            assert b"tier: working" in (root / path).read_bytes() and prop["changed"]

            first = ok(await call(c, "session_log", {"role": "user", "content": "Where should we go in March?"}))
            second = ok(await call(c, "session_log", {"role": "assistant", "content": "Lisbon or Sevilla."}))
            assert first["created"] is True and second["created"] is False
            assert first["session"] == second["session"]
            assert first["path"].startswith("sessions/claude-desktop/")

            intent = ok(await call(c, "mirror_intend", {"text": "Plan the March trip"}))
            assert intent["intentions"][0]["text"] == "Plan the March trip"
            status = ok(await call(c, "mirror_status", {}))
            assert status["instance"] == "claude-desktop"
            assert status["me"]["state"] == "active" and status["me"]["status"] == "active"
            assert [i["name"] for i in status["instances"]] == ["laptop"]
            assert status["reflections"]["marked_read"] in (True, False)
            again = ok(await call(c, "mirror_status", {}))
            assert again["reflections"]["count"] == 0  # what the first call showed is read now
            context = ok(await call(c, "memory_context", {"query": "tea", "strategy": "relevant",
                                                          "budget_tokens": 500}))
            assert context["used_tokens"] <= 500
            kinds = [i["kind"] for i in context["items"]]
            assert kinds[0] == "soul" and "memory" in kinds and "activity" in kinds  # laptop is another instance
            return first["session"]

    session_id = run(main())
    s = vault.sessions.load(session_id)
    assert [m.content for m in s.get_messages()] == ["Where should we go in March?", "Lisbon or Sevilla."]
    assert s.title == "Where should we go in March?"
    card = vault.instances.get("claude-desktop")
    assert card.status == "idle"  # the client disconnected


def test_two_clients_see_each_other_and_lose_nothing(vault):
    root = vault.root

    async def client(name: str, peer: str, started: asyncio.Event, other_started: asyncio.Event,
                     done: asyncio.Event, other_done: asyncio.Event):
        async with connect(root, name) as c:
            started.set()
            await asyncio.wait_for(other_started.wait(), TIMEOUT)
            me = name.lower().replace(" ", "-")
            calls = [call(c, "session_log", {"role": "user", "content": f"{me} message {i}"}) for i in range(40)]
            calls += [call(c, "memory_remember", {"content": f"{me} remembers fact number {i}",
                                                  "title": f"{me} fact {i}"}) for i in range(40)]
            results = await asyncio.gather(*calls)
            assert not any(r.is_error for r in results), [r.content[0].text for r in results if r.is_error]
            sessions = {r.structured_content["session"] for r in results[:40]}
            assert len(sessions) == 1
            # The peer's writes are visible too; wait until it wrote (it runs at the same time).
            for _ in range(200):
                status = ok(await call(c, "mirror_status", {}))
                names = {i["name"]: i for i in status["instances"]}
                hits = ok(await call(c, "memory_search", {"query": f"{peer} remembers", "types": ["memory"],
                                                          "limit": 25}))["hits"]
                if peer in names and len(hits) == 25:
                    break
                await asyncio.sleep(0.1)
            assert names[peer]["state"] == "active"
            assert all(h["instance"] == peer for h in hits) and len(hits) == 25
            done.set()  # stay connected until the peer has looked at this instance too
            await asyncio.wait_for(other_done.wait(), TIMEOUT * 2)
            return sessions.pop()

    async def main():
        a, b, a_done, b_done = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()
        return await asyncio.gather(client("Alpha Client", "beta-client", a, b, a_done, b_done),
                                    client("Beta Client", "alpha-client", b, a, b_done, a_done))

    sessions = run(main())
    for name, sid in zip(("alpha-client", "beta-client"), sessions):
        messages = vault.sessions.load(sid).get_messages()
        assert sorted(m.content for m in messages) == sorted(f"{name} message {i}" for i in range(40))
        assert {m.instance for m in messages} == {name}
        facts = sorted(p.name for p in (root / "memory").glob(f"{name}-fact-*.md"))
        assert len(facts) == 40
        assert all(f"{name} remembers fact number".encode() in (root / "memory" / f).read_bytes() for f in facts)


def test_escapes_locked_sections_and_limits(vault, tmp_path):
    root = vault.root
    vault.unlock("correct horse battery staple")
    secret = vault.remember("PIN 4921", title="Bank PIN", secret=True)
    vault.lock()
    (tmp_path / "outside.md").write_text("---\ntitle: outside\n---\nnot yours\n")
    (root / "memory" / "out.md").symlink_to(tmp_path / "outside.md")

    async def main():
        async with connect(root, "Cursor") as c:
            texts = {}
            for raw in ("../secret.md", "%2e%2e/secret.md", "%252e%252e/%252e%252e/etc/passwd.md", "/etc/passwd",
                        "memory/out.md", ".mirrorfs/config.yaml"):
                texts[raw] = refused(await call(c, "memory_read", {"path": raw}))
            texts["limit_read"] = refused(await call(c, "memory_read", {"path": secret.path, "limit": 100000}))
            texts["limit_search"] = refused(await call(c, "memory_search", {"query": "pin", "limit": 1000}))
            texts["reveal"] = refused(await call(c, "memory_read", {"path": secret.path, "reveal": True}))
            texts["secret_write"] = refused(await call(c, "memory_remember", {"content": "x", "secret": True}))
            locked = ok(await call(c, "memory_read", {"path": secret.path}))
            resource = (await c.read_resource(f"mirrorfs://note/{secret.path}")).contents[0].text
            with pytest.raises(Exception) as escaped:
                await c.read_resource("mirrorfs://note/%2e%2e/%2e%2e/etc/passwd.md")
            return texts, locked, resource, str(escaped.value)

    texts, locked, resource, escaped = run(main())
    assert texts == {
        "../secret.md": "path '../secret.md' points outside the vault; give a path inside it like memory/tea.md",
        "%2e%2e/secret.md": "path '%2e%2e/secret.md' points outside the vault; give a path inside it like "
                            "memory/tea.md",
        "%252e%252e/%252e%252e/etc/passwd.md": "path '%252e%252e/%252e%252e/etc/passwd.md' points outside the "
                                               "vault; give a path inside it like memory/tea.md",
        "/etc/passwd": "path '/etc/passwd' is absolute; give a path inside the vault like memory/tea.md",
        "memory/out.md": "path 'memory/out.md' points outside the vault; give a path inside it like memory/tea.md",
        ".mirrorfs/config.yaml": "path '.mirrorfs/config.yaml' is not a note: notes are .md files outside the "
                                 "vault's tool folders",
        "limit_read": "limit of memory_read must be from 1 to 12000 (got 100000)",
        "limit_search": "limit of memory_search must be from 1 to 25 (got 1000)",
        "reveal": "unknown argument 'reveal' for memory_read; it takes path, offset, limit",
        "secret_write": "secret memories need the vault unlocked: start the server with --unlock",
    }
    assert "4921" not in json.dumps(locked) and "🔒 [encrypted section]" in locked["text"]
    assert "4921" not in resource and "🔒 [encrypted section]" in resource
    assert escaped == ("path '%2e%2e/%2e%2e/etc/passwd.md' points outside the vault; give a path inside it like "
                       "memory/tea.md")


def test_unlock_reveals_only_when_asked(vault):
    vault.unlock("correct horse battery staple")
    secret = vault.remember("PIN 4921", title="Bank PIN", secret=True)
    vault.lock()

    async def main():
        env = {"MIRRORFS_PASSPHRASE": "correct horse battery staple"}
        async with connect(vault.root, "Claude Desktop", "--unlock", env=env) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert "reveal" in tools["memory_read"].input_schema["properties"]
            hidden = ok(await call(c, "memory_read", {"path": secret.path}))
            shown = ok(await call(c, "memory_read", {"path": secret.path, "reveal": True}))
            made = ok(await call(c, "memory_remember", {"content": "door code 7788", "title": "Door", "secret": True}))
            return hidden, shown, made

    hidden, shown, made = run(main())
    assert "4921" not in json.dumps(hidden) and "PIN 4921" in shown["text"]
    data = (vault.root / made["path"]).read_bytes()
    assert b"7788" not in data and crypto.find_sections(data.decode())


def test_read_only_offers_only_readers_and_writes_nothing(vault):
    before = sorted(p.relative_to(vault.root).as_posix() for p in vault.root.rglob("*") if p.is_file())

    async def main(*extra, env=None):
        async with connect(vault.root, "Zed", *extra, env=env) as c:
            names = [t.name for t in (await c.list_tools()).tools]
            return names, refused(await call(c, "memory_remember", {"content": "nope"}))

    by_flag = run(main("--read-only"))
    by_env = run(main(env={"MIRRORFS_MCP_TOOLS": "read"}))
    readers = [n for n in TOOL_NAMES if n in READERS]
    assert by_flag == by_env == (readers, "memory_remember is not available: this server was started read-only; "
                                          "the tools are " + ", ".join(readers))
    after = sorted(p.relative_to(vault.root).as_posix() for p in vault.root.rglob("*") if p.is_file())
    assert after == before


def test_instance_flag_wins_and_modern_clients_are_named_too(vault):
    async def main():
        async with connect(vault.root, "Claude Desktop", instance="desk") as c:
            flagged = ok(await call(c, "mirror_status", {}))["instance"]
        async with connect(vault.root, "Some Agent Framework", mode="auto") as c:
            assert c.protocol_version == "2026-07-28"
            modern = ok(await call(c, "session_log", {"role": "user", "content": "hi"}))
        return flagged, modern

    flagged, modern = run(main())
    assert flagged == "desk" and modern["path"].startswith("sessions/some-agent-framework/")


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # the 2025 verb clients use
def test_another_instance_write_notifies_subscribers(vault):
    updated: asyncio.Queue = asyncio.Queue()

    async def on_message(message):
        message = getattr(message, "root", message)
        if getattr(message, "method", None) == "notifications/resources/updated":
            await updated.put(str(message.params.uri))

    async def main():
        async with connect(vault.root, "Watcher Client", message_handler=on_message) as a:
            await a.subscribe_resource("mirrorfs://reflections")
            ok(await call(a, "memory_remember", {"content": "my own write is not news"}))
            async with connect(vault.root, "Writer Client") as b:
                made = ok(await call(b, "memory_remember", {"content": "Beta wrote this"}))
            seen = set()
            while "mirrorfs://reflections" not in seen:
                seen.add(await asyncio.wait_for(updated.get(), 20))
            return made, seen

    made, seen = run(main())
    assert "mirrorfs://reflections" in seen


def test_modern_listen_stream_hears_another_instance(vault):
    async def main():
        async with connect(vault.root, "Listener", mode="auto") as a:
            async with a.listen(resource_subscriptions=["mirrorfs://reflections"]) as sub:
                async with connect(vault.root, "Writer Client") as b:
                    ok(await call(b, "memory_remember", {"content": "written while someone listens"}))
                event = await asyncio.wait_for(sub.__anext__(), 20)
                return event

    event = run(main())
    assert event.uri == "mirrorfs://reflections"
