"""Asking the AI: the conversation is the file.

`ask_stream(vault, text, ...)` writes the user's message to this instance's
session *before* calling the provider (so it is never lost), builds the
context (mirrorfs.context), streams the reply and appends it with the model,
provider, usage and estimated cost in the message's metadata; the session's
front matter keeps running totals. Events, in order:

* ``saved`` — the user's message is in the file (``session``, ``message``); the
  context was read just before, so it does not wait for a watcher indexing the write;
* ``context`` — the bundle that is sent (``bundle``);
* ``text`` — a piece of the reply (``text``), as it arrives;
* ``done`` — the `AskResult` (``result``).

A stream that breaks after some text keeps the partial reply, marked
``interrupted`` with the reason, then raises the provider's error; so does a
caller that stops early (Ctrl-C, ``close()`` on the iterator). A provider
error before any text keeps the user's message and raises, one line.
`ask` is the same, waited for. `dry_run` is what would be sent, with no call
and no write (no API key needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from mirrorfs import context as context_mod
from mirrorfs import markers, patterns, pricing, tokens, usage
from mirrorfs.context_sources import Source
from mirrorfs.errors import (
    InvalidValueError,
    ProviderConfigError,
    ProviderError,
    StreamInterruptedError,
)
from mirrorfs.llm import Completion, Usage
from mirrorfs.messages import Message
from mirrorfs.overview import soul_name
from mirrorfs.session import Session
from mirrorfs.session_log import SessionLog
from mirrorfs.slug import title_from_text
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.context import ContextBundle
    from mirrorfs.llm import Provider, ProviderSettings
    from mirrorfs.vault import Vault

DEFAULT_STRATEGY = "relevant"


@dataclass
class AskResult:
    """One exchange: the session, both messages, the completion and the context that was sent."""

    session: Session
    question: Message
    answer: Message | None
    completion: Completion | None
    bundle: "ContextBundle | None"
    cost_usd: float | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.answer.content if self.answer else ""

    def to_dict(self) -> dict[str, Any]:
        c = self.completion
        return {"session": self.session.id, "path": self.session.relpath, "question_id": self.question.id,
                "answer_id": self.answer.id if self.answer else None, "text": self.text,
                "model": c.model if c else None, "provider": c.provider if c else None,
                "stop_reason": c.stop_reason if c else None, "usage": c.usage.to_dict() if c else None,
                "estimated_cost_usd": self.cost_usd, "interrupted": self.interrupted,
                "context": self.bundle.to_dict(text=False) if self.bundle else None,
                "answer_meta": self.answer.meta if self.answer else None, "notes": self.notes}


@dataclass
class AskEvent:
    type: str
    text: str = ""
    session: Session | None = None
    message: Message | None = None
    bundle: "ContextBundle | None" = None
    result: AskResult | None = None


def pattern_source(vault: "Vault", pattern: patterns.Pattern) -> Source:
    """A reflective pattern's instructions as a pinned context item."""
    text = patterns.instructions(pattern, soul_name(vault))
    return Source("pattern", pattern.path, sha256(text.encode("utf-8")), pattern.title, text,
                  why=f"pinned: the reflective pattern {pattern.name} ({pattern.source})",
                  meta={"pattern": pattern.name})


def _own(vault: "Vault", ref: "Session | str") -> Session:
    found = ref if isinstance(ref, Session) else vault.sessions.load(ref)
    if not found.ephemeral and found.path.parent != vault.sessions.folder_of(vault.instance):
        raise InvalidValueError(f"session {found.id} belongs to instance {found.meta.get('instance') or found.path.parent.name}; "
                                f"each instance writes only its own sessions (omit --session, or use --new)")
    return found


def latest_session(vault: "Vault", open_only: bool = True) -> Session | None:
    """This instance's most recently updated session in the vault (open ones only, by default)."""
    found = vault.sessions.list(instance=vault.instance, status="open" if open_only else None, limit=1,
                                include_ephemeral=False)
    return found[0] if found else None


