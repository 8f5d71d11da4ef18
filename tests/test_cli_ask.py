"""`mirrorfs ask`, `chat`, `context` and `usage` through click's CliRunner (and one real Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import snapshot_tree
from fake_llm import FakeLLM, openai_error, openai_stream

from mirrorfs.cli import cli
from mirrorfs.vault import Vault

MIRRORFS = Path(sys.executable).parent / "mirrorfs"
PLANTED_KEY = "sk-proj-PLANTEDkey0123456789abcdefXYZ"
FOOTER = "[openai gpt-4o-mini-2024-07-18 · 12 in / 5 out · $0.000005 · {path}]"


@pytest.fixture
def fake():
    with FakeLLM(default=openai_stream(["Hello ", "there."])) as server:
        yield server


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    root = tmp_path / "vault"

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--vault", str(root), "--instance", "laptop", *args], input=input,
                             catch_exceptions=False)

    assert runner.invoke(cli, ["--instance", "laptop", "init", str(root), "--name", "Mira"]).exit_code == 0
    invoke.root = root
    invoke.vault = lambda: Vault.open(root, instance="laptop")
    return invoke


def openai(fake) -> list[str]:
    return ["--provider", "openai", "--base-url", fake.url + "/v1", "--model", "gpt-4o-mini"]


def only_session(run):
    (s,) = run.vault().sessions.list(instance="laptop")
    return s


def test_ask_streams_the_reply_and_prints_usage_on_stderr(run, fake):
    r = run("ask", "Hi", *openai(fake))
    s = only_session(run)
    assert (r.exit_code, r.stdout) == (0, "Hello there.\n")
    assert r.stderr == FOOTER.format(path=s.relpath) + "\n"
    assert [(m.role, m.content) for m in s.get_messages()] == [("user", "Hi"), ("assistant", "Hello there.")]
    data = json.loads(run("ask", "Again", *openai(fake), "--json").stdout)
    assert data["text"] == "Hello there." and data["session"] == s.id and data["usage"]["input_tokens"] == 12
    assert data["estimated_cost_usd"] == pytest.approx(4.8e-06) and data["context"]["strategy"] == "relevant"


def test_a_401_is_one_line_and_says_where_the_message_is(run, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    fake.default = openai_error(401, "Incorrect API key provided", type="invalid_request_error",
                                code="invalid_api_key")
    r = run("ask", "Remember the tea?", *openai(fake))
    s = only_session(run)
    assert r.exit_code == 1
    assert r.output == ("Error: openai rejected the API key (401 invalid_api_key): fix OPENAI_API_KEY; your "
                        f"message is kept in {s.relpath}\n")
    assert [m.content for m in s.get_messages()] == ["Remember the tea?"]


def test_dry_run_needs_no_key_writes_nothing_and_equals_context(run):
    run.vault().remember("Sam drinks green tea in the morning", title="Green tea")
    before = snapshot_tree(run.root)
    r = run("ask", "What about tea?", "--dry-run", "--provider", "anthropic", "--budget", "600")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "Dry run: nothing is sent and nothing is written."
    assert re.fullmatch(r"provider anthropic · model claude-sonnet-4-5 · instance laptop · session \(a new one\) · "
                        r"strategy relevant · budget 600 · \d+ tokens \(estimated\)", lines[1]), lines[1]
    assert lines[3] == "Items, in the order they are sent:"
    assert re.fullmatch(r"   1\. soul +\d+ tok  SOUL\.md", lines[4])
    assert lines[5] == "        pinned: who you are (SOUL.md)"
    memory = lines.index(next(x for x in lines if "memory/green-tea.md" in x))
    assert lines[memory + 1].startswith("        relevant: memory, score ")
    assert "Messages exactly as they would be sent:" in lines
    assert lines[-2:] == ["--- user ---", "What about tea?"]
    assert "Sam drinks green tea in the morning" in r.stdout
    assert snapshot_tree(run.root) == before
    same = run("context", "What about tea?", "--provider", "anthropic", "--budget", "600")
    minute = re.compile(r"now \d{4}-\d\d-\d\d \d\d:\d\d")
    assert minute.sub("now", same.stdout) == minute.sub("now", r.stdout)
    data = json.loads(run("context", "What about tea?", "--json").stdout)
    assert data["dry_run"] is True and data["provider"] is None and data["notes"][0].startswith("no provider:")
    assert [i["kind"] for i in data["items"]][0] == "soul" and data["used_tokens"] <= 2000


def test_chat_keeps_one_session_and_reads_until_quit(run, fake):
    r = run("chat", *openai(fake), input="Hi\n\nAnd more\n/quit\n")
    s = only_session(run)
    footer = FOOTER.format(path=s.relpath)
    assert r.exit_code == 0
    assert r.output == ("Chat with Mira as laptop · openai gpt-4o-mini · strategy relevant. Ctrl-C stops a reply; "
                        f"Ctrl-D or /quit leaves.\nyou> mira> Hello there.\n{footer}\nyou> you> mira> Hello there.\n"
                        f"{footer}\nyou> ")
    assert [m.content for m in s.get_messages()] == ["Hi", "Hello there.", "And more", "Hello there."]
    assert [m["role"] for m in fake.requests[1].json()["messages"]] == ["system", "user", "assistant", "user"]


def test_chat_with_a_pattern_parses_every_reply(run, fake):
    fake.default = openai_stream(["✦ It depends ⟨medium⟩ on ", "the photos."])
    r = run("chat", *openai(fake), "--pattern", "analytical", input="Can we launch in December?\n")
    assert "✦ It depends ⟨medium⟩ on the photos.\n" in r.stdout
    assert "[✦ analytical · uncertainty medium: gather more information]\n" in r.stderr
    system = fake.requests[0].json()["messages"][0]["content"]
    assert "## Reflective pattern: Analytical ✦" in system and "Name the assumptions" in system
    answer = only_session(run).get_messages()[-1]
    assert answer.content == "✦ It depends on the photos."
    assert (answer.meta["pattern"], answer.meta["uncertainty"], answer.meta["glyphs"]) == ("analytical", "medium",
                                                                                           ["✦"])


def test_usage_table(run, fake):
    fake.script(openai_stream(["A."], usage=(1000, 100, 0)), openai_stream(["B."], model="mystery-1",
                                                                           usage=(50, 5, 0)))
    run("ask", "First", *openai(fake))
    run("ask", "Second", *openai(fake))
    r = run("usage", "--since", "all")
    assert r.output == (
        "Usage all time, by model:\n"
        "model                   calls     prompt  completion      total  cost\n"
        "gpt-4o-mini-2024-07-18      1       1000         100       1100  $0.0002\n"
        "mystery-1                   1         50           5         55  unknown (1 call of models without a price)\n"
        "total                       2       1050         105       1155  unknown (1 call of models without a price; "
        "$0.0002 for the rest)\n")
    s = only_session(run)
    r = run("usage", "--by", "session", "--json")
    data = json.loads(r.stdout)
    assert [row["key"] for row in data["rows"]] == [s.id] and data["total"]["estimated_cost_usd"] is None
    assert run("usage", "--since", "2999-01-01").output.startswith("No AI calls recorded (since 2999-01-01")


@pytest.mark.parametrize("command", ["ask", "chat", "context", "usage", "reflect", "patterns"])
def test_help_has_examples(run, command):
    assert "Examples:" in run(command, "--help").output


def test_ctrl_c_keeps_the_partial_reply_marked_interrupted(tmp_path, state_dir):
    root = tmp_path / "vault"
    Vault.init(root, name="Mira", instance="laptop")
    release = threading.Event()
    reply = openai_stream(["The first part, ", "then the rest."])
    reply.hold_after, reply.hold = 2, release  # the role chunk and one piece, then the stream stalls
    with FakeLLM(default=reply) as fake:
        env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "MIRRORFS_CONFIG_DIR": str(state_dir / "config")}
        proc = subprocess.Popen([str(MIRRORFS), "--vault", str(root), "--instance", "laptop", "ask", "Tell me",
                                 "--provider", "openai", "--base-url", fake.url + "/v1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            got = b""
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                while b"first part" not in got:
                    assert sel.select(timeout=60), f"no reply text streamed: {got!r}"
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    assert chunk, f"mirrorfs ask ended early: {proc.stderr.read()!r}"
                    got += chunk
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
    (s,) = Vault.open(root, instance="laptop").sessions.list(instance="laptop")
    assert proc.returncode == 130, err
    assert err.decode().endswith(f"[interrupted: your message is kept in {s.relpath}, with the partial reply "
                                 "marked interrupted]\n")
    question, partial = s.get_messages()
    assert (question.content, partial.content) == ("Tell me", "The first part, ")
    assert partial.meta["interrupted"] is True and partial.meta["interrupt_reason"] == "stopped by the user"
