"""Provider configuration per device: providers.yaml, environment, keyring, plug-ins, rate limit across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keyring
import pytest
from conftest import close_pipes
from fake_llm import FakeLLM, anthropic_error, openai_completion
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError

from mirrorfs import os_keyring
from mirrorfs.errors import (
    KeyringUnavailableError,
    ProviderAuthError,
    ProviderConfigError,
)
from mirrorfs.provider_config import (
    Secret,
    ollama_host_url,
    redact_url,
    store_key_in_keyring,
)
from mirrorfs.providers import available_providers, get_provider, resolve_settings

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def config(state_dir):
    folder = state_dir / "config"
    folder.mkdir()

    def write(name: str, text: str):
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder / name

    return write


class MemoryKeyring(KeyringBackend):
    """A real keyring backend (keyring's plug-in API) that keeps entries in memory."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.entries.pop((service, username), None)


@pytest.fixture(autouse=True)
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


# -- providers.yaml -------------------------------------------------------------------

def test_a_profile_supplies_provider_model_url_limits_and_key_variable(config, monkeypatch):
    config("providers.yaml", """\
        default_profile: local
        profiles:
          local:
            provider: openai
            base_url: http://127.0.0.1:1234/v1/
            model: qwen2.5-7b-instruct
            rate_limit_rpm: 30
            timeout: 45
            connect_timeout: 2
            max_retries: 4
            max_tokens: 256
          work:
            provider: anthropic
            api_key_env: WORK_KEY
    """)
    monkeypatch.setenv("WORK_KEY", "sk-ant-work-000000")
    by_default = resolve_settings()
    assert (by_default.provider, by_default.profile, by_default.model, by_default.base_url) == (
        "openai", "local", "qwen2.5-7b-instruct", "http://127.0.0.1:1234/v1")
    assert (by_default.rate_limit_rpm, by_default.timeout, by_default.connect_timeout, by_default.max_retries,
            by_default.max_tokens) == (30, 45.0, 2.0, 4, 256)
    assert by_default.api_key is None  # a local server: no key needed, none demanded
    assert resolve_settings("local") == resolve_settings(profile="local") == by_default
    work = resolve_settings("work")
    assert (work.provider, work.base_url, work.model) == ("anthropic", "https://api.anthropic.com",
                                                          "claude-sonnet-4-5")
    assert work.api_key.reveal() == "sk-ant-work-000000"
    assert work.key_hint == "WORK_KEY (api_key_env of profile 'work')"
    # Arguments beat the profile.
    assert resolve_settings("local", model="llama3.1-8b", timeout=5).model == "llama3.1-8b"


def test_default_provider_and_model_and_the_precedence_of_base_urls(config, monkeypatch):
    config("providers.yaml", "default_provider: ollama\ndefault_model: qwen3:8b\n")
    assert (resolve_settings().provider, resolve_settings().model) == ("ollama", "qwen3:8b")
    assert resolve_settings().base_url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    assert resolve_settings().base_url == "http://0.0.0.0:9999"
    assert resolve_settings(base_url="http://10.1.2.3:11434").base_url == "http://10.1.2.3:11434"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    openai = resolve_settings("openai")
    assert openai.base_url == "http://127.0.0.1:8000/v1" and openai.model == "gpt-4o-mini"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8001")
    assert resolve_settings("anthropic", require_key=False).base_url == "http://127.0.0.1:8001"


@pytest.mark.parametrize("value, url", [
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("myhost:1234", "http://myhost:1234"),
    ("http://myhost", "http://myhost:80"),
    ("https://ollama.example.com", "https://ollama.example.com:443"),
    ("https://example.com:56789/path/", "https://example.com:56789/path"),
    ("[::1]:11434", "http://[::1]:11434"),
])
def test_ollama_host_is_read_as_ollama_reads_it(value, url):
    assert ollama_host_url(value) == url


def test_no_provider_chosen_says_how_to_choose(config):
    with pytest.raises(ProviderConfigError) as caught:
        resolve_settings()
    assert str(caught.value).startswith("no provider chosen: name one (openai, anthropic, ollama) or set "
                                        "default_profile or default_provider in ")


@pytest.mark.parametrize("text, message", [
    ("profiles:\n  p:\n    provider: openai\n    api_key: sk-oops\n",
     "profiles.p.api_key would put a secret in a file; name the variable that holds it with api_key_env, "
     "or store it in the OS keyring (service 'mirrorfs-provider')"),
    ("profiles:\n  p:\n    provider: openai\n    modle: gpt-4o\n", "profiles.p has unknown setting 'modle'"),
    ("profiles:\n  p:\n    model: gpt-4o\n", "profiles.p needs a provider"),
    ("profiles:\n  p:\n    provider: openai\n    rate_limit_rpm: fast\n", "profiles.p.rate_limit_rpm must be a number"),
    ("default_profile: nope\n", "default_profile 'nope' is not a profile"),
    ("profiles: [\n", "line 2: not valid YAML"),
    ("colour: blue\n", "unknown setting 'colour'"),
])
def test_a_bad_providers_yaml_is_one_clear_line(config, text, message):
    path = config("providers.yaml", text)
    with pytest.raises(ProviderConfigError) as caught:
        resolve_settings("openai")
    assert str(caught.value).startswith(f"{path}")
    assert message in str(caught.value)
    assert "sk-oops" not in str(caught.value)


def test_a_missing_key_for_the_vendor_api_names_the_variable(config):
    with pytest.raises(ProviderConfigError) as caught:
        get_provider("openai")
    assert str(caught.value) == ("no API key for openai: set OPENAI_API_KEY or the OS keyring entry "
                                 "mirrorfs-provider/openai")


def test_a_profile_naming_its_variable_never_falls_back_to_the_vendor_variable(config, monkeypatch):
    config("providers.yaml", "profiles:\n  work:\n    provider: anthropic\n    api_key_env: WORK_KEY\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-personal-0000")
    with pytest.raises(ProviderConfigError) as caught:
        get_provider("work")
    assert str(caught.value) == ("no API key for anthropic: set WORK_KEY (api_key_env of profile 'work') "
                                 "or the OS keyring entry mirrorfs-provider/work")


def test_keys_come_from_the_os_keyring_and_a_401_names_that_entry(config, memory_keyring):
    store_key_in_keyring("anthropic", "sk-ant-from-keyring-123456")
    assert memory_keyring.entries == {("mirrorfs-provider", "anthropic"): "sk-ant-from-keyring-123456"}
    with FakeLLM(default=anthropic_error(401, "authentication_error", "invalid x-api-key")) as server:
        with get_provider("anthropic", base_url=server.url) as p:
            assert repr(p.settings.api_key) == "<Secret from the OS keyring (mirrorfs-provider/anthropic)>"
            with pytest.raises(ProviderAuthError) as caught:
                p.complete(MESSAGES)
        assert server.requests[0].headers["x-api-key"] == "sk-ant-from-keyring-123456"
    assert str(caught.value) == ("anthropic rejected the API key (401 authentication_error): fix the OS keyring "
                                 "(mirrorfs-provider/anthropic)")


def test_a_profile_key_in_the_keyring_is_found_under_the_profile_name(config, memory_keyring):
    config("providers.yaml", "profiles:\n  team:\n    provider: openai\n")
    memory_keyring.set_password("mirrorfs-provider", "team", "sk-team-key-999999")
    assert resolve_settings("team").api_key.reveal() == "sk-team-key-999999"


class RefusingKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise KeyringError("locked")

    def set_password(self, service, username, password):
        raise KeyringError("locked")


def test_a_keyring_that_refuses_reads_as_empty_and_says_so_on_store(config):
    keyring.set_keyring(RefusingKeyring())
    assert os_keyring.get("mirrorfs-provider", "openai") is None
    with pytest.raises(KeyringUnavailableError) as caught:
        store_key_in_keyring("openai", "sk-refused-0000000")
    assert str(caught.value) == "the OS keyring refused to store the secret: KeyringError"
    with pytest.raises(ProviderConfigError, match="no API key for openai"):
        get_provider("openai")


def test_os_keyring_forget(memory_keyring):
    os_keyring.store("svc", "acct", "s3cret")
    assert os_keyring.forget("svc", "acct") is True
    assert os_keyring.get("svc", "acct") is None


def test_secret_and_url_redaction():
    secret = Secret("sk-very-secret-123", "OPENAI_API_KEY")
    assert str(secret) == repr(secret) == "<Secret from OPENAI_API_KEY>"
    assert redact_url("https://user:pa55@proxy.example/v1") == "https://***@proxy.example/v1"
    assert redact_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434"


def test_a_base_url_without_a_scheme_is_refused(config):
    with pytest.raises(ProviderConfigError, match="must start with http:// or https://"):
        resolve_settings("ollama", base_url="localhost:11434")


# -- plug-ins -------------------------------------------------------------------------

def _plugin(tmp_path, monkeypatch, module: str, code: str, entries: str) -> None:
    root = tmp_path / f"site-{module}"
    root.mkdir()
    (root / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    dist = root / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[mirrorfs.providers]\n{entries}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))


