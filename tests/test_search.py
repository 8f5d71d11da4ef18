"""Query syntax, ranking, recall, similar notes, working memory, statistics and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mirrorfs import recent as recent_log
from mirrorfs import search
from mirrorfs.cli import cli
from mirrorfs.errors import QueryError


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


def memory(root: Path, slug: str, title: str, body: str, *, tags=(), kind="fact",
           created="2026-01-10T09:00:00+00:00", updated=None, instance="laptop") -> str:
    tag_lines = "".join(f"  - {t}\n" for t in tags)
    write(root, f"memory/{slug}.md",
          f"---\nid: {abs(hash(slug)) % 16**12:012x}\ntype: memory\ntitle: {title}\nkind: {kind}\n"
          f"tier: long_term\ntags:\n{tag_lines}created: {created}\nupdated: {updated or created}\n"
          f"instance: {instance}\nupdated_by: {instance}\n---\n\n{body}\n")
    return f"memory/{slug}.md"


@pytest.fixture
def garden(vault):
    root = vault.root
    memory(root, "tea", "Prefers tea in the morning", "Green tea before noon, never coffee.",
           tags=["drinks"], kind="preference", created="2026-01-05T08:00:00+00:00")
    memory(root, "coffee", "Coffee after lunch", "A strong espresso after lunch helps with the afternoon.",
           tags=["drinks", "habits/daily"], kind="habit", created="2026-03-15T13:00:00+00:00",
           instance="phone")
    memory(root, "garden", "Tomatoes in the garden", "Planted tomatoes and basil; water them every morning.",
           tags=["garden"], created="2025-06-01T10:00:00+00:00")
    memory(root, "compiler", "Compiler project", "Writing a compiler: parsing, compiling and optimizing passes.",
           tags=["project"], kind="project", created="2026-02-01T10:00:00+00:00")
    write(root, "notes/Morning routine.md", "Tea, stretching, then the morning pages.\n")
    s = vault.sessions.create("Trip planning", category="travel", tags=["travel"])
    s.add_message("user", "Where should we go in March? Somewhere with good tea.")
    s.add_message("assistant", "Somewhere warm: Lisbon or Sevilla.")
    return vault


def paths(results) -> list[str]:
    return [h.path for h in results]


@pytest.mark.parametrize("query, expected", [
    ("tea", {"memory/tea.md", "notes/Morning routine.md", "sessions"}),
    ('"green tea"', {"memory/tea.md"}),
    ('"tea green"', set()),
    ("tea AND morning", {"memory/tea.md", "notes/Morning routine.md"}),
    ("tea NOT green", {"notes/Morning routine.md", "sessions"}),
    ("espresso OR tomatoes", {"memory/coffee.md", "memory/garden.md"}),
    ("(espresso OR tomatoes) AND basil", {"memory/garden.md"}),
    ("compil*", {"memory/compiler.md"}),
    ("compiling", {"memory/compiler.md"}),  # stemmed: compiler, compiling, compile
    ("tag:drinks", {"memory/tea.md", "memory/coffee.md"}),
    ("tag:#habits", {"memory/coffee.md"}),  # nested tag habits/daily
    ("tag:habits/daily", {"memory/coffee.md"}),
    ("type:memory kind:preference", {"memory/tea.md"}),
    ("kind:Project", {"memory/compiler.md"}),
    ("instance:phone", {"memory/coffee.md"}),
    ("category:travel role:assistant", {"sessions"}),
    ("created:2026-01", {"memory/tea.md"}),
    ("created:>2026-01-31 type:memory", {"memory/coffee.md", "memory/compiler.md"}),
    ("created:<2026 type:memory", {"memory/garden.md"}),
    ("created:[2026-01-01 TO 2026-02-28] type:memory", {"memory/tea.md", "memory/compiler.md"}),
    ("updated:>=2026-03-15 type:memory", {"memory/coffee.md"}),
    ("title:tomatoes", {"memory/garden.md"}),
])
def test_query_syntax(garden, query, expected):
    found = {("sessions" if p.startswith("sessions/") else p) for p in paths(search.search(garden, query))}
    assert found == expected


@pytest.mark.parametrize("query, message", [
    ("", "empty query"),
    ("   ", "empty query"),
    ('"unclosed phrase', "unbalanced quote"),
    ("(tea OR coffee", "unbalanced parentheses"),
    ("tea)", "unbalanced parentheses"),
    ("tea AND", "AND needs"),
    ("OR tea", "OR needs"),
    ("tea NOT", "NOT needs"),
    ("colour:blue", "unknown field colour:"),
    ("created:yesteryear", "bad date"),
    ("updated:>2026-13-01", "bad date"),
    ("*tea", "cannot start with"),
])
def test_malformed_queries_are_clear_errors(garden, query, message):
    with pytest.raises(QueryError, match=message):
        search.search(garden, query)


def test_title_and_tags_weigh_more_than_body(vault):
    memory(vault.root, "body", "Something else", "A note that mentions lighthouse once.")
    memory(vault.root, "title", "Lighthouse keeper", "A note about a keeper.")
    memory(vault.root, "tagged", "Coastal notes", "Cliffs and waves.", tags=["lighthouse"])
    order = paths(search.search(vault, "lighthouse"))
    assert order[-1] == "memory/body.md"
    assert set(order[:2]) == {"memory/title.md", "memory/tagged.md"}


def test_types_sessions_tags_instances_and_limit(garden):
    assert {h.type for h in search.search(garden, "tea", types=["memory"])} == {"memory"}
    assert all(h.doc == "note" for h in search.search(garden, "tea", sessions=False))
    assert {h.doc for h in search.search(garden, "tea", types=["session"])} == {"message"}
    assert paths(search.search(garden, "tea", tags=["drinks"])) == ["memory/tea.md"]
    assert paths(search.search(garden, "lunch OR tea", instances=["phone"])) == ["memory/coffee.md"]
    assert len(search.search(garden, "tea", limit=1)) == 1
    hit = search.search(garden, "espresso")[0]
    assert hit.title == "Coffee after lunch" and hit.type == "memory" and hit.score > 0
    assert "**espresso**" in hit.snippet
    d = hit.to_dict()
    assert d["path"] == "memory/coffee.md" and d["created"].startswith("2026-03-15")


def test_recall_mixes_relevance_and_recency(vault):
    now = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    memory(vault.root, "old", "Bicycle repair", "Fixed the bicycle chain.", created="2024-01-01T00:00:00+00:00")
    memory(vault.root, "new", "Bicycle ride", "Rode the bicycle to the lake.", created="2026-05-30T00:00:00+00:00")
    write(vault.root, "notes/bike.md", "bicycle bicycle bicycle bicycle\n")  # not a memory
    results = search.recall(vault, "bicycle", now=now)
    assert paths(results) == ["memory/new.md", "memory/old.md"]
    assert results[0].score > results[1].score and results[0].relevance is not None
    flat = search.recall(vault, "bicycle", now=now, recency_weight=0.0)
    assert {h.relevance for h in flat} == {h.score for h in flat}


def test_find_similar_by_path_and_by_text(vault):
    a = memory(vault.root, "a", "Sourdough starter", "Feed the sourdough starter with rye flour and water daily.")
    b = memory(vault.root, "b", "Sourdough bread", "Bake sourdough bread with the rye starter, flour and water.")
    memory(vault.root, "c", "Car service", "The car needs new tyres and an oil change.")
    similar = search.find_similar(vault, a)
    assert paths(similar) == [b]
    assert 0 < similar[0].score <= 1
    assert paths(search.find_similar(vault, str(vault.root / a))) == [b]
    assert paths(search.find_similar(vault, "oil change and tyres for the car")) == ["memory/c.md"]
    assert search.find_similar(vault, a, threshold=1.0) == []


def test_recent_lists_what_this_device_touched(vault):
    a = memory(vault.root, "a", "Alpha", "First.")
    b = memory(vault.root, "b", "Beta", "Second.")
    search.record_access(vault, a, "read")
    search.record_access(vault, b, "write")
    search.record_access(vault, a, "read")
    assert [(i.path, i.action) for i in search.recent(vault)] == [(a, "read"), (b, "write")]
    assert [i.title for i in search.recent(vault, limit=1)] == ["Alpha"]
    (vault.root / a).unlink()
    assert [i.path for i in search.recent(vault)] == [b]
    # a torn line in the log is skipped
    with open(vault.state_dir / recent_log.LOG_NAME, "a") as f:
        f.write('{"t": 1, "pa')
    assert [i.path for i in search.recent(vault)] == [b]


def test_statistics(garden):
    s2 = garden.sessions.create("Cooking", category="cooking", tags=["food"])
    for i in range(3):
        s2.add_message("user", f"Recipe step {i}")
    stats = search.statistics(garden)
    assert stats["total_sessions"] == 2
    assert stats["total_messages"] == 5
    assert stats["avg_messages_per_session"] == 2.5
    assert stats["most_active_session"]["title"] == "Cooking"
    assert stats["most_active_session"]["messages"] == 3
    assert stats["oldest_session"]["title"] in ("Trip planning", "Cooking")
    assert stats["by_type"]["memory"] == 4 and stats["by_type"]["session"] == 2
    assert stats["by_kind"] == {"fact": 1, "habit": 1, "preference": 1, "project": 1}
    assert stats["by_tag"]["drinks"] == 2 and stats["by_tag"]["habits/daily"] == 1
    assert stats["by_instance"]["phone"]["notes"] == 1
    assert stats["by_instance"]["laptop"]["messages"] == 5
    assert stats["messages_by_role"] == {"user": 4, "assistant": 1}
    assert stats["storage_size_mb"] > 0
    assert [i.title for i in search.by_tag(garden, "travel")] == ["Trip planning"]
    assert [i.title for i in search.by_tag(garden, "drinks", types=None)] == \
        ["Coffee after lunch", "Prefers tea in the morning"]
    assert [i.title for i in search.by_category(garden, "Cooking")] == ["Cooking"]


def test_status_and_rebuild(garden):
    st = search.status(garden)
    assert st["files"] >= 7 and st["documents"] > st["files"] and st["schema_version"] >= 1
    report = search.rebuild(garden)
    assert report.rebuilt and search.search(garden, "espresso")


def run(vault, *args):
    result = CliRunner().invoke(cli, ["--vault", str(vault.root), *args])
    return result


def test_cli_search_recall_similar_recent_stats_index(garden):
    r = run(garden, "search", "espresso OR lisbon", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert {h["doc"] for h in hits} == {"note", "message"}
    r = run(garden, "search", "tea", "--type", "memory", "--tag", "drinks", "--limit", "5")
    assert r.exit_code == 0 and "memory/tea.md" in r.output and "**tea**" in r.output.lower()
    r = run(garden, "search", "lisbon")
    assert "assistant" in r.output and "Trip planning" in r.output
    r = run(garden, "search", "tea AND")
    assert r.exit_code == 1 and "AND needs" in r.output and "Traceback" not in r.output
    r = run(garden, "recall", "drink tea", "--json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["path"] == "memory/tea.md"
    r = run(garden, "similar", "memory/tea.md", "--threshold", "0")
    assert r.exit_code == 0, r.output
    search.record_access(garden, "memory/garden.md")
    r = run(garden, "recent", "--json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["path"] == "memory/garden.md"
    r = run(garden, "stats", "--json")
    assert json.loads(r.output)["total_sessions"] == 1
    r = run(garden, "stats")
    assert "sessions: 1" in r.output
    r = run(garden, "index", "status", "--json")
    assert json.loads(r.output)["files"] >= 7
    r = run(garden, "index", "rebuild")
    assert r.exit_code == 0 and "indexed" in r.output
    r = run(garden, "search", "--help")
    assert "Examples" in r.output and "tag:" in r.output
