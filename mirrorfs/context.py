"""The context builder: the one way a prompt is made, for `ask`, `chat`, `reflect` and MCP alike.

`build_context` returns a `ContextBundle` of items within a token budget,
each with its path, kind, sha256, tokens, score, why it was chosen and its
text; ``bundle.messages()`` renders them as provider messages. Pinned first:
SOUL.md and what the other instances did lately. Then, by strategy:

* ``recent`` — this session's latest messages (starting on a user turn);
* ``relevant`` — recall for the query across memories and every instance's
  sessions, without near-duplicates, then this session's latest messages;
* ``summarized`` — the session's older turns as a summary note (see
  mirrorfs.summaries), its newest turns verbatim, then what is relevant.

The message being answered (``message``) is the last item (kind ``input``) and
counts in the budget. Tokens are estimated as UTF-8 bytes / 4 plus per-message overhead,
calibrated per model by the usage providers reported (mirrorfs.tokens); the
rendered messages never exceed ``budget_tokens`` by that estimate. Locked
sections appear as placeholders unless the vault is unlocked and the caller
passed ``include_locked=True``.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from mirrorfs import context_sources as sources
from mirrorfs import summaries, tokens
from mirrorfs.errors import InvalidValueError, MirrorfsError
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.llm import Provider
    from mirrorfs.session import Session
    from mirrorfs.vault import Vault

STRATEGIES = ("recent", "relevant", "summarized")
DEFAULT_BUDGET = 2000
MIN_BUDGET = 50
# Shares of what is left after the message being answered: pinned items are cut to these.
SOUL_SHARE = 0.5
ACTIVITY_SHARE = 0.2
PINNED_SHARE = 0.3
# Less room than this is not worth an item's header.
MIN_ITEM = 40
# Of what is left after the pinned items, recall may take this much (the session's turns the rest).
RELEVANT_SHARE = 0.6
_CUT = " …"


@dataclass
class ContextItem:
    """One piece of a prompt. ``role`` is "system" for parts of the system message, else the role of
    a message of its own; ``tokens`` is what it adds to the prompt (estimated)."""

    kind: str
    path: str | None
    sha256: str | None
    tokens: int
    score: float | None
    why: str
    text: str
    role: str = "system"
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, text: bool = True) -> dict[str, Any]:
        data = {"kind": self.kind, "path": self.path, "sha256": self.sha256, "tokens": self.tokens,
                "score": self.score, "why": self.why, "role": self.role, "title": self.title, "meta": self.meta}
        if text:
            data["text"] = self.text
        return data


@dataclass
class ContextBundle:
    """The items of one prompt, in the order they are sent, and what was left out (``skipped``)."""

    instance: str
    strategy: str
    query: str | None
    budget_tokens: int
    model: str | None
    items: list[ContextItem]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    session: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The provider messages: one system message of the system items, then the others in order."""
        system = "\n\n".join(i.text for i in self.items if i.role == "system")
        out = [{"role": "system", "content": system}] if system else []
        return out + [{"role": i.role, "content": i.text} for i in self.items if i.role != "system"]

    @property
    def used_tokens(self) -> int:
        return tokens.estimate_messages(self.messages(), self.model) if self.items else 0

    def kinds(self) -> list[str]:
        return [i.kind for i in self.items]

    def to_dict(self, text: bool = True) -> dict[str, Any]:
        data = {"instance": self.instance, "strategy": self.strategy, "query": self.query,
                "session": self.session, "budget_tokens": self.budget_tokens, "used_tokens": self.used_tokens,
                "model": self.model, "items": [i.to_dict(text) for i in self.items], "skipped": self.skipped,
                "notes": self.notes}
        if text:
            data["messages"] = self.messages()
        return data

    def render(self) -> str:
        """The items as Markdown sections (what an MCP client reads)."""
        return "\n\n".join(i.text if i.role == "system" else f"## {i.role}\n\n{i.text}" for i in self.items)


