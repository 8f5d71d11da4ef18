"""The MCP tools, resources and prompts at work: argument in, library call, bounded result out.

No MCP SDK here (see mirrorfs.mcp_tools). A `Toolbox` serves one MCP client
as one instance of the vault. Every failure a model can fix comes back as an
error result with one sentence; nothing a tool raises stops the server.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from mirrorfs import edits, lookup, overview, patterns
from mirrorfs.errors import MirrorfsError, StaleEditError
from mirrorfs.mcp_tools import (
    NOTE_TEMPLATE,
    PROMPTS,
    READ_LIMIT,
    RESULT_BYTES,
    TOOLS,
    ToolError,
    ToolResult,
    bound,
    check_arguments,
    clip,
    error_result,
    note_path,
    tool_definitions,
)
from mirrorfs.session_log import SessionLog
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

NOTE_PREFIX = "mirrorfs://note/"
PATTERN_PROMPT = "reflect_"
MAX_PATTERN_PROMPTS = 24  # prompts/list stays small whatever a vault keeps in patterns/


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _hit_line(n: int, h: dict) -> str:
    where = f"{h.get('role')} in session {h.get('session_title') or h.get('session')}" \
        if h.get("doc") == "message" else h.get("type", "note")
    line = f"{n}. {h['path']} — {h.get('title') or '(untitled)'} [{where}] score {h.get('score')}"
    return line + f"\n   sha256 {h.get('sha256')}\n   {h.get('snippet', '')}".rstrip()


def _hits_text(data: dict) -> str:
    hits = data["hits"]
    if not hits:
        return "no results"
    lines = [_hit_line(n, h) for n, h in enumerate(hits, 1)]
    if data.get("truncated"):
        lines.append(f"({data['omitted']} more left out to stay within the result budget)")
    return "\n".join(lines)


class Toolbox:
    """The nine tools for one vault instance; `call(name, arguments)` never raises."""

    def __init__(self, vault: "Vault", read_only: bool = False, reveal_allowed: bool = False):
        self.vault = vault
        self.read_only = read_only
        self.reveal_allowed = reveal_allowed and vault.unlocked
        self.log = SessionLog(vault)
        self.tools = {t["name"]: t for t in tool_definitions(read_only, self.reveal_allowed)}

    def definitions(self) -> list[dict]:
        return list(self.tools.values())

    def call(self, name: str, arguments: Any) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            known = {t["name"] for t in TOOLS}
            why = "this server was started read-only" if name in known else "no such tool"
            return error_result(f"{name} is not available: {why}; the tools are {', '.join(self.tools)}")
        try:
            args = check_arguments(name, arguments, tool["inputSchema"])
            return getattr(self, name)(**args)
        except ToolError as exc:
            return error_result(str(exc))
        except StaleEditError as exc:
            return error_result(str(exc), current_sha256=exc.current, summary=exc.summary)
        except MirrorfsError as exc:
            return error_result(str(exc))
        except Exception as exc:  # a bug must cost one call, not the server; details to stderr only
            traceback.print_exc(file=sys.stderr)
            return error_result(f"{name} failed unexpectedly ({type(exc).__name__}); the server logged the details")

    # -- readers -------------------------------------------------------------------------

    def memory_search(self, query: str, types: list | None = None, since: str | None = None,
                      limit: int = 10, mode: str | None = None, min_score: float | None = None) -> ToolResult:
        data = bound(lookup.search(self.vault, query, types=types, since=since, limit=limit, mode=mode,
                                   min_score=min_score), "hits")
        return ToolResult(data, clip(_hits_text(data)))

    def memory_similar(self, path_or_text: str, limit: int = 5, method: str | None = None) -> ToolResult:
        source = path_or_text
        if "\n" not in source and source.strip().endswith(".md"):
            source = note_path(self.vault, source, "path_or_text")
        data = bound(lookup.similar(self.vault, source, limit=limit, method=method), "hits")
        return ToolResult(data, clip(_hits_text(data)))

    def memory_read(self, path: str, offset: int = 0, limit: int = READ_LIMIT, reveal: bool = False) -> ToolResult:
        rel = note_path(self.vault, path)
        note, snap = self.vault.read(rel)
        edits.remember_read(self.vault, rel, snap.data)
        body = self.vault.readable(note.body) if reveal else _locked(note.body)
        text = body[offset:offset + limit]
        while len(text.encode("utf-8")) > RESULT_BYTES - 4000:
            text = text[: len(text) * 3 // 4]
        end = offset + len(text)
        data = {
            "path": rel, "sha256": snap.sha, "front_matter": _jsonable(note.meta),
            "front_matter_error": note.error, "instance": note.meta.get("instance"),
            "updated_by": note.meta.get("updated_by"), "offset": offset, "text": text,
            "length": len(body), "truncated": end < len(body), "next_offset": end if end < len(body) else None,
        }
        self.vault.touched(rel)
        head = f"{rel}  sha256 {snap.sha}" + (f"  (characters {offset}-{end} of {len(body)}; "
                                              f"continue with offset {end})" if end < len(body) else "")
        return ToolResult(data, clip(head + "\n\n" + text))

    def _conversation(self):
        """The session this client is logging to, else this instance's latest one (or None)."""
        current = self.log.current
        if current is not None and current.path.is_file():
            return current
        found = self.vault.sessions.list(instance=self.vault.instance, limit=1, include_ephemeral=False)
        return found[0] if found else None

    def memory_context(self, query: str | None = None, strategy: str = "recent",
                       budget_tokens: int = 2000) -> ToolResult:
        # Imported here: the context builder pulls in crypto and summaries, which the handshake must not wait for.
        from mirrorfs.context import build_context

        bundle = build_context(self.vault, query=query, strategy=strategy, budget_tokens=budget_tokens,
                               session=self._conversation())
        data = bundle.to_dict()
        data.pop("messages")
        return ToolResult(bound(data, "items"), clip(bundle.render() or "nothing remembered yet"))

    def mirror_status(self) -> ToolResult:
        data = overview.mirror_status(self.vault, mark_read=True)
        data = bound(data, "bridge")
        return ToolResult(data, clip(_status_text(data)))

    # -- writers -------------------------------------------------------------------------

    def memory_remember(self, content: str, title: str | None = None, kind: str | None = None,
                        tags: list | None = None, tier: str = "long_term", secret: bool = False) -> ToolResult:
        if secret and not self.vault.unlocked:
            raise ToolError("secret memories need the vault unlocked: start the server with --unlock")
        m = self.vault.remember(content, title=title, kind=kind or "fact", tags=tags or (), tier=tier,
                                secret=secret)
        data = {"path": m.path, "sha256": sha256(m.note.render()), "title": m.title, "id": m.id}
        return ToolResult(data, f"remembered {m.path} (sha256 {data['sha256']})", written=[m.path])

    def memory_edit(self, path: str, expected_sha256: str, command: str, **fields: Any) -> ToolResult:
        rel = note_path(self.vault, path)
        result = edits.edit_note(self.vault, rel, expected_sha256, command, **fields)
        text = f"{'edited' if result.changed else 'unchanged'} {rel} ({command}); sha256 now {result.sha256}"
        return ToolResult(result.to_dict(), text, written=[rel])

    def session_log(self, role: str, content: str, session: str | None = None,
                    title: str | None = None) -> ToolResult:
        logged = self.log.append(role, content, session=session, title=title)
        data = logged.to_dict()
        verb = "started" if logged.created else "appended to"
        return ToolResult(data, f"{verb} session {data['session']} ({data['path']})", written=[data["path"]])

    def mirror_intend(self, text: str) -> ToolResult:
        card = self.vault.instances.intend(text).to_dict()
        data = {"instance": card["name"], "intentions": card["intention_items"]}
        return ToolResult(data, f"{card['name']} intends: " + "; ".join(i["text"] for i in data["intentions"]),
                          written=[card["path"]])

    # -- resources and prompts ---------------------------------------------------------------

    def read_resource(self, uri: str) -> tuple[str, str]:
        """(mime type, text) of a resource URI; ToolError for an unknown or unsafe one."""
        if uri == "mirrorfs://soul":
            return "text/markdown", clip(_locked(self.vault.soul.text))
        if uri == "mirrorfs://instances":
            others, me = overview.instance_cards(self.vault)
            data = {"instance": self.vault.instance, "me": me, "instances": others}
            return "application/json", _dump(bound(data, "instances"))
        if uri == "mirrorfs://reflections":
            data = overview.mirror_status(self.vault, mark_read=False)["reflections"]
            return "application/json", _dump(bound(data, "latest"))
        if uri.startswith(NOTE_PREFIX):
            rel = note_path(self.vault, uri[len(NOTE_PREFIX):])
            note, _ = self.vault.read(rel)
            return "text/markdown", clip(_locked(note.text))
        raise ToolError(f"unknown resource {uri!r}; see resources/list and the template {NOTE_TEMPLATE['uriTemplate']}")

    def prompts(self) -> list[dict]:
        """The prompts: continue_conversation, and reflect_<name> for each reflective pattern."""
        found = [{"name": PATTERN_PROMPT + p.name, "title": f"{p.glyph} {p.title}".strip(),
                  "description": f"Reflect on a text with the {p.name} pattern" + (f": {p.style}" if p.style else ""),
                  "arguments": [{"name": "text", "description": "what to reflect on", "required": True}]}
                 for p in patterns.load(self.vault).values()]
        return PROMPTS + found[:MAX_PATTERN_PROMPTS]

    def prompt(self, name: str, arguments: dict | None) -> tuple[str, str]:
        """(description, user message text) of a prompt."""
        from mirrorfs.context import build_context

        if name.startswith(PATTERN_PROMPT):
            return self._pattern_prompt(name[len(PATTERN_PROMPT):], arguments)
        if name != "continue_conversation":
            raise ToolError(f"unknown prompt {name!r}; see prompts/list")
        topic = ((arguments or {}).get("topic") or "").strip()
        bundle = build_context(self.vault, query=topic or None, strategy="relevant" if topic else "recent",
                               budget_tokens=2000, session=self._conversation())
        remembered = bundle.render()
        about = f" about {topic}" if topic else ""
        text = (f"Continue our conversation{about}. This is what you remember (from mirrorfs):\n\n{remembered}\n\n"
                "Call mirror_status to see what your other instances did, and session_log to keep this "
                "conversation.")
        return f"Continue the conversation{about}", text


    def _pattern_prompt(self, name: str, arguments: dict | None) -> tuple[str, str]:
        from mirrorfs.reflect import pattern_prompt

        pattern = patterns.get(self.vault, name)
        text = ((arguments or {}).get("text") or "").strip()
        if not text:
            raise ToolError(f"the prompt {PATTERN_PROMPT}{pattern.name} needs the argument text")
        return (f"Reflect with the {pattern.name} pattern",
                pattern_prompt(self.vault, pattern, text, session=self._conversation()))


