"""vault.ask / ask_stream against fake vendor servers on 127.0.0.1: the conversation is the file."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM, anthropic_stream, openai_error, openai_stream

from mirrorfs import pricing, tokens, usage
from mirrorfs.errors import (
    InvalidValueError,
    ProviderAuthError,
    ProviderConfigError,
    StreamInterruptedError,
)
from mirrorfs.llm import Usage
from mirrorfs.vault import Vault

PLANTED_KEY = "sk-proj-PLANTEDkey0123456789abcdefXYZ"
PASS = "correct horse battery staple"


@pytest.fixture
def fake():
    with FakeLLM() as server:
        yield server


def openai(fake, **kwargs):
    return {"provider": "openai", "base_url": fake.url + "/v1", "model": "gpt-4o-mini", **kwargs}


def tree_bytes(root) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_the_request_has_soul_memory_and_the_others_and_fits_without_secrets_or_key(vault, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    phone = Vault.open(vault.root, instance="phone")
    phone.instances.ensure_card()
    phone.remember("Sam's day rate is 600 euros, invoiced monthly.", title="Day rate")
    vault.unlock(PASS)
    vault.remember("Day rate for the secret client: PLANTEDRATE999", title="Secret day rate", secret=True)
    vault.lock()
    fake.default = openai_stream(["Your day rate ", "is 600 euros."], usage=(700, 9, 100))
    result = vault.ask("What is my day rate?", budget_tokens=800, **openai(fake))

    request = fake.requests[0]
    body = request.body.decode("utf-8")
    messages = request.json()["messages"]
    system = messages[0]["content"]
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "What is my day rate?"}
    assert "This file is who you are." in system  # SOUL.md
    assert "Sam's day rate is 600 euros, invoiced monthly." in system  # the relevant memory
    assert 'phone added memory "Day rate" (memory/day-rate.md)' in system  # the other instance, lately
    assert tokens.raw_message_tokens(messages) <= 800  # the ratio was 1.0 when the prompt was built
    assert "PLANTEDRATE999" not in body and "🔒 [encrypted section]" in body
    assert PLANTED_KEY not in body and request.headers["authorization"] == f"Bearer {PLANTED_KEY}"

    s = vault.sessions.load(result.session.id)
    question, answer = s.get_messages()
    assert (question.role, question.content) == ("user", "What is my day rate?")
    assert (answer.role, answer.content) == ("assistant", "Your day rate is 600 euros.")
    expected_cost = pricing.cost(Usage(700, 9, 100), "gpt-4o-mini-2024-07-18", "openai")
    assert answer.meta["usage"] == {"input_tokens": 700, "output_tokens": 9, "cached_tokens": 100,
                                    "estimated": False}
    assert answer.meta["model"] == "gpt-4o-mini-2024-07-18" and answer.meta["provider"] == "openai"
    assert answer.meta["cost_usd"] == round(expected_cost, 8) and answer.meta["in_reply_to"] == question.id
    meta = s.meta
    assert (meta["prompt_tokens"], meta["completion_tokens"], meta["cost_usd"]) == (700, 9, round(expected_cost, 8))
    assert s.get_token_usage() == {**s.get_token_usage(), "prompt_tokens": 700, "completion_tokens": 9,
                                   "total_tokens": 709, "estimated_cost_usd": round(expected_cost, 8)}
    assert PLANTED_KEY.encode() not in tree_bytes(vault.root)


def test_events_in_order_and_the_session_continues(vault, fake):
    fake.default = openai_stream(["Hel", "lo."])
    events = list(vault.ask_stream("Hi", **openai(fake)))
    assert [e.type for e in events] == ["saved", "context", "text", "text", "done"]
    first = events[-1].result.session
    assert first.path.parent.name == "laptop" and first.title == "Hi"
    again = vault.ask("And again", **openai(fake))
    assert again.session.id == first.id and len(again.session.get_messages()) == 4
    # The second prompt carries the first exchange as turns.
    assert [m["role"] for m in fake.requests[1].json()["messages"]] == ["system", "user", "assistant", "user"]
    new = vault.ask("Something else", new=True, **openai(fake))
    assert new.session.id != first.id
    assert new.session.meta["previous"] == f"[[{first.id}]]" and first.meta["next"] == f"[[{new.session.id}]]"


def test_another_instances_session_is_refused_before_anything_is_written(vault, fake):
    phone = Vault.open(vault.root, instance="phone")
    theirs = phone.sessions.create("Phone talk")
    before = theirs.path.read_bytes()
    with pytest.raises(InvalidValueError, match="belongs to instance phone; each instance writes only its own"):
        vault.ask("Hi", session=theirs.id, **openai(fake))
    assert theirs.path.read_bytes() == before and fake.requests == []


def test_a_401_is_one_line_naming_the_variable_and_keeps_the_message(vault, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    fake.default = openai_error(401, f"Incorrect API key provided: {PLANTED_KEY}", type="invalid_request_error",
                                code="invalid_api_key")
    events = vault.ask_stream("Remember the tea?", **openai(fake))
    saved = next(events)
    with pytest.raises(ProviderAuthError) as caught:
        list(events)
    assert str(caught.value) == "openai rejected the API key (401 invalid_api_key): fix OPENAI_API_KEY"
    messages = saved.session.get_messages()
    assert [(m.role, m.content) for m in messages] == [("user", "Remember the tea?")]


def test_a_cut_stream_keeps_the_partial_reply_marked_interrupted(vault, fake):
    fake.default = anthropic_stream(["The ryokan ", "is booked ", "for the 31st."], cut_after=2)
    with pytest.raises(StreamInterruptedError) as caught:
        vault.ask("Is the ryokan booked?", provider="anthropic", base_url=fake.url, model="claude-sonnet-4-5")
    session = vault.sessions.list(instance="laptop")[0]
    question, partial = session.get_messages()
    assert partial.content == "The ryokan is booked "
    assert partial.meta["interrupted"] is True and partial.meta["interrupt_reason"] == str(caught.value)
    assert partial.meta["usage"]["estimated"] is True and partial.meta["in_reply_to"] == question.id
    assert session.get_token_usage()["interrupted"] == 1


def test_a_caller_that_stops_early_keeps_the_partial_reply(vault, fake):
    fake.default = openai_stream(["One, ", "two, ", "three."])
    events = vault.ask_stream("Count", **openai(fake))
    for event in events:
        if event.type == "text":
            break
    events.close()  # what Ctrl-C in a terminal amounts to
    question, partial = vault.sessions.list(instance="laptop")[0].get_messages()
    assert partial.content == "One, " and partial.meta["interrupted"] is True
    assert partial.meta["interrupt_reason"] == "stopped by the user"


def test_include_locked_sends_the_section_and_stores_the_reply_sealed(vault, fake):
    vault.unlock(PASS)
    vault.remember("The gate code is PLANTEDGATE42", title="Gate code", secret=True)
    fake.default = openai_stream(["It is PLANTEDGATE42."])
    result = vault.ask("What is the gate code?", include_locked=True, **openai(fake))
    assert "PLANTEDGATE42" in fake.requests[0].body.decode()
    assert b"PLANTEDGATE42" not in result.session.path.read_bytes()
    assert vault.readable(result.session.get_messages()[-1].content) == "It is PLANTEDGATE42."


def test_unknown_prices_are_unknown_and_the_usage_report_groups(vault, fake):
    fake.script(openai_stream(["A."], usage=(100, 10, 0)), openai_stream(["B."], model="mystery-1", usage=(50, 5, 0)))
    vault.ask("First", **openai(fake))
    vault.ask("Second", **openai(fake))
    s = vault.sessions.list(instance="laptop")[0]
    got = s.get_token_usage()
    assert got["estimated_cost_usd"] is None and got["unpriced_calls"] == 1 and got["total_tokens"] == 165
    assert s.meta["unpriced_calls"] == 1
    phone = Vault.open(vault.root, instance="phone")
    fake.script(openai_stream(["C."], usage=(10, 1, 0)))
    phone.ask("Third", **openai(fake))
    by_instance = usage.vault_usage(vault, by="instance")
    assert [(r["key"], r["calls"], r["total_tokens"]) for r in by_instance["rows"]] == [("laptop", 2, 165),
                                                                                         ("phone", 1, 11)]
    by_model = usage.vault_usage(vault, since="30d", by="model")
    keys = {r["key"]: r for r in by_model["rows"]}
    assert keys["mystery-1"]["estimated_cost_usd"] is None
    assert keys["gpt-4o-mini-2024-07-18"]["calls"] == 2 and keys["gpt-4o-mini-2024-07-18"]["estimated_cost_usd"] > 0
    assert by_model["total"]["estimated_cost_usd"] is None and by_model["total"]["calls"] == 3
    assert usage.vault_usage(vault, since="2999-01-01")["rows"] == []


def test_no_key_is_one_line_and_the_message_is_kept(vault):
    with pytest.raises(ProviderConfigError) as caught:
        vault.ask("Are you there?", provider="anthropic")
    assert str(caught.value) == ("no API key for anthropic: set ANTHROPIC_API_KEY or the OS keyring entry "
                                 "mirrorfs-provider/anthropic")
    (s,) = vault.sessions.list(instance="laptop")
    assert [m.content for m in s.get_messages()] == ["Are you there?"]