class Budget:
    """Tokens left, and what a text costs in the prompt (calibrated for ``model``)."""

    def __init__(self, total: int, model: str | None):
        self.model = model
        self.ratio = tokens.ratio(model)
        self.total = total
        # The system message's own overhead and the reply priming are paid once.
        self.left = total - math.ceil((tokens.MESSAGE_OVERHEAD + tokens.REPLY_OVERHEAD) * self.ratio)

    def cost(self, text: str, own_message: bool = False) -> int:
        """Tokens ``text`` adds: its own message (with overhead) or a system part (with its separator)."""
        if own_message:
            return math.ceil((tokens.raw_text_tokens(text) + tokens.MESSAGE_OVERHEAD) * self.ratio)
        return math.ceil(tokens.raw_text_tokens(text + "\n\n") * self.ratio)

    def cut(self, text: str, limit: int, own_message: bool = False, keep_end: bool = False) -> str:
        """The longest start (or end) of ``text`` that costs at most ``limit``, cut at a line or word."""
        if self.cost(text, own_message) <= limit:
            return text
        overhead = tokens.MESSAGE_OVERHEAD if own_message else 1
        room = max(0, int((limit / self.ratio - overhead - 1) * tokens.BYTES_PER_TOKEN) - len(_CUT.encode()))
        data = text.encode("utf-8")
        piece = (data[len(data) - room:] if keep_end else data[:room]).decode("utf-8", "ignore")
        for stop in ("\n", " "):
            at = piece.find(stop) if keep_end else piece.rfind(stop)
            if keep_end and 0 <= at < len(piece) // 2:
                piece = piece[at + 1:]
                break
            if not keep_end and at > len(piece) // 2:
                piece = piece[:at]
                break
        piece = piece.strip()
        cut = ("…" + piece) if keep_end else (piece + _CUT)
        while piece and self.cost(cut, own_message) > limit:
            piece = piece[1:] if keep_end else piece[:-1]
            cut = ("…" + piece) if keep_end else (piece + _CUT)
        return cut if piece else ""

    def take(self, cost: int) -> bool:
        if cost > self.left:
            return False
        self.left -= cost
        return True


def _check(vault: "Vault", strategy: str, budget_tokens: Any, include_locked: bool) -> None:
    if strategy not in STRATEGIES:
        raise InvalidValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < MIN_BUDGET:
        raise InvalidValueError(f"the budget must be a whole number of tokens, at least {MIN_BUDGET} "
                                f"(got {budget_tokens!r})")
    if include_locked:
        sources.shown(vault, "", include_locked=True)  # LockedError when the vault is locked


def _session(vault: "Vault", session: "Session | str | None") -> "Session | None":
    if session is None or not isinstance(session, str):
        return session
    return vault.sessions.load(session)


