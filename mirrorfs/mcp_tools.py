"""The MCP tools, resources and prompts as plain data and plain calls (no MCP SDK here).

`mirrorfs.mcp_server` puts these on the wire; keeping them free of the SDK
lets the server answer `tools/list` before the SDK (about half a second of
imports) is loaded. Each tool translates its arguments, calls the library and
formats a bounded result: a JSON object (structured content) and a short
text form, each at most RESULT_BYTES (about 4,000 tokens).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote

from mirrorfs.errors import PathOutsideVaultError

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

RESULT_BYTES = 16_000
SEARCH_LIMIT = 25
READ_LIMIT = 12_000  # characters of note text per page (both forms of the result stay under RESULT_BYTES)
FALLBACK_INSTANCE = "mcp"

_STR = {"type": "string"}
_INT = {"type": "integer"}
_RO = {"readOnlyHint": True, "openWorldHint": False}
_WRITE = {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": False}

TOOLS: list[dict[str, Any]] = [
    {"name": "memory_search",
     "description": "Full-text search of memories and conversations. Query syntax: words, \"phrase\", OR, NOT, "
                    "tag:x, type:memory, instance:x. Hits carry path, title, type, score, snippet, sha256.",
     "inputSchema": {"type": "object", "properties": {
         "query": _STR,
         "types": {"type": "array", "items": _STR, "description": "memory, session, soul, bridge, note, message"},
         "since": {"type": "string", "description": "date (2026-11-21) or age (7d)"},
         "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT, "default": 10},
         "mode": {"type": "string", "enum": ["keyword", "semantic", "hybrid"],
                  "description": "default: hybrid once embeddings exist"},
         "min_score": {"type": "number", "minimum": 0, "maximum": 1}},
         "required": ["query"]},
     "annotations": _RO},
    {"name": "memory_read",
     "description": "Read one note: text (locked sections stay locked), front matter and sha256 (memory_edit "
                    "needs it). Long notes page: pass next_offset as offset.",
     "inputSchema": {"type": "object", "properties": {
         "path": {"type": "string", "description": "vault-relative, e.g. memory/tea.md"},
         "offset": {"type": "integer", "minimum": 0, "default": 0},
         "limit": {"type": "integer", "minimum": 1, "maximum": READ_LIMIT}},
         "required": ["path"]},
     "annotations": _RO},
    {"name": "memory_context",
     "description": "What to know before answering, within budget_tokens: SOUL.md, what your other instances did "
                    "lately, then this conversation's latest messages (recent), memories and other conversations "
                    "relevant to query (relevant), or a summary of older turns (summarized).",
     "inputSchema": {"type": "object", "properties": {
         "query": _STR,
         "strategy": {"type": "string", "enum": ["recent", "relevant", "summarized"], "default": "recent"},
         "budget_tokens": {"type": "integer", "minimum": 100, "maximum": 4000, "default": 2000}}},
     "annotations": _RO},
    {"name": "memory_similar",
     "description": "Notes similar to a note (its path) or to a text.",
     "inputSchema": {"type": "object", "properties": {
         "path_or_text": _STR,
         "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT, "default": 5},
         "method": {"type": "string", "enum": ["keyword", "semantic", "hybrid"]}},
         "required": ["path_or_text"]},
     "annotations": _RO},
    {"name": "memory_remember",
     "description": "Save a new memory note; returns its path and sha256.",
     "inputSchema": {"type": "object", "properties": {
         "content": _STR, "title": _STR,
         "kind": {"type": "string", "description": "fact, preference, project, insight, person, event"},
         "tags": {"type": "array", "items": _STR},
         "tier": {"type": "string", "enum": ["working", "long_term", "semantic"], "default": "long_term"},
         "secret": {"type": "boolean", "default": False, "description": "encrypt the text"}},
         "required": ["content"]},
     "annotations": _WRITE},
    {"name": "memory_edit",
     "description": "Edit a note as read with memory_read; refused with the current sha256 if it changed since. "
                    "command: str_replace(old_str, new_str), insert(insert_line, insert_text; 0 = top), "
                    "append(text), set_property(key, value), unset_property(key).",
     "inputSchema": {"type": "object", "properties": {
         "path": _STR, "expected_sha256": _STR,
         "command": {"type": "string",
                     "enum": ["str_replace", "insert", "append", "set_property", "unset_property"]},
         "old_str": _STR, "new_str": _STR, "insert_line": _INT, "insert_text": _STR, "text": _STR,
         "key": _STR, "value": {}},
         "required": ["path", "expected_sha256", "command"]},
     "annotations": {**_WRITE, "destructiveHint": True}},
    {"name": "session_log",
     "description": "Append a message to this instance's current conversation (created on first use, titled "
                    "from its first message unless title is given).",
     "inputSchema": {"type": "object", "properties": {
         "role": {"type": "string", "enum": ["user", "assistant", "system", "tool"]},
         "content": _STR, "session": _STR, "title": _STR},
         "required": ["role", "content"]},
     "annotations": _WRITE},
    {"name": "mirror_status",
     "description": "The other instances of you (active/idle/gone, intentions), what they wrote since you last "
                    "looked (then marked read), open conflicts, bridge notes addressed to you.",
     "inputSchema": {"type": "object", "properties": {}},
     "annotations": _RO},
    {"name": "mirror_intend",
     "description": "Record an intention on this instance's card, for the other instances and the person.",
     "inputSchema": {"type": "object", "properties": {"text": _STR}, "required": ["text"]},
     "annotations": _WRITE},
]
READ_TOOLS = ("memory_search", "memory_read", "memory_context", "memory_similar", "mirror_status")
# Names models carry over from other memory tools, mapped to ours.
ALIASES = {"memory_edit": {"old_text": "old_str", "find": "old_str", "new_text": "new_str", "content": None},
           "memory_remember": {"text": "content"}, "session_log": {"text": "content", "message": "content"}}
_CONTENT_ALIAS = {"str_replace": "new_str", "insert": "insert_text", "append": "text"}

RESOURCES = [
    {"uri": "mirrorfs://soul", "name": "soul", "title": "SOUL.md", "description": "Who you are.",
     "mimeType": "text/markdown"},
    {"uri": "mirrorfs://instances", "name": "instances", "title": "Instances",
     "description": "Every instance's presence card.", "mimeType": "application/json"},
    {"uri": "mirrorfs://reflections", "name": "reflections", "title": "Reflections",
     "description": "What the others wrote since this instance last looked (not marked read).",
     "mimeType": "application/json"},
]
NOTE_TEMPLATE = {"uriTemplate": "mirrorfs://note/{path}", "name": "note", "title": "A note",
                 "description": "Any note by vault-relative path (URL-encoded).", "mimeType": "text/markdown"}
PROMPTS = [{"name": "continue_conversation", "title": "Continue the conversation",
            "description": "Pick up where you left off, with what you remember.",
            "arguments": [{"name": "topic", "description": "what to continue (optional)", "required": False}]}]


def tool_definitions(read_only: bool = False, unlocked: bool = False) -> list[dict[str, Any]]:
    """The tools offered: the readers only when *read_only*; `reveal` on memory_read only when *unlocked*."""
    tools = [t for t in TOOLS if not read_only or t["name"] in READ_TOOLS]
    if unlocked:
        tools = [_with_reveal(t) if t["name"] == "memory_read" else t for t in tools]
    return tools


def _with_reveal(tool: dict) -> dict:
    schema = json.loads(json.dumps(tool["inputSchema"]))
    schema["properties"]["reveal"] = {"type": "boolean", "default": False, "description": "decrypt locked sections"}
    return {**tool, "inputSchema": schema}


def instance_name_for(client_name: str | None) -> str:
    """A valid instance name from an MCP client's `clientInfo.name`: `Claude Desktop` -> `claude-desktop`."""
    text = unicodedata.normalize("NFKD", client_name or "").encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", text).strip("-_")[:64].strip("-_")
    return slug or FALLBACK_INSTANCE