def note_uri(relpath: str) -> str:
    return NOTE_PREFIX + quote(relpath, safe="/")


def uri_path(uri: str) -> str:
    return unquote(uri[len(NOTE_PREFIX):]) if uri.startswith(NOTE_PREFIX) else ""


def _locked(text: str) -> str:
    from mirrorfs.crypto import lock_placeholder

    return lock_placeholder(text)


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, default=str)


def _status_text(data: dict) -> str:
    lines = [f"You are instance {data['instance']}."]
    others = data["instances"]
    lines.append("Other instances:" + (" none yet" if not others else ""))
    for o in others:
        intents = "; ".join(i["text"] for i in o["intentions"]) or "no intentions"
        lines.append(f"- {o['name']} ({o['state']}, seen {o['last_seen']}): {intents}")
    r = data["reflections"]
    lines.append(f"Since you last looked: {r['count']} change(s)"
                 + (" by " + ", ".join(f"{k} {v}" for k, v in r["by_instance"].items()) if r["count"] else ""))
    lines += [f"- {x['line']}" for x in r["latest"]]
    lines.append(f"Open conflicts: {len(data['conflicts'])}")
    lines += [f"- {c['original']} ({c['copy']}): {c['reason']}" for c in data["conflicts"][:10]]
    lines.append(f"Bridge notes for you: {len(data['bridge'])}")
    lines += [f"- {b['path']} from {b['from']}: {b['title']}" for b in data["bridge"]]
    return "\n".join(lines)
