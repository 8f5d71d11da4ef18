"""Token usage and estimated cost of the AI's calls, as the session files record them.

Each assistant message written by `ask`, `chat` or `reflect` carries in its
header the model, the provider, ``usage`` (``input_tokens``, ``output_tokens``,
``cached_tokens``, ``estimated``) and ``cost_usd`` (a number, or null when the
model has no price: unknown, never 0). The session's front matter keeps
running totals for people (``prompt_tokens``, ``completion_tokens``,
``cost_usd``, ``unpriced_calls``); the messages stay the truth, so every
report here is computed from them.

A summary note (``summaries/``) records the calls that made it in the same
front-matter keys; `vault_usage` counts those too.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from mirrorfs import messages as msgs
from mirrorfs import note as notes
from mirrorfs.clock import time_or_none
from mirrorfs.errors import InvalidValueError, UnreadableNoteError
from mirrorfs.layout import SUMMARIES_DIR

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

GROUPINGS = ("instance", "model", "session", "provider", "day")
# Front-matter keys of the running totals (a session's, a summary's).
TOTAL_KEYS = ("prompt_tokens", "completion_tokens", "cost_usd", "unpriced_calls")
# Session files untouched for longer than this before --since cannot hold newer messages
# (clocks of synced devices drift, so the cut is generous).
_MTIME_SLACK = 86400


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        return None
    return float(value)


def message_metadata(usage: Any, model: str | None, provider: str | None, cost_usd: float | None) -> dict:
    """The header keys of an assistant message for one call (or several, summed)."""
    return {
        "model": model,
        "provider": provider,
        "usage": {"input_tokens": _int(usage.input_tokens), "output_tokens": _int(usage.output_tokens),
                  "cached_tokens": _int(getattr(usage, "cached_tokens", 0)),
                  "estimated": bool(getattr(usage, "estimated", False))},
        "cost_usd": None if cost_usd is None else round(cost_usd, 8),
        "tokens": _int(usage.output_tokens),
    }


def running_totals(meta: Mapping, metadata: Mapping) -> dict:
    """Front-matter values to set when a message with ``metadata`` is appended (empty without usage)."""
    usage = metadata.get("usage")
    if not isinstance(usage, Mapping):
        return {}
    values: dict[str, Any] = {
        "prompt_tokens": _int(meta.get("prompt_tokens")) + _int(usage.get("input_tokens")),
        "completion_tokens": _int(meta.get("completion_tokens")) + _int(usage.get("output_tokens")),
    }
    cost = _cost(metadata.get("cost_usd"))
    known = _cost(meta.get("cost_usd")) or 0.0
    values["cost_usd"] = round(known + (cost or 0.0), 8)
    if cost is None:
        values["unpriced_calls"] = _int(meta.get("unpriced_calls")) + _int(metadata.get("calls") or 1)
    return values


@dataclass
class Totals:
    """Summed usage; ``estimated_cost_usd`` is None (unknown) as soon as one call had no price."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    known_cost_usd: float = 0.0
    unpriced_calls: int = 0
    estimated_calls: int = 0
    interrupted: int = 0
    models: set = field(default_factory=set)

    def add(self, usage: Mapping, cost: float | None, calls: int = 1, model: str | None = None,
            estimated: bool = False, interrupted: bool = False) -> None:
        self.calls += calls
        self.prompt_tokens += _int(usage.get("input_tokens"))
        self.completion_tokens += _int(usage.get("output_tokens"))
        self.cached_tokens += _int(usage.get("cached_tokens"))
        if cost is None:
            self.unpriced_calls += calls
        else:
            self.known_cost_usd += cost
        self.estimated_calls += calls if estimated else 0
        self.interrupted += 1 if interrupted else 0
        if model:
            self.models.add(model)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def estimated_cost_usd(self) -> float | None:
        return None if self.unpriced_calls else round(self.known_cost_usd, 8)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens,
                "cached_tokens": self.cached_tokens, "estimated_cost_usd": self.estimated_cost_usd,
                "known_cost_usd": round(self.known_cost_usd, 8), "unpriced_calls": self.unpriced_calls,
                "estimated_calls": self.estimated_calls, "interrupted": self.interrupted,
                "models": sorted(self.models)}


def add_message(totals: Totals, message: msgs.Message) -> bool:
    """Fold one message into ``totals``; False when it records no call."""
    usage = message.meta.get("usage")
    if message.role != "assistant" or not isinstance(usage, Mapping):
        return False
    totals.add(usage, _cost(message.meta.get("cost_usd")), calls=_int(message.meta.get("calls")) or 1,
               model=message.meta.get("model"), estimated=bool(usage.get("estimated")),
               interrupted=bool(message.meta.get("interrupted")))
    return True