class ToolError(Exception):
    """A tool call that cannot be done: its message is the one sentence the model reads."""


def note_path(vault: "Vault", raw: Any, what: str = "path") -> str:
    """The vault-relative path of a note inside the vault, or ToolError.

    Percent-encoding is undone first (so `%2e%2e/` is `../`), absolute paths are
    refused, and the path is resolved with symlinks before it is checked.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError(f"{what} must be a vault-relative note path like memory/tea.md")
    text = raw.strip()
    for _ in range(3):  # %252e%252e/ is encoded twice
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    if text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", text):
        raise ToolError(f"{what} {raw!r} is absolute; give a path inside the vault like memory/tea.md")
    try:
        rel = vault.relpath(text)
    except PathOutsideVaultError:
        raise ToolError(f"{what} {raw!r} points outside the vault; give a path inside it like memory/tea.md") from None
    from mirrorfs.ignore import is_note_path

    if not is_note_path(rel):
        raise ToolError(f"{what} {raw!r} is not a note: notes are .md files outside the vault's tool folders")
    return rel


# -- results -------------------------------------------------------------------------------


@dataclass
class ToolResult:
    """What one call returns: structured content, its text form, and whether it is an error."""

    data: dict[str, Any]
    text: str
    is_error: bool = False
    written: list[str] = field(default_factory=list)  # vault paths this call wrote


def _size(data: Any) -> int:
    return len(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"))


def bound(data: dict[str, Any], key: str, budget: int = RESULT_BYTES) -> dict[str, Any]:
    """*data* with items dropped from the end of list *key* until its JSON fits *budget* bytes."""
    items = data.get(key) or []
    if _size(data) <= budget:
        return data
    kept = list(items)
    while kept and _size({**data, key: kept, "truncated": True}) > budget:
        kept.pop()
    return {**data, key: kept, "truncated": True, "omitted": len(items) - len(kept)}


def clip(text: str, budget: int = RESULT_BYTES) -> str:
    """*text* cut to *budget* UTF-8 bytes, saying so."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    return data[: budget - 40].decode("utf-8", "ignore") + "\n… (cut to stay within the result budget)"


