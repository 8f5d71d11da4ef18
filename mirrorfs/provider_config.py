"""Per-device provider configuration: the user config folder, providers.yaml, API keys.

Nothing here lives in a vault: a vault is synced to other devices and read by
other people, an API key is this device's business. Keys come from an
environment variable or the OS keyring and are held in a `Secret`, whose repr
and str never show the value; providers.yaml names *where* a key is
(``api_key_env``), never the key itself, and a file that holds one is refused.

``providers.yaml`` (in ``config_dir()``)::

    default_profile: work          # or default_provider / default_model
    profiles:
      work:
        provider: anthropic
        model: claude-sonnet-4-5
        api_key_env: WORK_ANTHROPIC_KEY
        rate_limit_rpm: 50
        timeout: 120               # read timeout, seconds
        connect_timeout: 5
        max_retries: 2
      local:
        provider: openai
        base_url: http://127.0.0.1:1234/v1
        model: qwen2.5-7b-instruct
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs
import yaml

from mirrorfs import os_keyring
from mirrorfs.errors import ProviderConfigError

__all__ = [
    "ENV_CONFIG_DIR",
    "KEYRING_SERVICE",
    "PROVIDERS_FILE",
    "Secret",
    "Profile",
    "ProvidersConfig",
    "config_dir",
    "load_yaml",
    "load_providers_config",
    "key_from_env",
    "key_from_keyring",
    "store_key_in_keyring",
    "redact_url",
    "ollama_host_url",
]

ENV_CONFIG_DIR = "MIRRORFS_CONFIG_DIR"
KEYRING_SERVICE = "mirrorfs-provider"
PROVIDERS_FILE = "providers.yaml"

_PROFILE_KEYS = {
    "provider", "model", "base_url", "api_key_env", "rate_limit_rpm", "timeout", "connect_timeout",
    "max_retries", "max_tokens",
}
_TOP_KEYS = {"default_profile", "default_provider", "default_model", "profiles"}
_SECRET_KEYS = {"api_key", "key", "token", "secret", "password", "apikey", "api-key"}


class Secret:
    """An API key with where it came from; shows only its source, never its value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The key itself: for the request header, nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return f"<Secret from {self.source}>"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("an API key is not pickled")


@dataclass(frozen=True)
class Profile:
    """A named set of provider settings from providers.yaml; None means "not set"."""

    name: str
    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    rate_limit_rpm: float | None = None
    timeout: float | None = None
    connect_timeout: float | None = None
    max_retries: int | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class ProvidersConfig:
    """What providers.yaml says (all empty when there is no file)."""

    path: Path
    default_profile: str | None = None
    default_provider: str | None = None
    default_model: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)


