"""Token estimates: UTF-8 bytes / 4 plus a per-message overhead, calibrated per model.

No tokenizer is shipped (each vendor has its own, and most are not public);
bytes / 4 is the usual rule for English text and is within a factor of two
for most languages and code. Each time a provider reports real usage, the
ratio reported / estimated is folded into a per-model average kept per device
(``token_ratios.json`` in the state folder), so estimates for that model
converge on what it actually counts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Mapping

from mirrorfs import state, statefile

__all__ = [
    "BYTES_PER_TOKEN",
    "MESSAGE_OVERHEAD",
    "REPLY_OVERHEAD",
    "RATIOS_FILE",
    "raw_text_tokens",
    "raw_message_tokens",
    "ratio",
    "estimate_text",
    "estimate_messages",
    "calibrate",
    "ratios_path",
]

BYTES_PER_TOKEN = 4
# Role, separators and framing of one chat message (OpenAI documents 3-4).
MESSAGE_OVERHEAD = 4
# The assistant turn the model is primed with.
REPLY_OVERHEAD = 3
RATIOS_FILE = "token_ratios.json"
# A ratio learned from one odd reply must not distort estimates: clamp each
# sample, and let the average move by at most 1/MAX_SAMPLES per report.
_MIN_SAMPLE, _MAX_SAMPLE = 0.25, 4.0
MAX_SAMPLES = 20

_cache: dict[str, object] = {"key": None, "ratios": {}}


def ratios_path() -> Path:
    return state.base_dir() / RATIOS_FILE


def raw_text_tokens(text: str) -> int:
    """The uncalibrated estimate for ``text``: ceil(UTF-8 bytes / 4)."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def raw_message_tokens(messages: Iterable[Mapping]) -> int:
    """The uncalibrated estimate of a prompt: its contents plus the per-message and reply overhead."""
    total = REPLY_OVERHEAD
    for message in messages:
        total += MESSAGE_OVERHEAD + raw_text_tokens(str(message.get("content", "")))
    return total


def _ratios() -> dict:
    path = ratios_path()
    try:
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return {}
    if _cache["key"] != key:
        models = statefile.read(path).get("models", {})
        _cache["ratios"] = models if isinstance(models, dict) else {}
        _cache["key"] = key
    return _cache["ratios"]  # type: ignore[return-value]


def ratio(model: str | None) -> float:
    """The learned tokens-per-estimate ratio of ``model`` (1.0 until it reported usage)."""
    if not model:
        return 1.0
    entry = _ratios().get(model)
    try:
        value = float(entry["ratio"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return 1.0
    return value if _MIN_SAMPLE <= value <= _MAX_SAMPLE else 1.0


def estimate_text(text: str, model: str | None = None) -> int:
    """Estimated tokens of ``text`` for ``model`` (calibrated when the model has reported usage)."""
    return math.ceil(raw_text_tokens(text) * ratio(model))


def estimate_messages(messages: Iterable[Mapping], model: str | None = None) -> int:
    """Estimated prompt tokens of chat ``messages`` for ``model``."""
    return math.ceil(raw_message_tokens(messages) * ratio(model))


def calibrate(model: str, raw_estimate: int, reported: int) -> float:
    """Fold one report (``reported`` tokens where we estimated ``raw_estimate``) into
    ``model``'s ratio; returns the new ratio."""
    if not model or raw_estimate <= 0 or reported <= 0:
        return ratio(model)
    sample = min(max(reported / raw_estimate, _MIN_SAMPLE), _MAX_SAMPLE)
    with statefile.update(ratios_path()) as data:
        models = data.setdefault("models", {})
        if not isinstance(models, dict):
            models = data["models"] = {}
        entry = models.get(model) if isinstance(models.get(model), dict) else {}
        try:
            old, n = float(entry["ratio"]), int(entry["samples"])
        except (KeyError, TypeError, ValueError):
            old, n = sample, 0
        n = min(n, MAX_SAMPLES - 1)
        new = (old * n + sample) / (n + 1)
        models[model] = {"ratio": round(new, 6), "samples": n + 1}
    return new
