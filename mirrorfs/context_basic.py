"""A context bundle within a token budget, until the providers' context builder exists.

SOUL.md is pinned first; then, by strategy, what was recalled for the query
(`relevant`), the newest memories (`recent`) or a list of memory titles
(`summarized`, a stand-in until summaries are files); then the tail of this
instance's latest session. Tokens are estimated as UTF-8 bytes / 4. Locked
sections appear as placeholders. `build_context` is the one function the
replacement has to provide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mirrorfs import lookup
from mirrorfs.errors import InvalidValueError, MirrorfsError

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

STRATEGIES = ("recent", "relevant", "summarized")
MIN_BUDGET = 100
MAX_BUDGET = 4000
SESSION_MESSAGES = 12


def estimate_tokens(text: str) -> int:
    """Tokens of *text*, estimated as its UTF-8 bytes / 4 (rounded up)."""
    return (len(text.encode("utf-8")) + 3) // 4


def _cut(text: str, tokens: int) -> str:
    """The longest start of *text* within *tokens*, ending at a line or word when possible."""
    limit = tokens * 4
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    head = data[: max(0, limit - 4)].decode("utf-8", "ignore")
    for stop in ("\n", " "):
        at = head.rfind(stop)
        if at > len(head) // 2:
            head = head[:at]
            break
    return head.rstrip() + " …"


def _soul(vault: "Vault") -> dict | None:
    try:
        note = vault.soul
    except (MirrorfsError, FileNotFoundError):
        return None
    return {"kind": "soul", "path": "SOUL.md", "title": "SOUL.md", "text": vault.readable(note.body).strip()}


def _memories(vault: "Vault", query: str | None, strategy: str) -> list[dict]:
    if strategy == "relevant" and query:
        hits = lookup.recall(vault, query, limit=10)["hits"]
        return [{"kind": "memory", "path": h["path"], "title": h.get("title", ""),
                 "text": h.get("snippet", "")} for h in hits]
    found = vault.memory.list(limit=40 if strategy == "summarized" else 10)
    if strategy == "summarized":
        lines = "\n".join(f"- {m.title} ({m.path})" for m in found)
        return [{"kind": "memory_index", "path": "memory/", "title": "Memory titles", "text": lines}] if found else []
    return [{"kind": "memory", "path": m.path, "title": m.title, "text": m.body} for m in found]


def _session(vault: "Vault") -> dict | None:
    latest = vault.sessions.list(instance=vault.instance, limit=1, include_ephemeral=False)
    if not latest:
        return None
    s = latest[0]
    messages = s.get_messages()[-SESSION_MESSAGES:]
    text = "\n\n".join(f"{m.role}: {vault.readable(m.content).strip()}" for m in messages)
    return {"kind": "session", "path": s.relpath, "title": s.title, "text": text}


def build_context(vault: "Vault", query: str | None = None, strategy: str = "recent",
                  budget_tokens: int = 2000) -> dict[str, Any]:
    """{strategy, budget_tokens, used_tokens, truncated, sections: [{kind, path, title, text, tokens}]}."""
    if strategy not in STRATEGIES:
        raise InvalidValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) \
            or not MIN_BUDGET <= budget_tokens <= MAX_BUDGET:
        raise InvalidValueError(f"budget_tokens must be a whole number from {MIN_BUDGET} to {MAX_BUDGET}")
    if strategy == "relevant" and not (query or "").strip():
        raise InvalidValueError("strategy relevant needs a query")
    soul = _soul(vault)
    session = _session(vault)
    memories = _memories(vault, query, strategy)
    # SOUL first, the session before the memories when only recency counts.
    ordered = [soul] + ([session] + memories if strategy == "recent" else memories + [session])
    sections, used, truncated = [], 0, False
    for item in ordered:
        if not item or not item["text"]:
            continue
        # A section's header costs a little too: path and title travel with it.
        left = budget_tokens - used - estimate_tokens(item["path"] + item["title"]) - 8
        if left < 20:
            truncated = True
            break
        text = _cut(item["text"], left)
        truncated = truncated or text != item["text"]
        tokens = estimate_tokens(text)
        sections.append({**item, "text": text, "tokens": tokens})
        used += tokens + estimate_tokens(item["path"] + item["title"]) + 8
    return {"strategy": strategy, "query": query, "budget_tokens": budget_tokens, "used_tokens": used,
            "truncated": truncated, "sections": sections}