def config_dir() -> Path:
    """This device's mirrorfs config folder (`MIRRORFS_CONFIG_DIR` overrides the platform's)."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("mirrorfs", appauthor=False))


def load_yaml(name: str) -> tuple[Path, dict]:
    """(path, mapping) of a YAML file in the config folder; an empty mapping when it does not exist."""
    path = config_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return path, {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ProviderConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ProviderConfigError(f"{path}{where}: not valid YAML") from None
    if data is None:
        return path, {}
    if not isinstance(data, dict):
        raise ProviderConfigError(f"{path}: expected a mapping at the top")
    return path, data


def _number(path: Path, where: str, value, kind=float, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ProviderConfigError(f"{path}: {where} must be a number >= {minimum:g}")
    if kind is int and value != int(value):
        raise ProviderConfigError(f"{path}: {where} must be a whole number")
    return kind(value)


def _text(path: Path, where: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProviderConfigError(f"{path}: {where} must be a non-empty string")
    return value.strip()


def _refuse_secrets(path: Path, where: str, mapping: dict) -> None:
    for key in mapping:
        if str(key).lower() in _SECRET_KEYS:
            raise ProviderConfigError(
                f"{path}: {where}{key} would put a secret in a file; name the variable that holds it "
                f"with api_key_env, or store it in the OS keyring (service {KEYRING_SERVICE!r})"
            )


def _profile(path: Path, name: str, raw) -> Profile:
    where = f"profiles.{name}"
    if not isinstance(raw, dict):
        raise ProviderConfigError(f"{path}: {where} must be a mapping")
    _refuse_secrets(path, f"{where}.", raw)
    unknown = sorted(set(map(str, raw)) - _PROFILE_KEYS)
    if unknown:
        raise ProviderConfigError(
            f"{path}: {where} has unknown setting {unknown[0]!r} (known: {', '.join(sorted(_PROFILE_KEYS))})"
        )
    if "provider" not in raw:
        raise ProviderConfigError(f"{path}: {where} needs a provider (openai, anthropic, ollama or a plug-in)")
    values: dict = {"name": name, "provider": _text(path, f"{where}.provider", raw["provider"])}
    for key in ("model", "base_url", "api_key_env"):
        if raw.get(key) is not None:
            values[key] = _text(path, f"{where}.{key}", raw[key])
    for key in ("rate_limit_rpm", "timeout", "connect_timeout"):
        if raw.get(key) is not None:
            values[key] = _number(path, f"{where}.{key}", raw[key], minimum=0.001)
    if raw.get("max_retries") is not None:
        values["max_retries"] = _number(path, f"{where}.max_retries", raw["max_retries"], int, 0)
    if raw.get("max_tokens") is not None:
        values["max_tokens"] = _number(path, f"{where}.max_tokens", raw["max_tokens"], int, 1)
    return Profile(**values)


def load_providers_config() -> ProvidersConfig:
    """Read and check providers.yaml; raises ProviderConfigError naming the file and the setting."""
    path, data = load_yaml(PROVIDERS_FILE)
    _refuse_secrets(path, "", data)
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise ProviderConfigError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    raw_profiles = data.get("profiles") or {}
    if not isinstance(raw_profiles, dict):
        raise ProviderConfigError(f"{path}: profiles must be a mapping of name to settings")
    profiles = {str(name): _profile(path, str(name), raw) for name, raw in raw_profiles.items()}
    defaults = {}
    for key in ("default_profile", "default_provider", "default_model"):
        if data.get(key) is not None:
            defaults[key] = _text(path, key, data[key])
    if defaults.get("default_profile") and defaults["default_profile"] not in profiles:
        raise ProviderConfigError(f"{path}: default_profile {defaults['default_profile']!r} is not a profile")
    return ProvidersConfig(path=path, profiles=profiles, **defaults)


def key_from_env(variable: str, environ=None) -> Secret | None:
    """The key in environment variable ``variable``, or None when unset or blank."""
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    return Secret(value, variable) if value else None


def key_from_keyring(account: str) -> Secret | None:
    """The key stored in the OS keyring under (``mirrorfs-provider``, ``account``), or None
    (no keyring package, no usable backend, nothing stored)."""
    value = os_keyring.get(KEYRING_SERVICE, account)
    if not value or not value.strip():
        return None
    return Secret(value.strip(), f"the OS keyring ({KEYRING_SERVICE}/{account})")


def store_key_in_keyring(account: str, key: str) -> None:
    """Keep an API key for ``account`` (a profile or provider name) in the OS keyring;
    raises KeyringUnavailableError when the keyring cannot be used."""
    os_keyring.store(KEYRING_SERVICE, account, key)


def redact_url(url: str) -> str:
    """``url`` without a user name or password in it, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def ollama_host_url(value: str | None, default: str = "http://127.0.0.1:11434") -> str:
    """A base URL from an ``OLLAMA_HOST``-style value, read as Ollama's own clients do:
    ``host``, ``host:port`` or a URL; port 11434 when neither scheme nor port is given."""
    value = (value or "").strip()
    if not value:
        return default
    has_scheme = "://" in value
    parts = urlsplit(value if has_scheme else "http://" + value)
    scheme = parts.scheme or "http"
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (11434 if not has_scheme else (443 if scheme == "https" else 80))
    return urlunsplit((scheme, f"{host}:{port}", parts.path.rstrip("/"), "", ""))