def choose_session(vault: "Vault", text: str, session: "Session | str | None" = None, new: bool = False,
                   title: str | None = None) -> tuple[Session, bool]:
    """(the session to write to, whether it was created): ``session``; else this instance's latest open
    one; ``new`` starts one linked after ``session`` (or after the latest)."""
    before = _own(vault, session) if session is not None else None
    if not new:
        found = before or latest_session(vault)
        if found is not None:
            return found, False
    previous = before or (latest_session(vault, open_only=False) if new else None)
    name = (title or "").strip() or title_from_text(vault.readable(text))
    return vault.sessions.create(name, previous=previous.id if previous else None), True


def cost_of(completion: Completion, notes: list[str]) -> float | None:
    """The estimated USD cost of ``completion`` (None when unknown; a broken prices.yaml is a note)."""
    try:
        return pricing.cost(completion.usage, completion.model, completion.provider)
    except ProviderConfigError as exc:
        notes.append(f"no cost: {exc}")
        return None


def open_provider(provider: "Provider | str | None", settings: dict) -> tuple["Provider", bool]:
    """(the provider to use, whether the caller must close it): ``provider`` itself, or one made by name."""
    if provider is not None and not isinstance(provider, str):
        return provider, False
    providers = _providers()
    return providers.get_provider(provider, **{k: v for k, v in settings.items() if v is not None}), True


def _providers():
    """mirrorfs.providers, imported on first use: it needs httpx (the `ai` extra), which a dry run does not."""
    try:
        from mirrorfs import providers
    except ImportError as exc:
        raise ProviderConfigError(f"the providers need the ai extra: pip install 'mirrorfs[ai]' ({exc})") from None
    return providers


def _answer_meta(completion: Completion, cost: float | None, question: Message, bundle: "ContextBundle",
                 pattern: patterns.Pattern | None, parsed: markers.Parsed | None) -> dict:
    meta = usage.message_metadata(completion.usage, completion.model, completion.provider, cost)
    meta.update(stop_reason=completion.stop_reason, in_reply_to=question.id, strategy=bundle.strategy,
                context_tokens=bundle.used_tokens)
    if pattern is not None and parsed is not None:
        meta.update(pattern=pattern.name, uncertainty=parsed.uncertainty, glyphs=parsed.glyphs)
    return meta


def _keep_partial(session: Session, text: str, usage_so_far: Usage | None, messages: list[dict],
                  model: str | None, provider_name: str, question: Message, bundle: "ContextBundle",
                  reason: str, notes: list[str], sealed: bool) -> Message | None:
    """The partial reply, marked interrupted (None when nothing had arrived)."""
    if not text.strip():
        return None
    if usage_so_far is None:
        usage_so_far = Usage(tokens.estimate_messages(messages, model), tokens.estimate_text(text, model),
                             estimated=True)
    partial = Completion(text, None, model or "?", provider_name, usage_so_far)
    meta = _answer_meta(partial, cost_of(partial, notes), question, bundle, None, None)
    meta.update(interrupted=True, interrupt_reason=reason)
    return session.add_message("assistant", text, secret=sealed, **meta)


