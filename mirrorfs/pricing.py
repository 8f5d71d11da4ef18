"""What a completion cost: a price table per model, USD per million tokens.

Shipped defaults (list prices when this was written; vendors change them) are
overridden by ``prices.yaml`` in the user config folder::

    models:
      gpt-4o-mini: {input: 0.15, output: 0.60, cached: 0.075}
      my-finetune: {input: 3, output: 12}
      claude-3-opus: null            # forget a shipped price: cost becomes unknown
    providers:
      ollama: {input: 0, output: 0}  # every model of a provider without a model price

A model matches a table entry by its exact name or, failing that, by the
longest entry that is a prefix of it followed by ``-``, ``:``, ``@`` or ``.``
(``claude-sonnet-4-5-20250929`` takes ``claude-sonnet-4-5``). A model with no
price costs ``None`` — unknown — never 0.

Cached input tokens (prompt-cache reads) are charged at the ``cached`` price
(the input price when none is given); Anthropic's cache *writes* are counted as
ordinary input, so their 25 % surcharge is not included.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirrorfs.errors import ProviderConfigError
from mirrorfs.provider_config import load_yaml

__all__ = ["PRICES_FILE", "PRICES_AS_OF", "DEFAULT_PRICES", "DEFAULT_PROVIDER_PRICES", "Price", "PriceTable",
           "load_prices", "price_for", "cost"]

PRICES_FILE = "prices.yaml"
PRICES_AS_OF = "2025-11"


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``cached`` None means cached input costs as much as input."""

    input: float
    output: float
    cached: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        cached_tokens = min(max(cached_tokens, 0), input_tokens)
        cached_price = self.input if self.cached is None else self.cached
        return ((input_tokens - cached_tokens) * self.input + cached_tokens * cached_price
                + output_tokens * self.output) / 1_000_000


def _p(i: float, o: float, c: float | None = None) -> Price:
    return Price(i, o, c)


DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": _p(1.25, 10.00, 0.125),
    "gpt-5-mini": _p(0.25, 2.00, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005),
    "gpt-4.1": _p(2.00, 8.00, 0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
    "gpt-4o": _p(2.50, 10.00, 1.25),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075),
    "o3": _p(2.00, 8.00, 0.50),
    "o3-mini": _p(1.10, 4.40, 0.55),
    "o4-mini": _p(1.10, 4.40, 0.275),
    # Anthropic (cached = cache read)
    "claude-opus-4-5": _p(5.00, 25.00, 0.50),
    "claude-opus-4-1": _p(15.00, 75.00, 1.50),
    "claude-opus-4": _p(15.00, 75.00, 1.50),
    "claude-sonnet-4-5": _p(3.00, 15.00, 0.30),
    "claude-sonnet-4": _p(3.00, 15.00, 0.30),
    "claude-haiku-4-5": _p(1.00, 5.00, 0.10),
    "claude-3-7-sonnet": _p(3.00, 15.00, 0.30),
    "claude-3-5-sonnet": _p(3.00, 15.00, 0.30),
    "claude-3-5-haiku": _p(0.80, 4.00, 0.08),
    "claude-3-opus": _p(15.00, 75.00, 1.50),
    "claude-3-haiku": _p(0.25, 1.25, 0.03),
}

# Ollama runs the model on this machine: no per-token charge.
DEFAULT_PROVIDER_PRICES: dict[str, Price] = {"ollama": _p(0.0, 0.0, 0.0)}

_SEPARATORS = ("-", ":", "@", ".")


@dataclass(frozen=True)
class PriceTable:
    """Model and provider prices after prices.yaml was applied."""

    models: dict[str, Price]
    providers: dict[str, Price]

    def price_for(self, model: str | None, provider: str | None = None) -> Price | None:
        """The price of ``model`` (exact name, then longest prefix), else of ``provider``, else None."""
        if model:
            if model in self.models:
                return self.models[model]
            best = None
            for name in self.models:
                if (model.startswith(name) and model[len(name)] in _SEPARATORS
                        and (best is None or len(name) > len(best))):
                    best = name
            if best is not None:
                return self.models[best]
        if provider and provider in self.providers:
            return self.providers[provider]
        return None


def _price(path, where: str, raw) -> Price:
    if not isinstance(raw, dict):
        raise ProviderConfigError(f"{path}: {where} must be a mapping with input and output prices")
    unknown = sorted(set(map(str, raw)) - {"input", "output", "cached"})
    if unknown:
        raise ProviderConfigError(f"{path}: {where} has unknown key {unknown[0]!r} (input, output, cached)")
    values = {}
    for key in ("input", "output", "cached"):
        value = raw.get(key)
        if value is None:
            if key != "cached":
                raise ProviderConfigError(f"{path}: {where} needs {key} (USD per million tokens)")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ProviderConfigError(f"{path}: {where}.{key} must be a number >= 0 (USD per million tokens)")
        values[key] = float(value)
    return Price(**values)


def _section(path, data: dict, key: str, shipped: dict[str, Price]) -> dict[str, Price]:
    table = dict(shipped)
    raw = data.get(key) or {}
    if not isinstance(raw, dict):
        raise ProviderConfigError(f"{path}: {key} must be a mapping of name to prices")
    for name, value in raw.items():
        if value is None:
            table.pop(str(name), None)
        else:
            table[str(name)] = _price(path, f"{key}.{name}", value)
    return table


def load_prices() -> PriceTable:
    """The shipped prices with prices.yaml applied; raises ProviderConfigError for a malformed file."""
    path, data = load_yaml(PRICES_FILE)
    unknown = sorted(set(map(str, data)) - {"models", "providers"})
    if unknown:
        raise ProviderConfigError(f"{path}: unknown section {unknown[0]!r} (models, providers)")
    return PriceTable(_section(path, data, "models", DEFAULT_PRICES),
                      _section(path, data, "providers", DEFAULT_PROVIDER_PRICES))


def price_for(model: str | None, provider: str | None = None, table: PriceTable | None = None) -> Price | None:
    """The price that applies to ``model`` of ``provider``, or None when unknown."""
    return (table or load_prices()).price_for(model, provider)


def cost(usage, model: str | None, provider: str | None = None, table: PriceTable | None = None) -> float | None:
    """USD cost of ``usage`` (anything with input_tokens, output_tokens, cached_tokens), None when unknown."""
    price = price_for(model, provider, table)
    if price is None:
        return None
    return price.cost(int(usage.input_tokens), int(usage.output_tokens), int(getattr(usage, "cached_tokens", 0) or 0))
