"""Claude.ai data exports: `conversations.json` (in the export zip, its folder, or loose).

Each conversation has `uuid`, `name`, `created_at`, `updated_at`, an optional
`summary` and `chat_messages`; each message has `uuid`, `sender` (`human` or
`assistant`), `created_at`, `text`, `content` blocks (`text`, `thinking`,
`tool_use`, `tool_result`, ...), `attachments` (uploaded files with their
`extracted_content`) and `files` (images and other uploads, by name). Newer
exports link messages with `parent_message_uuid` and name the shown leaf in
`current_leaf_message_uuid`: then the shown branch is imported and the others
are noted, as for ChatGPT. Streamed one conversation at a time.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from mirrorfs.import_streams import conversations
from mirrorfs.importer import (
    ImportedMessage,
    ImportedSession,
    Item,
    Progress,
    Skipped,
    clean_text,
    fenced,
    from_iso,
)

SOURCE = "claude"
_ROLES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}


def read(path, progress: Progress | None = None, **_: Any) -> Iterator[Item]:
    """Every conversation of the export at *path* as an ImportedSession (or a Skipped)."""
    for number, element in conversations(path, progress):
        yield element if isinstance(element, Skipped) else convert(element, number)


def convert(conv: Any, number: int) -> ImportedSession | Skipped:
    """One conversation object of conversations.json."""
    title = conv.get("name") if isinstance(conv, dict) else None
    label = f"conversation #{number}" + (f" {json.dumps(str(title), ensure_ascii=False)}" if title else "")
    if not isinstance(conv, dict):
        return Skipped(label, "not a JSON object")
    cid = conv.get("uuid")
    if not isinstance(cid, str) or not cid:
        return Skipped(label, 'it has no "uuid"')
    chat = conv.get("chat_messages")
    if chat is None:
        chat = []
    if not isinstance(chat, list):
        return Skipped(f"{label} ({cid})", '"chat_messages" is not a list')
    try:
        return _session(conv, cid, chat, f"{label} ({cid})")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return Skipped(f"{label} ({cid})", f"unexpected shape of its data ({type(exc).__name__}: {exc})")


def _shown(chat: list, leaf: Any) -> tuple[list, int]:
    """(messages on the shown branch in order, messages on other branches)."""
    by_id = {m.get("uuid"): m for m in chat if isinstance(m, dict) and m.get("uuid")}
    if not isinstance(leaf, str) or leaf not in by_id or not any("parent_message_uuid" in m for m in by_id.values()):
        return chat, 0
    path, seen = [], set()
    while leaf in by_id and leaf not in seen:
        seen.add(leaf)
        path.append(by_id[leaf])
        leaf = by_id[leaf].get("parent_message_uuid")
    return path[::-1], len(by_id) - len(path)


def _session(conv: dict, cid: str, chat: list, label: str) -> ImportedSession:
    shown, off_branch = _shown(chat, conv.get("current_leaf_message_uuid"))
    messages: list[ImportedMessage] = []
    left_out = 0
    for raw in shown:
        if not isinstance(raw, dict):
            left_out += 1
            continue
        sender = str(raw.get("sender") or "")
        role = _ROLES.get(sender)
        if role is None:
            role = "tool"
        text, meta = message_text(raw)
        if sender and role == "tool":
            meta["origin_role"] = sender
        if not text.strip():
            left_out += 1
            continue
        mid = raw.get("uuid")
        messages.append(ImportedMessage(role=role, content=text, time=from_iso(raw.get("created_at")),
                                        origin_id=str(mid) if mid is not None else None, meta=meta))
    preamble = [f"Imported from Claude.ai (conversation `{cid}`)."]
    if isinstance(conv.get("summary"), str) and conv["summary"].strip():
        preamble += ["", "Summary: " + " ".join(conv["summary"].split())]
    if off_branch:
        preamble.append(f"The export holds {off_branch} message(s) on other branches of this conversation "
                        "(edited or retried turns); only the shown branch is imported.")
    updated = conv.get("updated_at")
    return ImportedSession(
        origin_id=cid,
        title=str(conv.get("name") or ""),
        messages=messages,
        label=label,
        created=from_iso(conv.get("created_at")),
        updated=from_iso(updated),
        version=str(updated) if updated is not None else None,
        preamble=preamble,
        left_out=left_out,
        off_branch=off_branch,
    )


def message_text(raw: dict) -> tuple[str, dict[str, Any]]:
    """(Markdown a person reads, message metadata) for one chat message."""
    meta: dict[str, Any] = {}
    pieces: list[str] = []
    blocks = raw.get("content") if isinstance(raw.get("content"), list) else []
    kinds = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = str(block.get("type") or "")
        kinds.append(kind)
        pieces.append(_block(block, kind))
    if not any(p.strip() for p in pieces) and isinstance(raw.get("text"), str):
        pieces = [raw["text"]]  # older exports: the text only
    if any(k not in ("text", "") for k in kinds):
        meta["content_types"] = sorted(set(k for k in kinds if k))
    attachments: list[dict] = []
    for a in raw.get("attachments") or []:
        if not isinstance(a, dict):
            continue
        record = {k: a[k] for k in ("file_name", "file_type", "file_size") if a.get(k) is not None}
        attachments.append({"type": "attachment", **record})
        details = " · ".join(str(x) for x in (a.get("file_name"), a.get("file_type"),
                                                f"{a['file_size']} bytes" if a.get("file_size") else "") if x)
        extracted = a.get("extracted_content")
        pieces.append(f"[attachment: {details}]" + ("\n\n" + fenced(str(extracted)) if extracted else ""))
    for f in (raw.get("files") or []) + (raw.get("files_v2") or []):
        if not isinstance(f, dict) or any(x.get("file_name") == f.get("file_name") for x in attachments):
            continue
        record = {"type": "file", "name": f.get("file_name")}
        if f.get("file_uuid"):
            record["id"] = f["file_uuid"]
        attachments.append(record)
        pieces.append(f"[file: {f.get('file_name') or f.get('file_uuid') or 'unnamed'}]")
    if attachments:
        meta["attachments"] = attachments
    return clean_text("\n\n".join(p for p in pieces if p and p.strip())), meta


def _block(block: dict, kind: str) -> str:
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "thinking":
        thinking = str(block.get("thinking") or "")
        return "_Thinking:_\n\n" + "\n".join("> " + line for line in thinking.splitlines()) if thinking.strip() else ""
    if kind == "tool_use":
        call = json.dumps(block.get("input"), ensure_ascii=False, indent=2)
        return f"Tool call `{block.get('name') or 'tool'}`:\n\n" + fenced(call, "json")
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            text = "\n\n".join(str(x.get("text") or "") for x in inner if isinstance(x, dict))
        else:
            text = str(inner or "")
        flag = " (error)" if block.get("is_error") else ""
        return f"Tool result `{block.get('name') or 'tool'}`{flag}:\n\n" + fenced(text)
    if isinstance(block.get("text"), str):
        return block["text"]
    rest = {k: v for k, v in block.items() if k not in ("type", "start_timestamp", "stop_timestamp")}
    return f"({kind or 'content'})\n\n" + fenced(json.dumps(rest, ensure_ascii=False, indent=2), "json") if rest else ""