class _Builder:
    def __init__(self, vault: "Vault", budget: Budget, include_locked: bool):
        self.vault = vault
        self.budget = budget
        self.include_locked = include_locked
        self.system: list[ContextItem] = []
        self.history: list[ContextItem] = []
        self.skipped: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def skip(self, source: sources.Source | ContextItem, reason: str) -> None:
        self.skipped.append({"kind": source.kind, "path": source.path, "title": source.title, "reason": reason})

    def pinned(self, source: sources.Source | None, share: float) -> None:
        if source is None:
            return
        cap = int(self.budget.left * share)
        text = self.budget.cut(source.text, cap)
        if not text:
            self.skip(source, f"no room in the budget (about {self.budget.cost(source.text)} tokens)")
            return
        why = source.why + ("" if text == source.text else ", cut to fit the budget")
        self.add(ContextItem(source.kind, source.path, source.sha256, self.budget.cost(text), source.score, why,
                             text, title=source.title, meta=source.meta))

    def add(self, item: ContextItem) -> bool:
        if not self.budget.take(item.tokens):
            self.skip(item, f"over the budget ({item.tokens} tokens, {self.budget.left} left)")
            return False
        (self.system if item.role == "system" else self.history).append(item)
        return True

    def turns(self, turns: list[sources.Turn], total: int, room: int | None = None) -> None:
        """The newest turns that fit (all that is left, or ``room``), oldest first, starting on a user turn."""
        room = self.budget.left if room is None else min(room, self.budget.left)
        chosen: list[tuple[sources.Turn, str, int]] = []
        used = 0
        for t in reversed(turns):
            c = self.budget.cost(t.text, own_message=True)
            if used + c > room:
                if not chosen and room - used >= 40:
                    # The latest message alone is too long: its end is what the reply follows.
                    text = self.budget.cut(t.text, room - used, own_message=True, keep_end=True)
                    if text:
                        chosen.append((t, text, self.budget.cost(text, own_message=True)))
                break
            chosen.append((t, t.text, c))
            used += c
        chosen.reverse()
        while chosen and chosen[0][0].role != "user":
            chosen.pop(0)
        left_out = len(turns) - len(chosen)
        if left_out:
            self.skipped.append({"kind": "turn", "path": None, "title": "",
                                 "reason": f"{left_out} older messages of this session did not fit"})
        for t, text, c in chosen:
            cut = "" if text == t.text else ", its start cut to fit"
            self.add(ContextItem("turn", None, None, c, None,
                                 f"recent: message {t.index + 1} of {total} in this session ({t.role}){cut}",
                                 text, role=t.role, meta={"message_id": t.id, "instance": t.instance,
                                                          "time": t.time.isoformat()}))

    def relevant(self, found: "Future", room: int, avoid: Iterable[str], skip_path: str | None) -> None:
        try:
            found = found.result()
        except MirrorfsError as exc:
            self.notes.append(f"recall failed, nothing relevant added: {exc}")
            return
        kept = [sources.shingles(t) for t in avoid]
        per_item = max(80, room // 3)
        used = 0
        for n, s in enumerate(found):
            if room - used < MIN_ITEM:
                self.skipped.append({"kind": "relevant", "path": None, "title": "",
                                     "reason": f"{len(found) - n} more relevant items did not fit"})
                break
            if s.kind == "message" and skip_path and s.path == skip_path:
                continue  # this session: its own turns (or their summary) are shown already
            text = sources.shown(self.vault, s.text, self.include_locked).strip()
            marks = sources.shingles(text)
            twin = next((i for i, other in enumerate(kept) if sources.near_duplicate(marks, other)), None)
            if twin is not None or not text:
                self.skip(s, "near-duplicate of an item already in the context" if text else "empty")
                continue
            if s.kind == "memory":
                head = f"## Memory: {s.title} ({s.path}, updated {s.meta.get('updated')})\n\n"
            else:
                head = (f"## From a conversation: {s.meta.get('instance')} in \"{s.title}\", "
                        f"{s.meta.get('time')} ({s.path})\n\n")
            block = self.budget.cut(head + text, min(per_item, room - used))
            if len(block) <= len(head) + 8:
                self.skip(s, f"over the budget (about {self.budget.cost(head + text)} tokens)")
                continue
            why = s.why + ("" if block == head + text else ", cut to fit")
            item = ContextItem(s.kind, s.path, s.sha256, self.budget.cost(block), s.score, why, block,
                               title=s.title, meta=s.meta)
            if self.add(item):
                used += item.tokens
                kept.append(marks)

    def summarized(self, session: "Session", turns: list[sources.Turn], locked_turns: list[sources.Turn],
                   provider: "Provider | None", room: int) -> list[sources.Turn]:
        """Put the session's summary in; return the turns still to show verbatim."""
        cost = lambda text: self.budget.cost(text, own_message=True)  # noqa: E731
        plan = summaries.plan(self.vault, session, locked_turns, room, cost, provider)
        self.notes += plan.notes
        if plan.summary is None:
            return turns
        s = plan.summary
        how = "made now" if plan.made else f"made by {s.made_by}, reused"
        head = f"## Earlier in this conversation (summary of {s.messages} messages, {s.path})\n\n"
        text = self.budget.cut(head + s.body, max(0, room - min(room // 2, self._tail_cost(turns[plan.covered:]))))
        if len(text) > len(head):
            self.add(ContextItem("summary", s.path, s.sha256, self.budget.cost(text), None,
                                 f"summarized: the first {s.messages} messages of this session ({how})", text,
                                 title=str(s.meta.get("title") or ""), meta={"through": s.through,
                                                                             "made": plan.made}))
        else:
            self.skip(ContextItem("summary", s.path, s.sha256, 0, None, "", s.body), "no room in the budget")
        return turns[plan.covered:]

    def _tail_cost(self, turns: list[sources.Turn]) -> int:
        return sum(self.budget.cost(t.text, own_message=True) for t in turns)


def build_context(vault: "Vault", query: str | None = None, strategy: str = "recent",
                  budget_tokens: int = DEFAULT_BUDGET, session: "Session | str | None" = None,
                  include_locked: bool = False, message: str | None = None, model: str | None = None,
                  provider: "Provider | None" = None, exclude: Iterable[str] = (),
                  activity_days: float = sources.ACTIVITY_DAYS,
                  pinned: Iterable[sources.Source] = ()) -> ContextBundle:
    """The context for answering ``message`` (or for ``query``) in ``session``; see the module docstring.

    ``provider`` is used only by ``summarized``, to fold older turns into the
    session's summary note (without one, an existing summary is still used).
    ``exclude`` names message ids of the session not to show (the message
    being answered, already written). ``pinned`` are more texts to pin after
    SOUL.md and the other instances (a reflective pattern's instructions). Raises InvalidValueError when the
    message alone is over the budget, LockedError for ``include_locked`` on a
    locked vault.
    """
    _check(vault, strategy, budget_tokens, include_locked)
    model = model or (provider.settings.model if provider is not None else None)
    target = _session(vault, session)
    question = (query or message or "").strip()
    # Recall waits on the index (the watcher's, usually) while the pinned items read the vault: overlap them.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirrorfs-recall") as pool:
        found = pool.submit(sources.relevant, vault, question) if question and strategy != "recent" else None
        return _build(vault, strategy, budget_tokens, target, include_locked, message, model, provider, exclude,
                      activity_days, pinned, question, found)


def _build(vault: "Vault", strategy: str, budget_tokens: int, target: "Session | None", include_locked: bool,
           message: str | None, model: str | None, provider: "Provider | None", exclude: Iterable[str],
           activity_days: float, pinned: Iterable[sources.Source], question: str,
           found: "Future | None") -> ContextBundle:
    budget = Budget(budget_tokens, model)
    b = _Builder(vault, budget, include_locked)
    tail: list[ContextItem] = []
    if message is not None:
        text = sources.shown(vault, message, include_locked)
        cost = budget.cost(text, own_message=True)
        if not budget.take(cost):
            raise InvalidValueError(f"the message alone is about {cost} tokens, over the budget of {budget_tokens}; "
                                    "give a larger budget")
        tail.append(ContextItem("input", None, sha256(text.encode("utf-8")), cost, None,
                                "the message being answered", text, role="user"))
    b.pinned(sources.soul(vault, include_locked), SOUL_SHARE)
    b.pinned(sources.activity(vault, days=activity_days), ACTIVITY_SHARE)
    for extra in pinned:
        b.pinned(extra, PINNED_SHARE)
    excluded = frozenset(exclude)
    stored = target.get_messages() if target is not None else []
    turns = sources.turns(vault, target, include_locked, excluded, stored)
    total = len(stored)
    avoid = [message] if message else []
    if strategy == "recent":
        b.turns(turns, total)
    elif strategy == "relevant":
        if found is not None:
            b.relevant(found, int(budget.left * RELEVANT_SHARE), avoid + [t.text for t in turns],
                       target.relpath if target is not None else None)
        else:
            b.notes.append("relevant needs a query or a message: nothing was recalled")
        b.turns(turns, total)
    else:
        if target is not None and turns:
            locked = turns if not include_locked else sources.turns(vault, target, False, excluded, stored)
            room = int(budget.left * (RELEVANT_SHARE if question else 1.0))
            turns = b.summarized(target, turns, locked, provider, room)
            b.turns(turns, total, room=room - sum(i.tokens for i in b.system if i.kind == "summary"))
        if found is not None and budget.left > 40:
            b.relevant(found, budget.left, avoid + [t.text for t in turns],
                       target.relpath if target is not None else None)
    bundle = ContextBundle(vault.instance, strategy, question or None, budget_tokens, model,
                           b.system + b.history + tail, b.skipped, b.notes,
                           session=target.id if target is not None else None)
    # The per-item costs are an upper bound of the whole; this check is the guarantee.
    while bundle.used_tokens > budget_tokens and len(bundle.items) > len(tail):
        dropped = bundle.items.pop(len(bundle.items) - len(tail) - 1)
        b.skip(dropped, "dropped to stay within the budget")
    return bundle
