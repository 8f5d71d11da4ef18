"""The context builder: what a prompt is made of, within the budget, never a locked section."""

from __future__ import annotations

import re

import pytest
import yaml
from fake_llm import FakeLLM, openai_completion, openai_stream

from mirrorfs import tokens
from mirrorfs.context import build_context
from mirrorfs.errors import InvalidValueError, LockedError
from mirrorfs.providers import get_provider
from mirrorfs.vault import Vault

PASS = "correct horse battery staple"


def replies(*texts: str):
    """Fake replies that report as many prompt tokens as we estimate (so calibration keeps ratio 1)."""
    queue = iter(texts)

    def answer(request):
        body = request.json()
        prompt = tokens.raw_message_tokens(body["messages"])
        text = next(queue)
        if body.get("stream"):
            return openai_stream([text], usage=(prompt, 5, 0))
        return openai_completion(text, prompt_tokens=prompt, completion_tokens=30)

    return answer


def phone_of(vault: Vault) -> Vault:
    phone = Vault.open(vault.root, instance="phone")
    phone.instances.ensure_card()
    return phone


def chat(session, pairs: int, words: int = 40, tag: str = "turn") -> None:
    for i in range(pairs):
        session.add_message("user", f"question {i} {tag} " + " ".join(f"ask{i}w{j}" for j in range(words)))
        session.add_message("assistant", f"answer {i} {tag} " + " ".join(f"say{i}w{j}" for j in range(words)))


def test_pinned_first_then_recent_turns_starting_on_a_user_turn(vault):
    phone = phone_of(vault)
    phone.remember("Sam's day rate is 600 euros", title="Day rate")
    s = vault.sessions.create("Long talk")
    chat(s, 12)
    bundle = vault.context(strategy="recent", budget_tokens=900, session=s, message="And now?")
    kinds = bundle.kinds()
    assert kinds[:2] == ["soul", "activity"] and kinds[-1] == "input"
    turns = [i for i in bundle.items if i.kind == "turn"]
    assert turns and turns[0].role == "user" and turns[-1].meta["message_id"] == s.get_messages()[-1].id
    assert len(turns) < 24 and bundle.skipped[-1]["reason"].endswith("older messages of this session did not fit")
    activity = bundle.items[1].text
    assert 'phone added memory "Day rate" (memory/day-rate.md)' in activity and "just now: phone" in activity
    assert "- phone (idle, seen just now)" in activity  # its card says idle: no client is connected
    messages = bundle.messages()
    assert [m["role"] for m in messages][:2] == ["system", "user"] and messages[-1] == {"role": "user",
                                                                                         "content": "And now?"}
    assert bundle.used_tokens == tokens.estimate_messages(messages) <= 900
    for item in bundle.items:
        assert item.why and item.tokens > 0


@pytest.mark.parametrize("strategy", ["recent", "relevant", "summarized"])
def test_every_budget_is_kept(vault, strategy):
    for i in range(15):
        vault.remember(f"Lighthouse keeper note {i}: " + "beam and fog " * (10 + 7 * i), title=f"Keeper {i}")
    s = vault.sessions.create("Lighthouse")
    chat(s, 10, tag="lighthouse keeper")
    for budget in (120, 200, 350, 600, 1000, 1700, 3000, 9000):
        bundle = build_context(vault, query="lighthouse keeper fog", strategy=strategy, budget_tokens=budget,
                               session=s, message="What about the fog?")
        assert bundle.used_tokens <= budget, (strategy, budget, bundle.used_tokens)
        assert bundle.kinds()[-1] == "input"
        turns = [i for i in bundle.items if i.kind == "turn"]
        assert not turns or turns[0].role == "user"


def test_relevant_finds_memories_and_other_instances_messages_without_near_duplicates(vault):
    phone = phone_of(vault)
    text = "The ryokan in Arima Onsen has a vegetarian kaiseki dinner on 31 March."
    vault.remember(text, title="Ryokan dinner")
    vault.remember(text + " Book early.", title="Ryokan dinner copy")
    trip = phone.sessions.create("Kyoto trip")
    trip.add_message("user", "Which ryokan did we pick for Arima Onsen?")
    trip.add_message("assistant", "Tōsen Goshobo, with the vegetarian kaiseki.")
    bundle = vault.context("ryokan Arima Onsen kaiseki", strategy="relevant", budget_tokens=2000)
    memories = [i for i in bundle.items if i.kind == "memory"]
    assert len(memories) == 1
    assert any(x["reason"] == "near-duplicate of an item already in the context" for x in bundle.skipped)
    message = next(i for i in bundle.items if i.kind == "message")
    assert message.path == trip.relpath and message.meta["instance"] == "phone"
    assert "user: Which ryokan" in message.text and "assistant: Tōsen Goshobo" in message.text
    assert message.sha256 == __import__("hashlib").sha256((vault.root / trip.relpath).read_bytes()).hexdigest()
    assert message.why.startswith("relevant: user message by phone in another conversation")


