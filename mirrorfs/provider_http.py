"""What every HTTP provider shares: sending with retries and the rate limit, reading a
stream, turning vendor errors into mirrorfs errors, usage when a provider did not say.

A vendor module (provider_openai, provider_anthropic, provider_ollama)
subclasses `HTTPProvider` and supplies the request (``path``, ``headers``,
``body``), the two parsers (``parse_reply`` for a whole JSON reply, ``feed``
for the stream's lines) and, if its error bodies differ, ``error_details``.

Retries follow `mirrorfs.retries`. A stream is retried only while it has not
yielded any text: once the caller has shown text to a person, a retry would
say it twice, so a failure then is a `StreamInterruptedError` carrying the
partial text and the usage so far.

API keys: only ``headers()`` reads the key; error messages carry the status,
the vendor's error type and its message with the key and anything shaped like
one replaced by ``***``; a 401 says which variable or profile to fix and
nothing of what the server said.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from dataclasses import dataclass, field, replace
from typing import ClassVar, Iterable, Iterator

import httpx
from filelock import Timeout as LockTimeout

from mirrorfs import tokens
from mirrorfs.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderUnavailableError,
    SpendCapError,
    StreamInterruptedError,
)
from mirrorfs.llm import (
    Completion,
    Provider,
    ProviderSettings,
    StreamEvent,
    Usage,
    check_messages,
    normalize_stop_reason,
)
from mirrorfs.provider_config import redact_url
from mirrorfs.ratelimit import RateLimiter
from mirrorfs.retries import RetryPolicy, is_retryable_status, retry_after

__all__ = ["HTTPProvider", "StreamState", "VendorStreamError", "USER_AGENT"]

log = logging.getLogger("mirrorfs.providers")

USER_AGENT = "mirrorfs/0.1 (httpx)"
# httpx writes a request's headers and body separately; without TCP_NODELAY the body can wait for the
# server's delayed ACK (40 ms on Linux) before it leaves, on every request (curl, Go and Node set it too).
SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{3,}")
_MAX_VENDOR_MESSAGE = 300

# Error types a vendor sends inside a 200 stream, mapped to the status they stand for.
_STREAM_ERROR_STATUS = {
    "overloaded_error": 529, "api_error": 500, "server_error": 500, "internal_server_error": 500,
    "timeout_error": 504, "rate_limit_error": 429, "rate_limit_exceeded": 429, "authentication_error": 401,
    "permission_error": 403, "not_found_error": 404, "invalid_request_error": 400, "request_too_large": 413,
    "billing_error": 402, "insufficient_quota": 429,
}
_SPEND_CAP_TYPES = {"insufficient_quota", "billing_error", "billing_hard_limit_reached"}
_SPEND_CAP_WORDS = ("credit balance is too low", "spend limit", "exceeded your current quota")


class VendorStreamError(Exception):
    """An error the vendor reported inside a stream (Anthropic's ``event: error``, ...)."""

    def __init__(self, error_type: str | None, message: str = ""):
        self.error_type = error_type
        self.message = message
        super().__init__(f"{error_type}: {message}")


@dataclass
class StreamState:
    """What is known of a reply so far; None means "the provider has not said"."""

    text: list[str] = field(default_factory=list)
    model: str | None = None
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    finished: bool = False


@dataclass
class _Attempts:
    sent: int = 0
    retries: int = 0


class HTTPProvider(Provider):
    """A provider spoken to over HTTP with httpx; see the module docstring for the hooks."""

    path: ClassVar[str] = ""
    stream_accept: ClassVar[str] = "text/event-stream"

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self._retry = (replace(settings.retry, max_retries=settings.max_retries) if settings.retry is not None
                       else RetryPolicy(max_retries=settings.max_retries))
        self._limiter = None
        if settings.rate_limit_rpm:
            key = f"{settings.profile or settings.provider}@{settings.base_url}"
            self._limiter = RateLimiter(key, settings.rate_limit_rpm)
        self._client = httpx.Client(timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
                                    headers={"user-agent": USER_AGENT},
                                    transport=httpx.HTTPTransport(socket_options=SOCKET_OPTIONS))

    # -- vendor hooks -------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Request headers, the key among them."""
        return {}

    def body(self, messages: list[dict], model: str, max_tokens: int | None, temperature: float | None,
             stream: bool, options: dict) -> dict:
        raise NotImplementedError

    def parse_reply(self, data) -> StreamState:
        """The state of a whole (non-streamed) JSON reply."""
        raise NotImplementedError

    def feed(self, lines: Iterable[str], state: StreamState) -> Iterator[str]:
        """Yield the text pieces of a streamed reply while updating ``state``; set
        ``state.finished`` at the vendor's end marker; raise VendorStreamError for an error event."""
        raise NotImplementedError

    def error_details(self, data) -> tuple[str | None, str]:
        """(error type or code, message) from an error body; handles ``{"error": {...}}`` and ``{"error": "..."}``."""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            kind = error.get("code") if isinstance(error.get("code"), str) else None
            kind = kind or (error.get("type") if isinstance(error.get("type"), str) else None)
            return kind, str(error.get("message") or "")
        if isinstance(error, str):
            return None, error
        return None, ""

    # -- the interface ------------------------------------------------------------

    def complete(self, messages, model=None, max_tokens=None, temperature=None, **options) -> Completion:
        msgs, model, body = self._prepare(messages, model, max_tokens, temperature, False, options)
        attempts = _Attempts()
        while True:
            response = self._post(body, False, attempts)
            try:
                raw = response.read()
            except httpx.TransportError as exc:
                failure, retryable = self._transport_error(exc, attempts), True
            else:
                try:
                    data = json.loads(raw)
                except ValueError:
                    raise self._error(ProviderError, f"{self.settings.provider} sent a reply that is not JSON",
                                      attempts, status=response.status_code) from None
                if not (isinstance(data, dict) and data.get("error")):
                    return self._finish(self.parse_reply(data), msgs, model)
                # An error in a 200 reply, as some compatible servers send it.
                kind, message = self.error_details(data)
                failure, retryable = self._classify(None, kind or "api_error", message, attempts)
            finally:
                response.close()
            self._retry_or_raise(failure, retryable, attempts, None)

    def stream(self, messages, model=None, max_tokens=None, temperature=None, **options) -> Iterator[StreamEvent]:
        msgs, model, body = self._prepare(messages, model, max_tokens, temperature, True, options)
        attempts = _Attempts()
        while True:
            response = self._post(body, True, attempts)
            state = StreamState()
            try:
                if self._is_json_instead_of_stream(response):
                    # Some compatible servers answer a stream request with a plain JSON error and a 200.
                    kind, message = self.error_details(json.loads(response.read()))
                    raise VendorStreamError(kind or "api_error", message or "a JSON reply instead of a stream")
                for piece in self.feed(response.iter_lines(), state):
                    if piece:
                        state.text.append(piece)
                        yield StreamEvent("text", text=piece)
                if not state.finished:
                    raise httpx.RemoteProtocolError("the connection closed before the reply was complete")
            except VendorStreamError as exc:
                failure, retryable = self._classify(None, exc.error_type, exc.message, attempts, in_stream=True)
            except httpx.TransportError as exc:
                failure, retryable = self._transport_error(exc, attempts), True
            except ValueError:
                failure = self._error(ProviderUnavailableError,
                                      f"{self.settings.provider} sent a garbled stream", attempts)
                retryable = True
            else:
                completion = self._finish(state, msgs, model)
                response.close()
                yield StreamEvent("done", completion=completion)
                return
            finally:
                response.close()
            if state.text:
                raise self._interrupted(failure, state, msgs, model, attempts)
            self._retry_or_raise(failure, retryable, attempts, None)

    def close(self) -> None:
        self._client.close()

    # -- sending ------------------------------------------------------------------

    def _prepare(self, messages, model, max_tokens, temperature, stream, options):
        msgs = check_messages(messages)
        model = model or self.settings.model
        if not model:
            raise ProviderRequestError(f"{self.settings.provider}: no model given (pass model= or set one in "
                                       "providers.yaml)", provider=self.settings.provider, attempts=0)
        if max_tokens is None:
            max_tokens = self.settings.max_tokens
        return msgs, model, self.body(msgs, model, max_tokens, temperature, stream, dict(options))

    def _is_json_instead_of_stream(self, response: httpx.Response) -> bool:
        content_type = response.headers.get("content-type", "")
        return self.stream_accept == "text/event-stream" and content_type.startswith("application/json")

    def _url(self) -> str:
        return (self.settings.base_url or "").rstrip("/") + self.path

    def _post(self, body: dict, stream: bool, attempts: _Attempts) -> httpx.Response:
        """Send ``body`` until a 2xx arrives (returned open) or a failure is final (raised)."""
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"content-type": "application/json",
                   "accept": self.stream_accept if stream else "application/json", **self.headers()}
        while True:
            if self._limiter is not None:
                self._limiter.acquire()
            attempts.sent += 1
            request = self._client.build_request("POST", self._url(), content=content, headers=headers)
            try:
                response = self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                self._retry_or_raise(self._transport_error(exc, attempts), True, attempts, None)
                continue
            if 200 <= response.status_code < 300:
                return response
            try:
                raw = response.read()
            except httpx.TransportError:
                raw = b""
            finally:
                response.close()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None
            kind, message = self.error_details(data)
            if not message and raw and data is None:
                message = raw[:_MAX_VENDOR_MESSAGE].decode("utf-8", "replace")
            failure, retryable = self._classify(response.status_code, kind, message, attempts,
                                                headers=response.headers)
            self._retry_or_raise(failure, retryable, attempts, response.headers)

    def _retry_or_raise(self, failure: ProviderError, retryable: bool, attempts: _Attempts, headers) -> None:
        """Sleep before the next try, or raise ``failure`` when it is final."""
        failure.attempts = attempts.sent
        if not retryable or attempts.retries >= self._retry.max_retries:
            if retryable and attempts.sent > 1:
                failure.args = (f"{failure.args[0]} (after {attempts.sent} attempts)",)
            raise failure
        delay = self._retry.delay(attempts.retries, headers)
        if delay is None:
            asked = _asked_wait(headers, self._retry)
            raise ProviderRateLimitError(
                f"{failure.args[0]}; the server asks to wait {asked:.0f} s, more than the "
                f"{self._retry.max_retry_after:.0f} s we wait: try again later",
                retry_after=asked, provider=failure.provider, status=failure.status,
                error_type=failure.error_type, request_id=failure.request_id, attempts=attempts.sent)
        log.info("%s: %s; retry %d of %d in %.2f s", self.settings.provider, failure.args[0],
                 attempts.retries + 1, self._retry.max_retries, delay)
        attempts.retries += 1
        self._retry.sleep(delay)

    # -- errors -------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = self.settings.api_key.reveal() if self.settings.api_key is not None else ""
        if len(key) >= 8:  # a real key; replacing a one-letter test key would garble the message
            text = text.replace(key, "***")
        text = _KEYLIKE.sub("sk-***", text)
        text = " ".join(text.split())
        return text[:_MAX_VENDOR_MESSAGE] + ("…" if len(text) > _MAX_VENDOR_MESSAGE else "")

    def _error(self, cls, message: str, attempts: _Attempts, **kwargs) -> ProviderError:
        return cls(message, provider=self.settings.provider, attempts=attempts.sent, **kwargs)

    def _classify(self, status: int | None, kind: str | None, message: str, attempts: _Attempts, *,
                  headers=None, in_stream: bool = False) -> tuple[ProviderError, bool]:
        """(the mirrorfs error for a vendor error, whether to retry it)."""
        name = self.settings.provider
        effective = status if status is not None else _STREAM_ERROR_STATUS.get(kind or "", 500)
        label = " ".join(str(x) for x in (status, kind) if x) or "error"
        where = " in the stream" if in_stream else ""
        said = self._redact(message)
        said = f": {said}" if said else ""
        extra = {"status": status, "error_type": kind,
                 "request_id": (headers.get("request-id") or headers.get("x-request-id")) if headers else None}
        lowered = message.lower()
        if kind in _SPEND_CAP_TYPES or effective == 402 or any(w in lowered for w in _SPEND_CAP_WORDS):
            return self._error(SpendCapError, f"{name}: the account has no quota or credit left ({label}); "
                               "check its plan and billing — not retried", attempts, **extra), False
        if effective == 401:
            hint = self.settings.key_hint or "the API key"
            if self.settings.api_key is None:
                text = f"{name} at {redact_url(self.settings.base_url or '')} wants an API key ({label}): set {hint}"
            else:
                text = f"{name} rejected the API key ({label}): fix {hint}"
            return self._error(ProviderAuthError, text, attempts, **extra), False
        if effective == 403:
            return self._error(ProviderAuthError, f"{name} refused access ({label}){said}; check the key "
                               f"from {self.settings.key_hint or 'the configuration'} and what it may use",
                               attempts, **extra), False
        retryable = is_retryable_status(effective, headers)
        if effective == 429:
            return self._error(ProviderRateLimitError, f"{name} rate limit hit ({label}{where}){said}",
                               attempts, **extra), retryable
        if effective == 529 or kind == "overloaded_error":
            return self._error(ProviderUnavailableError, f"{name} is overloaded ({label}{where}){said}",
                               attempts, **extra), retryable
        if effective >= 500 or effective in (408, 409):
            return self._error(ProviderUnavailableError, f"{name} failed ({label}{where}){said}",
                               attempts, **extra), retryable
        return self._error(ProviderRequestError, f"{name} rejected the request ({label}){said}",
                           attempts, **extra), retryable

    def _transport_error(self, exc: httpx.TransportError, attempts: _Attempts) -> ProviderError:
        base = redact_url(self.settings.base_url or "")
        if isinstance(exc, httpx.TimeoutException):
            limit = self.settings.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.settings.timeout
            what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            text = f"{self.settings.provider} at {base} did not answer in time ({what} timeout, {limit:g} s)"
        elif isinstance(exc, httpx.ConnectError):
            text = f"cannot reach {self.settings.provider} at {base} ({self._redact(str(exc)) or 'connect error'})"
        else:
            text = (f"the connection to {self.settings.provider} at {base} broke "
                    f"({self._redact(str(exc)) or type(exc).__name__})")
        return self._error(ProviderUnavailableError, text, attempts)

    def _interrupted(self, failure: ProviderError, state: StreamState, msgs, model, attempts) -> StreamInterruptedError:
        partial = "".join(state.text)
        return StreamInterruptedError(
            f"{failure.args[0]} — the reply broke off after {len(partial)} characters; "
            "the partial text is kept, not retried",
            partial_text=partial, usage=self._usage(state, msgs, partial, model, final=False),
            provider=self.settings.provider, status=failure.status, error_type=failure.error_type,
            request_id=failure.request_id, attempts=attempts.sent)

    # -- results ------------------------------------------------------------------

    def _usage(self, state: StreamState, msgs, text: str, model: str, final: bool = True) -> Usage:
        estimated = not final
        input_tokens = state.input_tokens
        if input_tokens is None:
            input_tokens, estimated = tokens.estimate_messages(msgs, model), True
        output_tokens = state.output_tokens
        if output_tokens is None or not final:
            output_tokens, estimated = max(output_tokens or 0, tokens.estimate_text(text, model)), True
        return Usage(input_tokens, output_tokens, state.cached_tokens or 0, estimated)

    def _finish(self, state: StreamState, msgs, model: str) -> Completion:
        text = "".join(state.text)
        usage = self._usage(state, msgs, text, model)
        if not usage.estimated:
            try:
                tokens.calibrate(model, tokens.raw_message_tokens(msgs) + tokens.raw_text_tokens(text),
                                 usage.input_tokens + usage.output_tokens)
            except (OSError, LockTimeout) as exc:
                # Calibration only sharpens estimates; a read-only state folder must not fail a reply.
                log.debug("token calibration not saved: %s", exc)
        return Completion(text=text, stop_reason=normalize_stop_reason(state.stop_reason),
                          model=state.model or model, provider=self.settings.provider, usage=usage)


def _asked_wait(headers, policy: RetryPolicy) -> float:
    return retry_after(headers, policy.clock) or 0.0