def ask_stream(vault: "Vault", text: str, *, session: "Session | str | None" = None, new: bool = False,
               title: str | None = None, provider: "Provider | str | None" = None, model: str | None = None,
               base_url: str | None = None, profile: str | None = None, strategy: str = DEFAULT_STRATEGY,
               budget_tokens: int = context_mod.DEFAULT_BUDGET, include_locked: bool = False,
               pattern: patterns.Pattern | None = None, max_tokens: int | None = None, temperature: float | None = None,
               pinned: Iterable[Source] = ()) -> Iterator[AskEvent]:
    """Ask in this instance's session and stream the reply; see the module docstring."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError("ask needs a message")
    if strategy not in context_mod.STRATEGIES:
        raise InvalidValueError(f"unknown strategy {strategy!r}: use one of {', '.join(context_mod.STRATEGIES)}")
    target, _ = choose_session(vault, text, session, new, title)
    log = SessionLog(vault)
    notes: list[str] = []
    llm, owned = None, False
    try:
        llm, owned = open_provider(provider, {"model": model, "base_url": base_url, "profile": profile})
        extra = list(pinned) + ([pattern_source(vault, pattern)] if pattern is not None else [])
        # Read before the user's message is written: a running watcher indexing that write would
        # hold up the searches the context needs. The message is still in the file before the call.
        bundle = context_mod.build_context(vault, query=text, strategy=strategy, budget_tokens=budget_tokens,
                                           session=target, include_locked=include_locked, message=text,
                                           provider=llm, model=model or llm.settings.model, pinned=extra)
    except BaseException:
        # No provider, no key, a failed summary, Ctrl-C: the message is kept all the same.
        question = log.append("user", text, session=target.id).message
        if owned:
            llm.close()
        yield AskEvent("saved", session=target, message=question)
        raise
    question = log.append("user", text, session=target.id).message
    yield AskEvent("saved", session=target, message=question)
    try:
        yield AskEvent("context", bundle=bundle)
        messages = bundle.messages()
        pieces: list[str] = []
        completion: Completion | None = None
        try:
            for event in llm.stream(messages, model=model, max_tokens=max_tokens, temperature=temperature):
                if event.type == "text":
                    pieces.append(event.text)
                    yield AskEvent("text", text=event.text)
                else:
                    completion = event.completion
        except StreamInterruptedError as exc:
            _keep_partial(target, exc.partial_text or "".join(pieces), exc.usage, messages,
                          model or llm.settings.model, llm.settings.provider, question, bundle, str(exc), notes,
                          include_locked)
            raise
        except (GeneratorExit, KeyboardInterrupt):
            _keep_partial(target, "".join(pieces), None, messages, model or llm.settings.model,
                          llm.settings.provider, question, bundle, "stopped by the user", notes, include_locked)
            raise
        if completion is None:
            raise ProviderError(f"{llm.settings.provider}: the stream ended without a result",
                                provider=llm.settings.provider)
        parsed = markers.parse(completion.text, pattern.name, patterns.glyphs(vault)) if pattern else None
        cost = cost_of(completion, notes)
        content = parsed.response if parsed is not None else completion.text
        answer = None
        if content.strip():
            # A reply to a prompt with locked sections may repeat them: it is stored sealed.
            answer = target.add_message("assistant", content, secret=include_locked,
                                        **_answer_meta(completion, cost, question, bundle, pattern, parsed))
        else:
            notes.append("the provider sent an empty reply; nothing was added to the session")
        yield AskEvent("done", result=AskResult(target, question, answer, completion, bundle, cost, False, notes))
    finally:
        if owned:
            llm.close()


def ask(vault: "Vault", text: str, **kwargs: Any) -> AskResult:
    """`ask_stream`, waited for: the `AskResult` (raises the provider's error, the user's message kept)."""
    result = None
    for event in ask_stream(vault, text, **kwargs):
        if event.type == "done":
            result = event.result
    assert result is not None
    return result


@dataclass
class DryRun:
    """What `ask` would send: the bundle, the provider settings (None when none is configured)."""

    bundle: "ContextBundle"
    settings: "ProviderSettings | None"
    session: Session | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        data = self.bundle.to_dict()
        return {"dry_run": True, "provider": s.provider if s else None, **data, "model": s.model if s else data["model"],
                "notes": self.notes + data["notes"]}


def dry_run(vault: "Vault", text: str, *, session: "Session | str | None" = None, new: bool = False,
            provider: str | None = None, model: str | None = None, base_url: str | None = None,
            profile: str | None = None, strategy: str = DEFAULT_STRATEGY,
            budget_tokens: int = context_mod.DEFAULT_BUDGET, include_locked: bool = False,
            pattern: patterns.Pattern | None = None, pinned: Iterable[Source] = (),
            activity_days: float | None = None) -> DryRun:
    """The exact messages `ask` would send, item by item, without a call or a write."""
    notes: list[str] = []
    try:
        settings = _providers().resolve_settings(provider, model=model, base_url=base_url, profile=profile,
                                              require_key=False)
    except ProviderConfigError as exc:
        settings = None
        notes.append(f"no provider: {exc}")
    target = None if new else (_own(vault, session) if session is not None else latest_session(vault))
    extra = list(pinned) + ([pattern_source(vault, pattern)] if pattern is not None else [])
    bundle = context_mod.build_context(vault, query=text, strategy=strategy, budget_tokens=budget_tokens,
                                       session=target, include_locked=include_locked, message=text,
                                       model=model or (settings.model if settings else None), pinned=extra,
                                       **({"activity_days": activity_days} if activity_days else {}))
    return DryRun(bundle, settings, target, notes)