ECHO = """\
    from mirrorfs.llm import Completion, Provider, Usage

    class EchoProvider(Provider):
        default_model = "echo-1"

        def complete(self, messages, model=None, max_tokens=None, temperature=None, **options):
            text = messages[-1]["content"][::-1]
            return Completion(text, "end_turn", model or self.settings.model, self.settings.provider,
                              Usage(len(messages), len(text)))
"""


def test_a_provider_registered_through_an_entry_point_is_found_and_used(tmp_path, monkeypatch, config):
    _plugin(tmp_path, monkeypatch, "mirrorfs_echo_plugin", ECHO,
            "echo = mirrorfs_echo_plugin:EchoProvider\nopenai = mirrorfs_echo_plugin:EchoProvider")
    assert available_providers() == {"openai": "built-in", "anthropic": "built-in", "ollama": "built-in",
                                     "echo": "plug-in mirrorfs_echo_plugin:EchoProvider"}
    with get_provider("echo") as p:
        assert type(p).__name__ == "EchoProvider" and p.model == "echo-1"
        result = p.complete(MESSAGES)
        events = list(p.stream(MESSAGES, model="echo-2"))
    assert (result.text, result.provider, result.model) == ("olleh", "echo", "echo-1")
    assert [e.type for e in events] == ["text", "done"]
    assert events[0].text == "olleh" and events[1].completion.model == "echo-2"
    # A plug-in cannot take a built-in's name.
    assert type(get_provider("openai", api_key="k")).__name__ == "OpenAIProvider"
    # And a profile can name the plug-in.
    config("providers.yaml", "profiles:\n  mirror:\n    provider: echo\n    model: echo-3\n")
    assert get_provider("mirror").complete(MESSAGES).model == "echo-3"


