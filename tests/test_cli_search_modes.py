"""The CLI's entrances to semantic search (issue 14): --mode, --min-score, --method,
recall through Vault.recall, --paths, and one-line errors for what does not exist."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_semantic_entrances import MEMORIES, QUESTION  # the same memories and question

from mirrorfs import embedders, semantic
from mirrorfs.cli import cli


@pytest.fixture
def run(vault):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--vault", str(vault.root), "--instance", "laptop", *args],
                             catch_exceptions=False)

    invoke.paths = {text: vault.remember(text).path for text in MEMORIES}
    invoke.vault = vault
    return invoke


def _paths(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [h["path"] for h in json.loads(result.output)]


def test_an_unknown_type_is_one_line_not_an_empty_answer(run):
    r = run("search", "tea", "--type", "bogus")
    assert r.exit_code == 1
    assert r.output == ("Error: unknown type 'bogus': use one of soul, memory, session, instance, bridge, "
                        "pattern, note, message\n")
    assert run("search", "tea", "--type", "MEMORY").exit_code == 0  # types are read case-insensitively


def test_paths_lists_each_matching_file_once(run):
    r = run("search", "tea OR cello", "--any", "--paths")
    assert r.exit_code == 0
    assert sorted(r.output.splitlines()) == sorted([run.paths[MEMORIES[0]], run.paths[MEMORIES[3]]])
    assert run("search", "nothingmatches", "--paths").output == ""  # nothing, as `rg -l` prints


def test_without_embeddings_search_recall_and_similar_are_keyword(run):
    assert _paths(run("search", QUESTION, "--json")) == []
    assert _paths(run("search", "cello", "--json")) == [run.paths[MEMORIES[3]]]
    assert _paths(run("recall", "cello quartet", "--json")) == [run.paths[MEMORIES[3]]]
    assert _paths(run("similar", "cello quartet strings", "--method", "keyword", "--threshold", "0",
                      "--json")) == [run.paths[MEMORIES[3]]]
    r = run("search", "cello", "--mode", "fuzzy")
    assert r.exit_code == 2 and "'fuzzy' is not one of 'keyword', 'semantic', 'hybrid'" in r.output


def test_with_embeddings_the_cli_searches_by_meaning(run):
    semantic.update(run.vault, None, embedders.get("local"))
    tea = run.paths[MEMORIES[0]]
    assert _paths(run("search", QUESTION, "--json", "--limit", "3"))[0] == tea  # hybrid by default
    assert _paths(run("search", QUESTION, "--mode", "semantic", "--json", "--limit", "1")) == [tea]
    assert _paths(run("search", QUESTION, "--mode", "keyword", "--json")) == []
    assert _paths(run("search", QUESTION, "--mode", "semantic", "--min-score", "0.99", "--json")) == []
    hits = json.loads(run("search", "cello", "--mode", "keyword", "--min-score", "0.01", "--json").output)
    assert [h["path"] for h in hits] == [run.paths[MEMORIES[3]]] and 0 < hits[0]["score"] <= 1
    assert _paths(run("recall", QUESTION, "--json", "--limit", "1")) == [tea]
    assert _paths(run("similar", "A quartet of strings with a cellist", "--method", "semantic",
                      "--limit", "1", "--json")) == [run.paths[MEMORIES[3]]]
    r = run("search", QUESTION, "--mode", "semantic", "--unlock")
    assert r.exit_code == 1 and r.output == \
        "Error: --unlock searches by keyword only: leave out --mode and --min-score\n"


def test_the_index_group_shows_examples(run):
    r = CliRunner().invoke(cli, ["index", "--help"])
    assert r.exit_code == 0
    assert "  Examples:\n    mirrorfs index status\n    mirrorfs index rebuild --procs 2\n" in r.output


def test_index_embed_makes_search_hybrid_and_a_second_run_reuses_everything(run):
    assert _paths(run("search", QUESTION, "--json")) == []  # keyword: no shared word
    first = run("index", "embed", "--embedder", "local", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["notes"] > len(MEMORIES) and data["embedded"] == data["chunks"] > 0 and data["reused"] == 0
    assert _paths(run("search", QUESTION, "--json", "--limit", "1")) == [run.paths[MEMORIES[0]]]
    again = run("index", "embed")
    assert again.exit_code == 0
    assert again.output.startswith("embedded 0 chunks of 0 changed notes in ")
    assert again.output.endswith(" s (0 reused, 0 removed) with " + data["embedder"] + "\n")


def test_index_embed_with_an_unknown_embedder_is_one_line(run):
    result = CliRunner().invoke(cli, ["--vault", str(run.vault.root), "index", "embed", "--embedder", "bogus"])
    assert result.exit_code == 1
    assert result.output == "Error: unknown embedder 'bogus': use one of local, ollama, openai\n"
