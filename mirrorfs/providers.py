"""Choose and configure a provider: ``get_provider("anthropic")``, ``get_provider(profile="work")``.

Built-in: ``openai`` (Chat Completions, any compatible base URL), ``anthropic``
(Messages API), ``ollama`` (native /api/chat). Plug-ins: any installed
distribution that declares an entry point in the group ``mirrorfs.providers``::

    [project.entry-points."mirrorfs.providers"]
    echo = "my_package.module:EchoProvider"   # a subclass of mirrorfs.llm.Provider

A built-in name cannot be taken over by a plug-in.

Each setting comes from the first place that has it: the argument, the
profile (providers.yaml), the environment (``OPENAI_BASE_URL``,
``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST``), the provider's default. A name that
is a profile in providers.yaml means that profile. The API key: the
``api_key`` argument, else the profile's ``api_key_env`` variable (and then
only the keyring: a profile that names its variable never silently uses
another account's), else the vendor's variable (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``), else the OS keyring (service ``mirrorfs-provider``,
account the profile name, then the provider name).
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Mapping

from mirrorfs.errors import ProviderConfigError
from mirrorfs.llm import Completion, Provider, ProviderSettings, StreamEvent, Usage
from mirrorfs.provider_anthropic import AnthropicProvider
from mirrorfs.provider_config import (
    KEYRING_SERVICE,
    Profile,
    ProvidersConfig,
    Secret,
    key_from_env,
    key_from_keyring,
    load_providers_config,
)
from mirrorfs.provider_ollama import OllamaProvider
from mirrorfs.provider_openai import OpenAIProvider
from mirrorfs.retries import RetryPolicy

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_PROVIDERS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "Provider",
    "ProviderSettings",
    "Completion",
    "StreamEvent",
    "Usage",
    "available_providers",
    "provider_class",
    "resolve_settings",
    "get_provider",
]

ENTRY_POINT_GROUP = "mirrorfs.providers"
BUILTIN_PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "ollama": OllamaProvider,
}
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2


def _plugins() -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN_PROVIDERS:
            continue
        if ep.name in found and found[ep.name].value != ep.value:
            raise ProviderConfigError(f"two provider plug-ins are named {ep.name!r}: "
                                      f"{found[ep.name].value} and {ep.value}; uninstall one")
        found.setdefault(ep.name, ep)
    return found


def available_providers() -> dict[str, str]:
    """Every provider name, with where it comes from ("built-in" or the plug-in's module:object)."""
    names = {name: "built-in" for name in BUILTIN_PROVIDERS}
    names.update({name: f"plug-in {ep.value}" for name, ep in sorted(_plugins().items())})
    return names


def provider_class(name: str) -> type[Provider]:
    """The class registered as ``name``; ProviderConfigError when there is none or it does not load."""
    if name in BUILTIN_PROVIDERS:
        return BUILTIN_PROVIDERS[name]
    ep = _plugins().get(name)
    if ep is None:
        known = ", ".join(available_providers())
        raise ProviderConfigError(f"no provider named {name!r} (known: {known})")
    try:
        cls = ep.load()
    except Exception as exc:  # a plug-in can fail in any way; say which and how
        raise ProviderConfigError(f"the provider plug-in {name!r} ({ep.value}) failed to load: "
                                  f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ProviderConfigError(f"the provider plug-in {name!r} ({ep.value}) is not a mirrorfs.llm.Provider "
                                  "subclass")
    return cls


def _choose(name: str | None, profile: str | None, config: ProvidersConfig) -> tuple[str, Profile | None]:
    if profile is not None:
        prof = config.profiles.get(profile)
        if prof is None:
            known = ", ".join(config.profiles) or "none"
            raise ProviderConfigError(f"no profile {profile!r} in {config.path} (profiles: {known})")
        if name is not None and name != prof.provider and name != profile:
            raise ProviderConfigError(f"profile {profile!r} is for {prof.provider}, not {name}")
        return prof.provider, prof
    if name is not None:
        if name in config.profiles:
            return config.profiles[name].provider, config.profiles[name]
        return name, None
    if config.default_profile:
        prof = config.profiles[config.default_profile]
        return prof.provider, prof
    if config.default_provider:
        return config.default_provider, None
    raise ProviderConfigError(
        f"no provider chosen: name one ({', '.join(BUILTIN_PROVIDERS)}) or set default_profile or "
        f"default_provider in {config.path}")


def _key(cls, provider: str, prof: Profile | None, api_key, environ) -> tuple[Secret | None, str]:
    """(the key or None, where it came from — or where one should go)."""
    if isinstance(api_key, str) and not api_key.strip():
        api_key = None
    if api_key is not None:
        if isinstance(api_key, Secret):
            return api_key, api_key.source
        return Secret(str(api_key), "the api_key argument"), "the api_key argument"
    accounts = [prof.name, provider] if prof is not None else [provider]
    if prof is not None and prof.api_key_env:
        found = key_from_env(prof.api_key_env, environ)
        if found is not None:
            source = f"{prof.api_key_env} (api_key_env of profile {prof.name!r})"
            return Secret(found.reveal(), source), source
        hint = (f"{prof.api_key_env} (api_key_env of profile {prof.name!r}) or the OS keyring entry "
                f"{KEYRING_SERVICE}/{prof.name}")
        accounts = [prof.name]
    else:
        found = key_from_env(cls.api_key_env, environ) if cls.api_key_env else None
        if found is not None:
            return found, found.source
        where = f"{cls.api_key_env} or " if cls.api_key_env else ""
        hint = f"{where}the OS keyring entry {KEYRING_SERVICE}/{accounts[0]}"
    for account in accounts:
        found = key_from_keyring(account)
        if found is not None:
            return found, found.source
    return None, hint


def _first(*values):
    return next((v for v in values if v is not None), None)


def resolve_settings(name: str | None = None, *, model: str | None = None, base_url: str | None = None,
                     profile: str | None = None, api_key: str | Secret | None = None,
                     timeout: float | None = None, connect_timeout: float | None = None,
                     max_retries: int | None = None, rate_limit_rpm: float | None = None,
                     max_tokens: int | None = None, retry: RetryPolicy | None = None,
                     require_key: bool = True, environ: Mapping[str, str] | None = None) -> ProviderSettings:
    """The settings `get_provider` would use. ``require_key=False`` resolves without demanding an
    API key (for a dry run that only needs the provider and model)."""
    environ = os.environ if environ is None else environ
    config = load_providers_config()
    provider, prof = _choose(name, profile, config)
    cls = provider_class(provider)
    p = prof or Profile(name="", provider=provider)
    default_model = config.default_model if prof is None and config.default_provider == provider else None
    env_base = environ.get(cls.base_url_env, "").strip() if cls.base_url_env else ""
    url = _first(base_url, p.base_url, cls.base_url_from_env(env_base) if env_base else None, cls.default_base_url)
    if url is not None:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ProviderConfigError(f"the base URL for {provider} must start with http:// or https://")
    key, hint = _key(cls, provider, prof, api_key, environ)
    if (key is None and require_key and cls.requires_key
            and url == (cls.default_base_url or "").rstrip("/")):
        raise ProviderConfigError(f"no API key for {provider}: set {hint}")
    return ProviderSettings(
        provider=provider,
        model=_first(model, p.model, default_model, cls.default_model),
        base_url=url,
        api_key=key,
        key_hint=hint,
        profile=prof.name if prof is not None else None,
        timeout=float(_first(timeout, p.timeout, DEFAULT_TIMEOUT)),
        connect_timeout=float(_first(connect_timeout, p.connect_timeout, DEFAULT_CONNECT_TIMEOUT)),
        max_retries=int(_first(max_retries, retry.max_retries if retry else None, p.max_retries,
                               DEFAULT_MAX_RETRIES)),
        rate_limit_rpm=_first(rate_limit_rpm, p.rate_limit_rpm),
        max_tokens=_first(max_tokens, p.max_tokens),
        retry=retry,
    )


def get_provider(name: str | None = None, **kwargs) -> Provider:
    """A ready provider (see `resolve_settings` for the arguments). Close it, or use it as a
    context manager, to release its connections."""
    settings = resolve_settings(name, **kwargs)
    return provider_class(settings.provider)(settings)
