"""Reflection through patterns: `vault.reflect(text, patterns=..., blend=..., meta_depth=...)`.

Each step is one call whose prompt the context builder makes: SOUL.md, the
other instances, the step's pattern instructions (mirrorfs.patterns), what is
relevant to the text, and, for ``sequential`` blending, the reflections made
so far; ``parallel`` steps see only the text. ``meta_depth`` (0–2) adds
reflections on the reflections, each seeing every step before it. Replies are
parsed for uncertainty markers and glyphs (mirrorfs.markers).

Like `ask`, the text is written to this instance's session before the first
call and the reflection after the last, with the summed usage and cost. With
``save`` the reflection is also a note in ``insights/`` that links its source
session and its patterns (docs/format.md). With ``include_locked`` (the vault
unlocked) the stored reply and note are sealed, since they may repeat what
the AI read in locked sections.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from mirrorfs import context as context_mod
from mirrorfs import markers, usage
from mirrorfs import note as notes
from mirrorfs import patterns as patterns_mod
from mirrorfs.clock import timestamp
from mirrorfs.context_sources import Source, shown
from mirrorfs.conversation import choose_session, cost_of, open_provider, pattern_source
from mirrorfs.errors import InvalidValueError, MirrorfsError, ProviderError
from mirrorfs.layout import INSIGHTS_DIR
from mirrorfs.llm import Completion, Usage
from mirrorfs.messages import Message
from mirrorfs.session import Session, wikilink
from mirrorfs.session_log import SessionLog
from mirrorfs.slug import title_from_text
from mirrorfs.storage import sha256

if TYPE_CHECKING:
    from mirrorfs.context import ContextBundle
    from mirrorfs.llm import Provider
    from mirrorfs.vault import Vault

BLENDS = ("sequential", "parallel")
MAX_META_DEPTH = 2

META_INSTRUCTIONS = (
    "## Meta-reflection {level}\n\n"
    "Below are the reflections made so far on the question. Reflect on them: what they take for granted, where "
    "they agree and where they pull apart, what is still uncertain and why, and what would change your mind. "
    "Then say what you would do. Use the same uncertainty markers (⟨low⟩, ⟨medium⟩, ⟨⟨high⟩⟩).\n\n{earlier}"
)
EARLIER = "## Reflections so far, to build on\n\n{earlier}"


@dataclass
class Step:
    """One call of a reflection: a pattern's, or a meta-reflection (``pattern`` None)."""

    name: str
    pattern: patterns_mod.Pattern | None
    parsed: markers.Parsed
    completion: Completion
    cost_usd: float | None
    bundle: "ContextBundle"

    @property
    def heading(self) -> str:
        if self.pattern is None:
            return f"Meta-reflection {self.name.rsplit('-', 1)[-1]}"
        return f"{self.pattern.glyph} {self.pattern.title}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, **self.parsed.to_dict(), "model": self.completion.model,
                "usage": self.completion.usage.to_dict(), "estimated_cost_usd": self.cost_usd,
                "context_tokens": self.bundle.used_tokens}


@dataclass
class ReflectResult:
    text: str
    patterns: list[patterns_mod.Pattern]
    blend: str
    meta_depth: int
    steps: list[Step]
    session: Session
    question: Message
    answer: Message | None
    why: str | None = None
    note: str | None = None
    cost_usd: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> Step:
        return self.steps[-1]

    def to_dict(self) -> dict[str, Any]:
        last = self.final.parsed
        return {"input": self.text, "patterns": [p.name for p in self.patterns], "blend": self.blend,
                "meta_depth": self.meta_depth, "auto": self.why, **last.to_dict(),
                "pattern": self.final.name, "steps": [s.to_dict() for s in self.steps],
                "session": self.session.id, "session_path": self.session.relpath, "note": self.note,
                "estimated_cost_usd": self.cost_usd, "calls": len(self.steps), "notes": self.notes}


def choose(vault: "Vault", spec: str | Sequence[str], text: str) -> tuple[list[patterns_mod.Pattern], str | None]:
    """The patterns to run for ``spec`` ("auto", "a,b" or a list) and, for auto, why."""
    known = patterns_mod.load(vault)
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n and n.strip()]
    if names == [patterns_mod.AUTO]:
        picked, why = patterns_mod.suggest(vault, text, known)
        return patterns_mod.chain(vault, [picked.name], known), why
    if patterns_mod.AUTO in names:
        raise InvalidValueError("auto picks one pattern by itself; do not combine it with other names")
    return patterns_mod.chain(vault, names, known), None