def test_a_plugin_that_fails_to_load_is_a_clear_error(tmp_path, monkeypatch):
    _plugin(tmp_path, monkeypatch, "mirrorfs_broken_plugin", "import no_such_module_here\n",
            "broken = mirrorfs_broken_plugin:Broken")
    with pytest.raises(ProviderConfigError) as caught:
        get_provider("broken")
    assert str(caught.value) == ("the provider plug-in 'broken' (mirrorfs_broken_plugin:Broken) failed to load: "
                                 "ModuleNotFoundError: No module named 'no_such_module_here'")
    with pytest.raises(ProviderConfigError, match=r"no provider named 'nonesuch' \(known: openai, anthropic, "
                                                  r"ollama, broken\)"):
        get_provider("nonesuch")


# -- the rate limit across processes --------------------------------------------------

CHILD = """\
import sys
from mirrorfs.providers import get_provider
print("ready", flush=True)
sys.stdin.readline()
with get_provider("openai", base_url=sys.argv[1], api_key="sk-child", rate_limit_rpm=300) as p:
    for i in range(3):
        p.complete([{"role": "user", "content": f"{sys.argv[2]} {i}"}])
print("done", flush=True)
"""


def test_the_rate_limit_is_shared_by_two_processes_of_the_device():
    with FakeLLM(default=openai_completion("ok")) as server:
        children = [subprocess.Popen([sys.executable, "-c", CHILD, server.url, name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True) for name in ("a", "b")]
        try:
            for child in children:
                assert child.stdout.readline() == "ready\n"
            for child in children:  # both start at once
                child.stdin.write("go\n")
                child.stdin.flush()
            for child in children:
                assert child.stdout.readline() == "done\n"
                assert child.wait(30) == 0
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                close_pipes(child)
        requests = server.requests
    assert sorted(r.json()["messages"][0]["content"] for r in requests) == ["a 0", "a 1", "a 2",
                                                                           "b 0", "b 1", "b 2"]
    times = sorted(r.time for r in requests)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # 300 rpm = one request every 0.2 s on this device, whichever process sends it.
    assert min(gaps) >= 0.15, gaps
    assert times[-1] - times[0] >= 5 * 0.2 * 0.9