def session_usage(messages: Iterable[msgs.Message]) -> dict[str, Any]:
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``estimated_cost_usd`` (None = unknown), …"""
    totals = Totals()
    for message in messages:
        add_message(totals, message)
    return totals.to_dict()


def cost_text(cost: float | None, unpriced: int = 0, known: float = 0.0) -> str:
    """`$0.0123`, or `unknown` (with what is known) when a call had no price."""
    if cost is not None:
        return f"${cost:.4f}" if cost >= 0.0001 or cost == 0 else f"${cost:.6f}"
    calls = "call" if unpriced == 1 else "calls"
    rest = f"; ${known:.4f} for the rest" if known else ""
    return f"unknown ({unpriced} {calls} of models without a price{rest})"


# -- a report over the vault ---------------------------------------------------------------


@dataclass
class _Call:
    instance: str
    model: str
    provider: str
    session: str
    time: dt.datetime | None
    usage: Mapping
    cost: float | None
    calls: int
    estimated: bool
    interrupted: bool


def _session_calls(path: Path, cutoff: dt.datetime | None) -> list[_Call]:
    try:
        data = notes.read_bytes(path)
    except (UnreadableNoteError, OSError):
        return []
    if b'"usage": {' not in data:
        return []
    note = notes.parse(data, path.name)
    _, found = msgs.parse(note.body)
    calls = []
    for m in found:
        usage = m.meta.get("usage")
        if m.role != "assistant" or not isinstance(usage, Mapping) or (cutoff and m.time < cutoff):
            continue
        calls.append(_Call(m.instance, str(m.meta.get("model") or "?"), str(m.meta.get("provider") or "?"),
                           path.stem, m.time, usage, _cost(m.meta.get("cost_usd")), _int(m.meta.get("calls")) or 1,
                           bool(usage.get("estimated")), bool(m.meta.get("interrupted"))))
    return calls


def _summary_calls(path: Path, cutoff: dt.datetime | None) -> list[_Call]:
    try:
        meta = notes.read_front_matter(path)
    except (UnreadableNoteError, OSError):
        return []
    when = time_or_none(meta.get("updated"))
    if meta.get("type") != "summary" or not _int(meta.get("summary_calls")) or (cutoff and when and when < cutoff):
        return []
    usage = {"input_tokens": meta.get("prompt_tokens"), "output_tokens": meta.get("completion_tokens")}
    cost = None if _int(meta.get("unpriced_calls")) else _cost(meta.get("cost_usd"))
    source = str(meta.get("source") or path.stem).strip("[]").split("|")[0]
    return [_Call(str(meta.get("instance") or "?"), str(meta.get("model") or "?"),
                  str(meta.get("provider") or "?"), source, when, usage, cost, _int(meta.get("summary_calls")),
                  False, False)]


def _key(call: _Call, by: str) -> str:
    if by == "day":
        return call.time.astimezone().date().isoformat() if call.time else "?"
    return str(getattr(call, by))


def vault_usage(vault: "Vault", since: Any = None, by: str = "model") -> dict[str, Any]:
    """Usage of every instance's calls since ``since`` (a time or an age like 30d), grouped ``by``."""
    from mirrorfs.clock import parse_since

    if by not in GROUPINGS:
        raise InvalidValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUPINGS)}")
    cutoff = parse_since(since) if since not in (None, "") else None
    calls: list[_Call] = []
    oldest = cutoff.timestamp() - _MTIME_SLACK if cutoff else None
    for path in vault.sessions.paths():
        try:
            if oldest is not None and path.stat().st_mtime < oldest:
                continue
        except OSError:
            continue
        calls += _session_calls(path, cutoff)
    summaries = vault.root / SUMMARIES_DIR
    if summaries.is_dir():
        for path in sorted(summaries.glob("*.md")):
            calls += _summary_calls(path, cutoff)
    groups: dict[str, Totals] = {}
    total = Totals()
    for call in calls:
        for bucket in (groups.setdefault(_key(call, by), Totals()), total):
            bucket.add(call.usage, call.cost, call.calls, call.model, call.estimated, call.interrupted)
    rows = [{"key": k, **t.to_dict()} for k, t in sorted(groups.items(), key=lambda kv: (-kv[1].total_tokens, kv[0]))]
    return {"since": cutoff.isoformat(timespec="seconds") if cutoff else None, "by": by, "rows": rows,
            "total": total.to_dict()}
