"""The one interface to a language model: messages in, a Completion (or a stream of text) out.

A message is a dict ``{"role": "system" | "user" | "assistant", "content": str}``.
``Provider.complete()`` returns a `Completion`; ``Provider.stream()`` yields
``StreamEvent("text", text=...)`` for each piece of text as it arrives and then
exactly one ``StreamEvent("done", completion=...)``. Both report usage: what
the provider counted, or our estimate (``Usage.estimated``) where it did not.

Stop reasons are normalised to Anthropic's words: ``end_turn``, ``max_tokens``,
``stop_sequence``, ``tool_use``, ``content_filter``; a value we do not know is
passed through as the vendor said it.

A custom provider subclasses `Provider`, is constructed with a
`ProviderSettings`, and overrides ``complete`` or ``stream`` (or both; each
has a default made of the other). It is registered under the entry-point group
``mirrorfs.providers`` (see ``mirrorfs.providers``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterator, Literal, Mapping, Sequence

from mirrorfs.errors import InvalidValueError, ProviderError
from mirrorfs.provider_config import Secret, redact_url
from mirrorfs.retries import RetryPolicy

__all__ = [
    "ROLES",
    "Usage",
    "Completion",
    "StreamEvent",
    "ProviderSettings",
    "Provider",
    "check_messages",
    "normalize_stop_reason",
]

ROLES = ("system", "user", "assistant")

_STOP_REASONS = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "content_filter": "content_filter",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "tool_use": "tool_use",
}


def normalize_stop_reason(value: str | None) -> str | None:
    """The common word for a vendor's stop reason (unknown ones pass through)."""
    if value is None:
        return None
    return _STOP_REASONS.get(value, value)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``input_tokens`` includes ``cached_tokens`` (prompt-cache reads);
    ``estimated`` is True when any number is our estimate rather than the provider's count."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Completion:
    """A finished reply: its text, why it stopped, the model that answered, the provider, the usage."""

    text: str
    stop_reason: str | None
    model: str
    provider: str
    usage: Usage

    def to_dict(self) -> dict:
        return {"text": self.text, "stop_reason": self.stop_reason, "model": self.model,
                "provider": self.provider, "usage": self.usage.to_dict()}


@dataclass(frozen=True)
class StreamEvent:
    """``type == "text"``: a piece of the reply in ``text``; ``type == "done"``: the last event,
    with the whole `Completion` in ``completion``."""

    type: Literal["text", "done"]
    text: str = ""
    completion: Completion | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """Everything a provider needs, resolved from arguments, the profile, the environment and defaults.

    ``key_hint`` says, for error messages, where the key came from or where one
    should go (a variable name, a profile, the keyring entry) — never the key.
    """

    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key: Secret | None = None
    key_hint: str = ""
    profile: str | None = None
    timeout: float = 600.0
    connect_timeout: float = 10.0
    max_retries: int = 2
    rate_limit_rpm: float | None = None
    max_tokens: int | None = None
    retry: RetryPolicy | None = field(default=None, compare=False)


def check_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict]:
    """``messages`` as plain dicts of role and content; InvalidValueError for anything else."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidValueError("messages must be a list of {'role': ..., 'content': ...} dicts")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidValueError(f"message {i} is not a mapping with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InvalidValueError(f"message {i} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InvalidValueError(f"message {i} content must be a string")
        checked.append({"role": role, "content": content})
    if not any(m["role"] != "system" for m in checked):
        raise InvalidValueError("messages need at least one user or assistant message")
    return checked


class Provider:
    """Base class of every provider: built-in (openai, anthropic, ollama) or a plug-in.

    Class attributes tell ``get_provider`` how to configure one: ``name``,
    ``default_model``, ``default_base_url``, ``api_key_env`` and
    ``base_url_env`` (environment variables), ``requires_key`` (only enforced
    for the default base URL: local compatible servers rarely want a key).
    """

    name: ClassVar[str] = ""
    default_model: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None
    requires_key: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings):
        self.settings = settings

    @classmethod
    def base_url_from_env(cls, value: str) -> str:
        """The base URL that the value of ``base_url_env`` stands for (Ollama's OLLAMA_HOST is a host)."""
        return value

    @property
    def model(self) -> str | None:
        return self.settings.model

    def complete(self, messages, model=None, max_tokens=None, temperature=None, **options) -> Completion:
        """The whole reply to ``messages``."""
        if type(self).stream is Provider.stream:
            raise NotImplementedError(f"{type(self).__name__} must override complete() or stream()")
        for event in self.stream(messages, model=model, max_tokens=max_tokens, temperature=temperature, **options):
            if event.type == "done":
                return event.completion  # type: ignore[return-value]
        raise ProviderError(f"{self.settings.provider}: the stream ended without a result",
                            provider=self.settings.provider)

    def stream(self, messages, model=None, max_tokens=None, temperature=None, **options) -> Iterator[StreamEvent]:
        """The reply to ``messages`` as it arrives: text events, then one done event."""
        if type(self).complete is Provider.complete:
            raise NotImplementedError(f"{type(self).__name__} must override complete() or stream()")
        completion = self.complete(messages, model=model, max_tokens=max_tokens, temperature=temperature, **options)
        if completion.text:
            yield StreamEvent("text", text=completion.text)
        yield StreamEvent("done", completion=completion)

    def close(self) -> None:
        """Release connections (a no-op unless the provider holds some)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        where = f" at {redact_url(s.base_url)}" if s.base_url else ""
        profile = f" profile={s.profile!r}" if s.profile else ""
        return f"<{type(self).__name__} {s.provider} model={s.model!r}{where}{profile}>"