def _earlier(steps: Iterable[Step]) -> str:
    return "\n\n".join(f"### {s.heading}\n\n{s.parsed.response}" for s in steps)


def _sum_usage(steps: Sequence[Step]) -> Usage:
    u = [s.completion.usage for s in steps]
    return Usage(sum(x.input_tokens for x in u), sum(x.output_tokens for x in u), sum(x.cached_tokens for x in u),
                 any(x.estimated for x in u))


def _content(steps: Sequence[Step]) -> str:
    if len(steps) == 1:
        return steps[0].parsed.response
    return "\n\n".join(f"**{s.heading}**\n\n{s.parsed.response}" for s in steps)


def _pattern_link(vault: "Vault", p: patterns_mod.Pattern) -> str:
    if p.path:
        return f"[[{p.path[:-3]}|{p.name}]]"
    return f"{p.name} (built-in)"


def _note(vault: "Vault", result: ReflectResult, include_locked: bool) -> str:
    """Write the reflection as an insight note; its vault-relative path."""
    title = title_from_text(shown(vault, result.text, False), words=10)
    final = result.final.parsed
    glyphs: list[str] = []
    for s in result.steps:
        glyphs += [g for g in s.parsed.glyphs if g not in glyphs]
    first = result.steps[0].completion
    created = timestamp()
    meta = {
        "id": secrets.token_hex(6), "type": "insight", "title": title, "derived": True,
        "patterns": [p.name for p in result.patterns], "blend": result.blend, "meta_depth": result.meta_depth,
        "uncertainty": final.uncertainty, "glyphs": glyphs or None, "depth": final.reflection_depth,
        "source": wikilink(result.session.id), "source_message": result.question.id,
        "source_sha256": sha256(result.text.encode("utf-8")), "model": first.model, "provider": first.provider,
        "tags": ["insight"] + [f"pattern/{p.name}" for p in result.patterns],
        "created": created, "updated": created, "instance": vault.instance, "updated_by": vault.instance,
    }
    quoted = "\n".join("> " + line if line else ">" for line in shown(vault, result.text, False).strip().splitlines())
    parts = [f"# {title}", quoted]
    for s in result.steps:
        p = s.parsed
        parts.append(f"## {s.heading}\n\n{p.response}\n\n*Uncertainty: {p.uncertainty} ({p.advice}) · "
                     f"depth: {p.reflection_depth}*")
    links = " · ".join(_pattern_link(vault, p) for p in result.patterns)
    parts.append(f"Patterns: {links}. From the conversation [[{result.session.id}]].")
    body = "\n\n".join(parts) + "\n"
    if include_locked:
        body = vault.seal_body(body)
    data = notes.new(meta, body).render()
    rel = vault.create_note(INSIGHTS_DIR, f"{created:%Y-%m-%d} {title}", data)
    vault.touched(rel, "write")
    return rel


def _call(llm: "Provider", bundle: "ContextBundle", max_tokens, temperature) -> Completion:
    return llm.complete(bundle.messages(), max_tokens=max_tokens, temperature=temperature)