def test_locked_sections_never_enter_unless_unlocked_and_asked(vault):
    vault.unlock(PASS)
    vault.remember("Safe code PLANTEDSAFE4921", title="Safe code for the cabin", secret=True)
    vault.lock()
    (vault.root / "memory" / "cabin-wifi.md").write_text(
        "---\ntype: memory\ntitle: Cabin wifi\n---\n\nCabin wifi:\n\n```secret\nPLANTEDWIFI77\n```\n")
    for strategy in ("recent", "relevant", "summarized"):
        bundle = vault.context("cabin safe wifi code", strategy=strategy, budget_tokens=3000, message="cabin code?")
        sent = str(bundle.messages())
        assert "PLANTEDSAFE4921" not in sent and "PLANTEDWIFI77" not in sent
    assert "🔒 [encrypted section]" in sent and "🔒 [secret block, not sealed yet]" in sent
    with pytest.raises(LockedError):
        vault.context("cabin", include_locked=True)
    vault.unlock(PASS)
    shown = str(vault.context("cabin safe code", strategy="relevant", budget_tokens=3000).messages())
    assert "PLANTEDSAFE4921" not in shown  # unlocked, but not asked
    asked = str(vault.context("cabin safe code", strategy="relevant", budget_tokens=3000,
                              include_locked=True).messages())
    assert "PLANTEDSAFE4921" in asked


def test_a_message_over_the_budget_is_refused_and_small_budgets_cut_soul(vault):
    with pytest.raises(InvalidValueError, match="over the budget of 60"):
        vault.context(budget_tokens=60, message="word " * 400)
    with pytest.raises(InvalidValueError, match="at least 50"):
        vault.context(budget_tokens=10)
    with pytest.raises(InvalidValueError, match="unknown strategy"):
        vault.context(strategy="everything")
    bundle = vault.context(budget_tokens=80, message="hi")
    soul = bundle.items[0]
    assert soul.kind == "soul" and soul.why.endswith("cut to fit the budget") and soul.text.endswith(" …")
    assert bundle.used_tokens <= 80


def _provider(fake):
    return get_provider("openai", base_url=fake.url + "/v1", model="gpt-4o-mini")


def test_summary_is_a_note_that_a_second_instance_reuses_without_a_call(vault):
    s = vault.sessions.create("Planning the shop")
    chat(s, 15, words=30, tag="shop")
    summary_text = "- Sam plans the shop launch for December.\n- Photos are due 28 November."
    with FakeLLM(default=replies(summary_text, "Noted.")) as fake:
        with _provider(fake) as llm:
            result = vault.ask("What did we decide?", strategy="summarized", budget_tokens=900, session=s.id,
                               provider=llm)
        assert len(fake.requests) == 2
        fold = fake.requests[0].json()["messages"]
        assert "running summary" in fold[0]["content"] and "question 0 shop" in fold[1]["content"]
        asked = fake.requests[1].json()["messages"]
        assert summary_text in asked[0]["content"]
        item = next(i for i in result.bundle.items if i.kind == "summary")
        assert item.path == f"summaries/{s.id}.md" and item.why.endswith("(made now)")
        note = (vault.root / item.path).read_text()
        meta = yaml.safe_load(note.split("---\n")[1])
        assert meta["type"] == "summary" and meta["derived"] is True and meta["source"] == f"[[{s.id}]]"
        assert meta["source_path"] == s.relpath and len(meta["source_sha256"]) == 64
        assert meta["through"] in [m.id for m in s.get_messages()] and meta["messages"] < 30
        fold_tokens = tokens.raw_message_tokens(fold)
        assert (meta["prompt_tokens"], meta["completion_tokens"], meta["summary_calls"]) == (fold_tokens, 30, 1)
        assert "&id" not in note and note.rstrip().endswith("Photos are due 28 November.")

        phone = phone_of(vault)
        with _provider(fake) as llm:
            again = phone.context(strategy="summarized", budget_tokens=900, session=s.id, provider=llm,
                                  message="Where were we?")
        assert len(fake.requests) == 2  # no summarising call: the note was reused
        reused = next(i for i in again.items if i.kind == "summary")
        assert reused.why.endswith("(made by laptop, reused)") and summary_text in reused.text

        # A person corrects the summary in an editor: the correction is what the next context shows.
        path = vault.root / item.path
        path.write_text(path.read_text().replace("December", "early December"))
        with _provider(fake) as llm:
            corrected = phone.context(strategy="summarized", budget_tokens=900, session=s.id, provider=llm)
        assert "early December" in next(i for i in corrected.items if i.kind == "summary").text
        assert len(fake.requests) == 2


def test_a_changed_summarised_message_invalidates_the_summary(vault):
    s = vault.sessions.create("Plans")
    chat(s, 15, words=30)
    with FakeLLM(default=replies("- first summary", "- second summary")) as fake:
        with _provider(fake) as llm:
            vault.context(strategy="summarized", budget_tokens=900, session=s, provider=llm)
            text = s.path.read_text()
            s.path.write_text(text.replace("question 0 turn", "question 0 edited turn"))
            again = vault.context(strategy="summarized", budget_tokens=900, session=s, provider=llm)
        assert len(fake.requests) == 2
        assert any("no longer matches the session" in n for n in again.notes)
        assert "- second summary" in next(i for i in again.items if i.kind == "summary").text
    trashed = [p for p in vault.trashed() if p.name == f"{s.id}.md"]
    assert len(trashed) == 1 and "- first summary" in trashed[0].read_text()  # the stale note is kept, not lost


def test_dry_run_summarized_shows_what_would_be_folded_without_a_provider(vault):
    s = vault.sessions.create("Plans")
    chat(s, 15, words=30)
    bundle = vault.context(strategy="summarized", budget_tokens=700, session=s)
    assert "summary" not in bundle.kinds()
    assert any(re.match(r"\d+ older messages would be folded into summaries/", n) for n in bundle.notes)
    assert bundle.used_tokens <= 700
