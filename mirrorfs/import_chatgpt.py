"""ChatGPT data exports: `conversations.json` (in the export zip, its folder, or loose).

A conversation's `mapping` is a tree of nodes (`id`, `message` or null,
`parent`, `children`); what ChatGPT shows is the path from the root to
`current_node`. Other branches (regenerated replies, edited questions) are
counted and named in the session's preamble, not imported. Each message's
`content` has a `content_type`: text, multimodal_text (text parts plus image,
audio and file pointers), code (a tool call when `recipient` is not `all`),
execution_output (a tool's answer), tether_* (browsing), user_editable_context
(custom instructions) and more; every kind becomes readable Markdown and its
pointers are kept in the message metadata (`attachments`). System messages
marked `is_visually_hidden_from_conversation` are kept as system messages
(with `hidden: true`) when they hold text, and left out (counted) when empty.

The file is streamed one conversation at a time (ijson), so a 1 GB export
imports in bounded memory.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from mirrorfs.import_streams import conversations, export_files
from mirrorfs.importer import (
    ImportedMessage,
    ImportedSession,
    Item,
    Progress,
    Skipped,
    clean_text,
    fenced,
    from_epoch,
)
from mirrorfs.messages import ROLES

SOURCE = "chatgpt"
_FILE_ID = re.compile(r"(file[-_][A-Za-z0-9]+)")


def read(path, progress: Progress | None = None, **_: Any) -> Iterator[Item]:
    """Every conversation of the export at *path* as an ImportedSession (or a Skipped)."""
    shipped = _shipped_files(export_files(path)[1])
    for number, element in conversations(path, progress):
        yield element if isinstance(element, Skipped) else convert(element, number, shipped)


def _shipped_files(names: list[str]) -> dict[str, str]:
    """file id -> the file of the export that holds it (exports ship images beside the JSON)."""
    found: dict[str, str] = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        m = _FILE_ID.match(base)
        if m and not base.endswith(".json"):
            found.setdefault(m.group(1), name)
    return found


def _label(number: int, conv: Any) -> str:
    title = conv.get("title") if isinstance(conv, dict) else None
    return f"conversation #{number}" + (f" {json.dumps(str(title), ensure_ascii=False)}" if title else "")


def convert(conv: Any, number: int, shipped: dict[str, str] | None = None) -> ImportedSession | Skipped:
    """One conversation object of conversations.json."""
    label = _label(number, conv)
    if not isinstance(conv, dict):
        return Skipped(label, "not a JSON object")
    cid = conv.get("conversation_id") or conv.get("id")
    if not isinstance(cid, str) or not cid:
        return Skipped(label, 'it has no "conversation_id"')
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        return Skipped(label, 'it has no "mapping" of messages')
    try:
        return _session(conv, cid, mapping, f"{label} ({cid})", shipped or {})
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return Skipped(f"{label} ({cid})", f"unexpected shape of its data ({type(exc).__name__}: {exc})")


def shown_branch(mapping: dict, current: Any) -> tuple[list[str], bool]:
    """Node ids from the root to *current* (cycle-safe); (path, True) when current_node was usable."""
    ok = isinstance(current, str) and current in mapping
    if not ok:
        # No usable current_node: follow the newest leaf, as the app would show it.
        leaves = [k for k, n in mapping.items() if isinstance(n, dict) and not n.get("children")]
        current = max(leaves, key=lambda k: _node_time(mapping[k]), default=None)
    path: list[str] = []
    seen: set[str] = set()
    while isinstance(current, str) and current in mapping and current not in seen:
        seen.add(current)
        path.append(current)
        node = mapping[current]
        current = node.get("parent") if isinstance(node, dict) else None
    return path[::-1], ok


def _node_time(node: dict) -> float:
    msg = node.get("message")
    t = msg.get("create_time") if isinstance(msg, dict) else None
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0


def _session(conv: dict, cid: str, mapping: dict, label: str, shipped: dict[str, str]) -> ImportedSession:
    path, current_ok = shown_branch(mapping, conv.get("current_node"))
    on_path = set(path)
    messages: list[ImportedMessage] = []
    left_out = 0
    for node_id in path:
        node = mapping[node_id]
        msg = node.get("message") if isinstance(node, dict) else None
        if not isinstance(msg, dict):
            continue  # the root and other structural nodes carry no message
        converted = message(msg, shipped)
        if converted is None:
            left_out += 1
        else:
            messages.append(converted)
    off_branch = sum(
        1 for k, n in mapping.items()
        if k not in on_path and isinstance(n, dict) and isinstance(n.get("message"), dict)
        and message(n["message"], shipped) is not None
    )
    other_leaves = sum(1 for k, n in mapping.items()
                       if k not in on_path and isinstance(n, dict) and not n.get("children"))
    preamble = [f"Imported from ChatGPT (conversation `{cid}`)."]
    extra: dict[str, Any] = {}
    if off_branch:
        extra["origin_branches"] = other_leaves
        preamble.append(
            f"The export holds {other_leaves} other branch{'es' if other_leaves != 1 else ''} of this conversation "
            f"({off_branch} message{'s' if off_branch != 1 else ''}: regenerated or edited turns) that "
            "ChatGPT did not show last; only the shown branch is imported.")
    if not current_ok and path:
        preamble.append("The export names no usable current message: the newest branch is imported.")
    if conv.get("default_model_slug"):
        extra["origin_model"] = str(conv["default_model_slug"])
    updated = conv.get("update_time")
    return ImportedSession(
        origin_id=cid,
        title=str(conv.get("title") or ""),
        messages=messages,
        label=label,
        created=from_epoch(conv.get("create_time")),
        updated=from_epoch(updated),
        version=None if updated is None else repr(updated),
        preamble=preamble,
        left_out=left_out,
        extra=extra,
        off_branch=off_branch,
    )


def message(msg: dict, shipped: dict[str, str] | None = None) -> ImportedMessage | None:
    """A ChatGPT message as an ImportedMessage; None for one with nothing to show."""
    author = msg.get("author") if isinstance(msg.get("author"), dict) else {}
    role = str(author.get("role") or "assistant")
    content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
    kind = str(content.get("content_type") or "text")
    metadata = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
    text, attachments = content_text(content, metadata, shipped or {})
    if not text.strip() and not attachments:
        return None
    meta: dict[str, Any] = {}
    if role not in ROLES:
        meta["origin_role"] = role
        role = "tool"
    if kind != "text":
        meta["content_type"] = kind
    if author.get("name"):
        meta["tool" if role == "tool" else "author"] = str(author["name"])
    recipient = msg.get("recipient")
    if isinstance(recipient, str) and recipient not in ("all", ""):
        meta["recipient"] = recipient  # a call to that tool
    if metadata.get("model_slug"):
        meta["model"] = str(metadata["model_slug"])
    if metadata.get("is_visually_hidden_from_conversation"):
        meta["hidden"] = True
    if attachments:
        meta["attachments"] = attachments
    mid = msg.get("id")
    return ImportedMessage(role=role, content=text, time=from_epoch(msg.get("create_time")),
                           origin_id=str(mid) if mid is not None else None, meta=meta)


def content_text(content: dict, metadata: dict, shipped: dict[str, str]) -> tuple[str, list[dict]]:
    """(Markdown a person reads, attachment records) for one message content."""
    kind = str(content.get("content_type") or "text")
    named = {str(a.get("id")): a for a in metadata.get("attachments") or [] if isinstance(a, dict) and a.get("id")}
    attachments: list[dict] = []
    pieces: list[str] = []
    if kind in ("text", "multimodal_text"):
        for part in content.get("parts") or []:
            pieces.append(_part(part, named, attachments, shipped))
    elif kind == "code":
        lang = str(content.get("language") or "")
        pieces.append(fenced(str(content.get("text") or ""), "" if lang in ("", "unknown") else lang))
    elif kind == "execution_output":
        pieces.append(fenced(str(content.get("text") or "")))
    elif kind == "tether_browsing_display":
        pieces += [str(content.get("result") or ""), str(content.get("summary") or "")]
    elif kind == "tether_quote":
        quote = "\n".join("> " + line for line in str(content.get("text") or "").splitlines())
        pieces += [quote, f"— {content.get('title') or content.get('domain') or ''} {content.get('url') or ''}".strip()]
    elif kind == "system_error":
        pieces.append(f"Error ({content.get('name') or 'system'}): {content.get('text') or ''}")
    elif kind == "user_editable_context":
        pieces += [str(content.get("user_profile") or ""), str(content.get("user_instructions") or "")]
    elif kind == "model_editable_context":
        pieces.append(str(content.get("model_set_context") or ""))
    elif kind == "thoughts":
        for thought in content.get("thoughts") or []:
            if isinstance(thought, dict):
                pieces.append("\n".join(x for x in (f"**{thought.get('summary')}**" if thought.get("summary") else "",
                                                    str(thought.get("content") or "")) if x))
    elif kind == "reasoning_recap":
        pieces.append(str(content.get("content") or ""))
    else:
        pieces.append(_unknown(content))
    for file_id, a in named.items():
        if not any(x.get("id") == file_id for x in attachments):
            attachments.append(_attachment("file", file_id, a, shipped))
            pieces.append(_attachment_line(attachments[-1]))
    return clean_text("\n\n".join(p for p in pieces if p and p.strip())), attachments


def _part(part: Any, named: dict, attachments: list[dict], shipped: dict[str, str]) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return "" if part is None else json.dumps(part, ensure_ascii=False)
    ptype = str(part.get("content_type") or "")
    if ptype == "audio_transcription":
        return str(part.get("text") or "")
    if ptype.endswith("asset_pointer"):
        pointer = str(part.get("asset_pointer") or "")
        file_id = pointer.split("://", 1)[-1]
        kind = "image" if ptype.startswith("image") else "audio" if ptype.startswith("audio") else "file"
        record = _attachment(kind, file_id, named.get(file_id, {}), shipped)
        record["pointer"] = pointer
        for key in ("width", "height", "size_bytes"):
            if isinstance(part.get(key), int):
                record[key] = part[key]
        if isinstance(part.get("metadata"), dict) and part["metadata"].get("dalle"):
            record["generated"] = True
        attachments.append(record)
        return _attachment_line(record)
    if "text" in part:
        return str(part.get("text") or "")
    return _unknown(part)


def _attachment(kind: str, file_id: str, named: dict, shipped: dict[str, str]) -> dict:
    record: dict[str, Any] = {"type": kind, "id": file_id}
    for src, dst in (("name", "name"), ("mime_type", "mime_type"), ("size", "size_bytes")):
        if named.get(src) is not None:
            record[dst] = named[src]
    m = _FILE_ID.search(file_id)
    if m and m.group(1) in shipped:
        record["file"] = shipped[m.group(1)]
    return record


def _attachment_line(a: dict) -> str:
    size = f"{a['width']}×{a['height']}" if "width" in a and "height" in a else (
        f"{a['size_bytes']} bytes" if "size_bytes" in a else "")
    details = " · ".join(str(x) for x in (a.get("name") or a["id"], a.get("mime_type"), size) if x)
    where = f" (in the export: `{a['file']}`)" if a.get("file") else ""
    return f"[{a['type']}: {details}]{where}"


def _unknown(obj: dict) -> str:
    """Any other content: its text where it has some, else its JSON (never dropped)."""
    for key in ("parts", "text", "result", "content"):
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value) and any(v.strip() for v in value):
            return "\n\n".join(value)
    rest = {k: v for k, v in obj.items() if k != "content_type"}
    return fenced(json.dumps(rest, ensure_ascii=False, indent=2), "json") if rest else ""