def reflect(vault: "Vault", text: str, *, patterns: str | Sequence[str] = patterns_mod.AUTO,
            blend: str = "sequential", meta_depth: int = 0, save: bool = True,
            session: "Session | str | None" = None, new: bool = False, provider: "Provider | str | None" = None,
            model: str | None = None, base_url: str | None = None, profile: str | None = None,
            strategy: str = "relevant", budget_tokens: int = context_mod.DEFAULT_BUDGET,
            include_locked: bool = False, max_tokens: int | None = None,
            temperature: float | None = None) -> ReflectResult:
    """Reflect on ``text`` through ``patterns`` ("auto", "a,b" or a list of names); see the module docstring."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError("reflect needs a text to reflect on")
    if blend not in BLENDS:
        raise InvalidValueError(f"unknown blend {blend!r}: use sequential or parallel")
    if isinstance(meta_depth, bool) or not isinstance(meta_depth, int) or not 0 <= meta_depth <= MAX_META_DEPTH:
        raise InvalidValueError(f"meta depth must be 0, 1 or 2 (got {meta_depth!r})")
    chain, why = choose(vault, patterns, text)
    target, _ = choose_session(vault, text, session, new)
    question = SessionLog(vault).append("user", text, session=target.id, patterns=[p.name for p in chain]).message
    result = ReflectResult(text, chain, blend, meta_depth, [], target, question, None, why)
    llm, owned = open_provider(provider, {"model": model, "base_url": base_url, "profile": profile})
    glyphs = patterns_mod.glyphs(vault)
    failure: ProviderError | None = None

    def context(pinned: list[Source]) -> "ContextBundle":
        return context_mod.build_context(vault, query=text, strategy=strategy, budget_tokens=budget_tokens,
                                         session=target, include_locked=include_locked, message=text, provider=llm,
                                         model=model or llm.settings.model, exclude=[question.id], pinned=pinned)

    def earlier_source(steps: Sequence[Step]) -> Source:
        body = EARLIER.format(earlier=_earlier(steps))
        return Source("reflection", None, sha256(body.encode("utf-8")), "Reflections so far", body,
                      why=f"pinned: the {len(steps)} reflection(s) made so far (sequential)")

    try:
        for p in chain:
            pinned = [pattern_source(vault, p)]
            if blend == "sequential" and result.steps:
                pinned.append(earlier_source(result.steps))
            bundle = context(pinned)
            completion = _call(llm, bundle, max_tokens, temperature)
            result.steps.append(Step(p.name, p, markers.parse(completion.text, p.name, glyphs), completion,
                                     cost_of(completion, result.notes), bundle))
        for level in range(1, meta_depth + 1):
            body = META_INSTRUCTIONS.format(level=level, earlier=_earlier(result.steps))
            bundle = context([Source("meta", None, sha256(body.encode("utf-8")), f"Meta-reflection {level}", body,
                                     why=f"pinned: meta-reflection {level} on the {len(result.steps)} before it")])
            completion = _call(llm, bundle, max_tokens, temperature)
            result.steps.append(Step(f"meta-{level}", None, markers.parse(completion.text, f"meta-{level}", glyphs),
                                     completion, cost_of(completion, result.notes), bundle))
    except ProviderError as exc:
        failure = exc
    finally:
        if owned:
            llm.close()
    if not result.steps:
        raise failure  # type: ignore[misc]  # nothing came back: the user's message is kept, the error is the news
    costs = [s.cost_usd for s in result.steps]
    result.cost_usd = None if None in costs else round(sum(costs), 8)  # type: ignore[arg-type]
    if save and failure is None:
        try:
            result.note = _note(vault, result, include_locked)
        except MirrorfsError as exc:
            result.notes.append(f"the reflection was not saved as a note: {exc}")
    result.answer = _answer(vault, result, include_locked, failure)
    if failure is not None:
        raise failure
    return result


def _answer(vault: "Vault", result: ReflectResult, include_locked: bool, failure: ProviderError | None) -> Message:
    last = result.steps[-1].completion
    meta = usage.message_metadata(_sum_usage(result.steps), last.model, last.provider, result.cost_usd)
    glyphs: list[str] = []
    for s in result.steps:
        glyphs += [g for g in s.parsed.glyphs if g not in glyphs]
    meta.update(calls=len(result.steps), in_reply_to=result.question.id, patterns=[p.name for p in result.patterns],
                blend=result.blend, meta_depth=result.meta_depth, uncertainty=result.final.parsed.uncertainty,
                glyphs=glyphs, insight=result.note)
    if failure is not None:
        meta.update(interrupted=True, interrupt_reason=str(failure))
    return result.session.add_message("assistant", _content(result.steps), secret=include_locked, **meta)


def pattern_prompt(vault: "Vault", pattern: patterns_mod.Pattern, text: str, session: "Session | None" = None,
                   budget_tokens: int = context_mod.DEFAULT_BUDGET) -> str:
    """One user message that asks a client's own model to reflect on ``text`` with ``pattern``
    (the MCP prompts): the context the builder makes, then the text."""
    bundle = context_mod.build_context(vault, query=text, strategy="relevant", budget_tokens=budget_tokens,
                                       session=session, message=text,
                                       pinned=[pattern_source(vault, pattern)])
    system = next((m["content"] for m in bundle.messages() if m["role"] == "system"), "")
    return f"{system}\n\n---\n\n{shown(vault, text, False)}"