def error_result(message: str, **data: Any) -> ToolResult:
    return ToolResult({"error": message, **data}, message, is_error=True)


def check_arguments(name: str, arguments: Any, schema: dict) -> dict[str, Any]:
    """Arguments with aliases mapped, unknown names and wrong types refused (ToolError)."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolError(f"{name} takes an object of named arguments")
    props = schema.get("properties", {})
    aliases = ALIASES.get(name, {})
    args: dict[str, Any] = {}
    for key, value in arguments.items():
        target = aliases.get(key, key) if key not in props else key
        if target is None:  # memory_edit's `content` means the text of whichever command
            target = _CONTENT_ALIAS.get(arguments.get("command"), "text")
        if target not in props:
            raise ToolError(f"unknown argument {key!r} for {name}; it takes {', '.join(props)}")
        if target in args and args[target] != value:
            raise ToolError(f"{name} got {target} twice (as {key!r} too); give it once")
        args[target] = value
    for key in schema.get("required", []):
        if args.get(key) in (None, ""):
            raise ToolError(f"{name} needs {key}")
    for key, value in args.items():
        _check_type(name, key, value, props[key])
    return args


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
}


def _check_type(name: str, key: str, value: Any, prop: dict) -> None:
    kind = prop.get("type")
    if value is None or kind is None:
        return
    if not _TYPES[kind](value):
        raise ToolError(f"{key} of {name} must be {'an' if kind[0] in 'aei' else 'a'} {kind}")
    if kind == "array" and not all(isinstance(v, str) for v in value):
        raise ToolError(f"{key} of {name} must be a list of strings")
    if "enum" in prop and value not in prop["enum"]:
        raise ToolError(f"{key} of {name} must be one of {', '.join(prop['enum'])} (got {value!r})")
    low, high = prop.get("minimum"), prop.get("maximum")
    if kind == "integer" and ((low is not None and value < low) or (high is not None and value > high)):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ToolError(f"{key} of {name} must be {span} (got {value})")
