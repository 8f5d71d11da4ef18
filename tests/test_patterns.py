"""Reflective patterns as Markdown files and `reflect`, against a fake provider on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner
from fake_llm import FakeLLM, openai_completion

from mirrorfs import markers, patterns, tokens
from mirrorfs.cli import cli
from mirrorfs.errors import InvalidValueError, NotFoundError
from mirrorfs.mcp_calls import Toolbox

SOCRATIC = """---
type: pattern
name: socratic
title: Socratic
glyph: ⚘
style: three questions before any answer
cues:
  - teach me
---

Ask {{name}}'s three best questions before answering. PLANTED-SOCRATIC-BODY
"""


def replying(*texts: str):
    queue = iter(texts)

    def answer(request):
        return openai_completion(next(queue), prompt_tokens=tokens.raw_message_tokens(request.json()["messages"]))

    return answer


def openai(fake) -> dict:
    return {"provider": "openai", "base_url": fake.url + "/v1", "model": "gpt-4o-mini"}


def system_of(request) -> str:
    return request.json()["messages"][0]["content"]


def test_the_reply_parse_of_the_issue():
    got = markers.parse("✦ The photos decide the date ⟨medium⟩ — do we have them?", "analytical")
    assert got.to_dict() == {
        "response": "✦ The photos decide the date — do we have them?", "uncertainty": "medium",
        "advice": "gather more information", "glyphs": ["✦"], "pattern": "analytical",
        "meta": {"has_uncertainty": True, "has_glyphs": True, "reflection_depth": "moderate"}}
    assert "  " not in got.response
    assert markers.parse("◈ Go ⟨low⟩, then ⟨⟨high⟩⟩ test ⬡ it ⟨medium⟩.").uncertainty == "high"
    assert markers.parse("◈ Go ⟨low⟩, then ⬡ test ◈ it.").glyphs == ["◈", "⬡"]
    assert markers.parse("Plain answer.").to_dict()["meta"] == {"has_uncertainty": False, "has_glyphs": False,
                                                                "reflection_depth": "surface"}
    assert markers.parse("word " * 51).reflection_depth == "moderate"
    assert markers.parse("word " * 101 + "a? b? c?").reflection_depth == "deep"
    assert markers.parse("word " * 101 + "a? b?").reflection_depth == "moderate"
    assert markers.parse("Start ⟨LOW⟩\n⟨⟨high⟩⟩ Then (⟨medium⟩ maybe).").response == "Start\nThen (maybe)."


def test_builtins_custom_and_overrides(vault):
    found = patterns.load(vault)
    assert [found[n].glyph for n in patterns.BUILTIN] == ["◊", "✦", "★", "⬢"]
    assert all(found[n].builtin for n in patterns.BUILTIN)
    (vault.root / "patterns" / "socratic.md").write_text(SOCRATIC)
    (vault.root / "patterns" / "analytical.md").write_text(
        "---\ntype: pattern\nname: analytical\nglyph: ✦\nstyle: mine\n---\n\nMY OWN ANALYTICAL RULES\n")
    found = patterns.load(vault)
    assert found["socratic"].path == "patterns/socratic.md" and found["socratic"].glyph == "⚘"
    assert found["analytical"].overrides and "MY OWN ANALYTICAL RULES" in found["analytical"].template
    assert "Ask Mira's three best questions" in patterns.instructions(found["socratic"], "Mira")
    with pytest.raises(NotFoundError, match=r"no pattern 'nope' \(patterns: analytical, creative, exploratory"):
        patterns.get(vault, "nope")
    picked, why = patterns.suggest(vault, "Help me plan the next year and decide on the risk")
    assert picked.name == "strategic" and why == 'strategic: the input mentions "plan", "next year", "decide", ' \
                                                 '"risk" (its cues)'
    assert patterns.suggest(vault, "hmm")[0].name == "exploratory"
    assert patterns.suggest(vault, "Teach me about rivers")[0].name == "socratic"


@pytest.mark.parametrize("name", list(patterns.BUILTIN) + ["socratic"])
def test_each_pattern_reaches_the_prompt(vault, name):
    (vault.root / "patterns" / "socratic.md").write_text(SOCRATIC)
    pattern = patterns.get(vault, name)
    line = next(x for x in pattern.template.splitlines() if x.startswith("- ") or "PLANTED" in x)
    line = line.replace("{{name}}", "Mira")
    with FakeLLM(default=replying(f"{pattern.glyph} A thought ⟨low⟩.")) as fake:
        result = vault.reflect("What should I do about the shop?", patterns=name, **openai(fake))
        system = system_of(fake.requests[0])
    assert f"## Reflective pattern: {pattern.title} {pattern.glyph}" in system and line in system
    assert result.final.parsed.glyphs == [pattern.glyph] and result.final.parsed.uncertainty == "low"


def test_two_patterns_and_a_meta_reflection_make_three_calls_that_build_on_each_other(vault):
    replies = ["✦ The photos are the risk ⟨medium⟩. Do we have them?",
               "⬢ Stage it: launch without the lookbook ⟨low⟩.",
               "◈ Both reflections hinge on the client ⟨⟨high⟩⟩."]
    with FakeLLM(default=replying(*replies)) as fake:
        result = vault.reflect("Should I promise a Christmas launch?", patterns="analytical,strategic",
                               meta_depth=1, **openai(fake))
        prompts = [system_of(r) for r in fake.requests]
    assert len(prompts) == 3
    assert "The photos are the risk" not in prompts[0]
    assert "### ✦ Analytical\n\n✦ The photos are the risk. Do we have them?" in prompts[1]
    assert "Stage it" not in prompts[1]
    assert "## Meta-reflection 1" in prompts[2]
    assert "The photos are the risk" in prompts[2] and "Stage it: launch without the lookbook." in prompts[2]
    assert [s.name for s in result.steps] == ["analytical", "strategic", "meta-1"]
    assert result.to_dict()["uncertainty"] == "high" and result.to_dict()["calls"] == 3
    answer = result.session.get_messages()[-1]
    assert answer.meta["calls"] == 3 and answer.meta["patterns"] == ["analytical", "strategic"]
    assert answer.meta["glyphs"] == ["✦", "⬢", "◈"] and answer.meta["insight"] == result.note
    assert "**✦ Analytical**" in answer.content and "⟨" not in answer.content


def test_parallel_steps_do_not_see_each_other(vault):
    with FakeLLM(default=replying("◊ One view.", "★ Another view.")) as fake:
        result = vault.reflect("Names for the shop", patterns=["exploratory", "creative"], blend="parallel",
                               save=False, **openai(fake))
        prompts = [system_of(r) for r in fake.requests]
    assert "One view" not in prompts[1] and result.note is None
    assert list(vault.root.glob("insights/*.md")) == []


def test_the_saved_reflection_is_obsidian_clean_and_found_by_search(vault):
    (vault.root / "patterns" / "socratic.md").write_text(SOCRATIC)
    with FakeLLM(default=replying("⚘ Why lighthousekeeping? ⟨medium⟩", "✦ Because of the fog.")) as fake:
        result = vault.reflect("Should I study lighthousekeeping?", patterns="socratic,analytical", **openai(fake))
    text = (vault.root / result.note).read_text(encoding="utf-8")
    assert result.note.startswith("insights/") and result.note.endswith("-should-i-study-lighthousekeeping.md")
    head, body = text.split("---\n", 2)[1:]
    meta = yaml.safe_load(head)
    assert "&id" not in head and "*id" not in head
    for key, value in meta.items():
        assert isinstance(value, (str, int, bool, list)) or hasattr(value, "isoformat"), key
        if isinstance(value, list):
            assert all(isinstance(v, str) for v in value), key
    assert meta["type"] == "insight" and meta["derived"] is True
    assert meta["patterns"] == ["socratic", "analytical"] and meta["glyphs"] == ["⚘", "✦"]
    assert meta["tags"] == ["insight", "pattern/socratic", "pattern/analytical"]
    assert meta["uncertainty"] == "none" and meta["source"] == f"[[{result.session.id}]]"
    links = re.findall(r"\[\[([^\]|#]+)", text)
    assert links and all(list(vault.root.rglob(f"{link.rsplit('/', 1)[-1]}.md")) for link in links), links
    assert "[[patterns/socratic|socratic]]" in body and "analytical (built-in)" in body
    assert "⟨" not in body and "⚘ Why lighthousekeeping?" in body
    hits = vault.search("lighthousekeeping", types=["insight"])
    assert [h.path for h in hits] == [result.note]


def test_auto_says_why_and_bad_arguments_are_one_line(vault):
    with FakeLLM(default=replying("⬢ Decide by March.")) as fake:
        result = vault.reflect("Help me plan my career for next year", **openai(fake))
    assert result.why == 'strategic: the input mentions "plan", "next year", "career" (its cues)'
    with pytest.raises(InvalidValueError, match="meta depth must be 0, 1 or 2"):
        vault.reflect("x", meta_depth=3)
    with pytest.raises(InvalidValueError, match="unknown blend"):
        vault.reflect("x", blend="weighted")
    with pytest.raises(InvalidValueError, match="do not combine it"):
        vault.reflect("x", patterns="auto,creative")


def test_reflect_and_patterns_cli(vault):
    runner = CliRunner()
    head = ["--vault", str(vault.root), "--instance", "laptop"]
    (vault.root / "patterns" / "socratic.md").write_text(SOCRATIC)
    r = runner.invoke(cli, [*head, "patterns", "list"])
    assert r.output == (
        "◊ exploratory  built-in (templates/patterns/exploratory.md)  — open inquiry — curious, patient, many "
        "perspectives\n"
        "✦ analytical   built-in (templates/patterns/analytical.md)  — precise — assumptions, evidence, edge cases\n"
        "★ creative     built-in (templates/patterns/creative.md)  — generative — unconventional links, many options\n"
        "⬢ strategic    built-in (templates/patterns/strategic.md)  — long view — second-order effects, scenarios, "
        "staged experiments\n"
        "⚘ socratic     patterns/socratic.md  — three questions before any answer\n")
    shown = runner.invoke(cli, [*head, "patterns", "show", "socratic"]).output
    assert shown.startswith("⚘ socratic — Socratic\nsource: patterns/socratic.md\nstyle: three questions before "
                            "any answer\ncues: teach me\n\n## Reflective pattern: Socratic ⚘")
    with FakeLLM(default=replying("✦ It hinges on photos ⟨medium⟩?")) as fake:
        r = runner.invoke(cli, [*head, "reflect", "Can we launch by Christmas?", "--pattern", "analytical",
                                "--provider", "openai", "--base-url", fake.url + "/v1"])
    assert r.exit_code == 0, r.output
    assert r.stdout == ("## ✦ Analytical\n\n✦ It hinges on photos?\n\n(uncertainty medium: gather more "
                        "information · glyphs ✦ · depth moderate)\n")
    assert re.fullmatch(r"\[saved insights/\S+\.md · 1 call · \d+ in / 5 out · \$0\.\d+ · sessions/laptop/\S+\.md\]\n",
                        r.stderr), r.stderr
    with FakeLLM(default=replying("◊ Open.")) as fake:
        r = runner.invoke(cli, [*head, "reflect", "hmm", "--no-save", "--json", "--provider", "openai",
                                "--base-url", fake.url + "/v1"])
    data = json.loads(r.stdout)
    assert data["auto"].startswith("exploratory: no pattern's cues") and data["note"] is None
    assert data["glyphs"] == ["◊"] and data["steps"][0]["uncertainty"] == "none"


def test_mcp_prompts_for_every_pattern(vault):
    (vault.root / "patterns" / "socratic.md").write_text(SOCRATIC)
    tb = Toolbox(vault)
    names = [p["name"] for p in tb.prompts()]
    assert names == ["continue_conversation", "reflect_exploratory", "reflect_analytical", "reflect_creative",
                     "reflect_strategic", "reflect_socratic"]
    socratic = next(p for p in tb.prompts() if p["name"] == "reflect_socratic")
    assert socratic["title"] == "⚘ Socratic" and socratic["arguments"][0] == {
        "name": "text", "description": "what to reflect on", "required": True}
    description, text = tb.prompt("reflect_socratic", {"text": "Should I move to Porto?"})
    assert description == "Reflect with the socratic pattern"
    assert "PLANTED-SOCRATIC-BODY" in text and "This file is who you are." in text
    assert text.endswith("---\n\nShould I move to Porto?")
    with pytest.raises(Exception, match="needs the argument text"):
        tb.prompt("reflect_socratic", {})
    result = tb.call("memory_context", {"query": "Porto", "strategy": "relevant", "budget_tokens": 300})
    assert not result.is_error and result.data["used_tokens"] <= 300 and result.data["items"][0]["kind"] == "soul"


def test_other_notes_in_patterns_are_not_reflective_patterns_and_prompts_stay_bounded(sample_vault):
    from mirrorfs.vault import Vault

    vault = Vault.open(sample_vault, instance="laptop")
    # The sample's note about a habit of Sam's (type pattern, no name, glyph or style) is not one.
    assert sorted(patterns.load(vault)) == sorted(patterns.BUILTIN)
    for i in range(40):
        (sample_vault / "patterns" / f"p{i}.md").write_text(f"---\ntype: pattern\nglyph: ⚙\n---\n\nStep {i}.\n")
    assert len(patterns.load(vault)) == 44
    assert len(Toolbox(vault).prompts()) == 1 + 24
