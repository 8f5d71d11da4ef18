"""CLI commands for search, recall, similar notes, recent notes, statistics and the index.

Each calls the library (mirrorfs.search), which asks a running watcher first:
the CLI and the library give the same answers.
"""

from __future__ import annotations

import sys

import click

from mirrorfs import render
from mirrorfs import (
    search as search_api,  # light: Whoosh loads only when this process searches
)
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    read_text_arg,
    unlock_vault,
)
from mirrorfs.errors import InvalidValueError
from mirrorfs.layout import OWNED_TYPES, SEARCH_MODES

# The search modes (mirrorfs.semantic.MODES, without importing numpy for --help).
MODES = SEARCH_MODES


def _warn(results) -> None:
    for w in getattr(results, "warnings", ()):
        click.echo(f"warning: {w}", err=True)


def _print_hits(results, as_json: bool, paths: bool = False) -> None:
    """Hits as the lean console prints them too (mirrorfs.render): one formatter for both."""
    _warn(results)
    hits = [h.to_dict() for h in results]
    if as_json:
        output(hits, as_json)
    elif paths:
        output(hits, False, render.hits_paths)
    else:
        output(hits, False, lambda d: render.hits_text(d, sys.stdout.isatty()))


# What `--type` may name: the kinds of note (mirrorfs.layout.kind_of) and session messages.
TYPES = (*OWNED_TYPES, "note", "message")


def check_types(types) -> list[str] | None:
    """The --type values, or a one-line InvalidValueError naming the ones that exist."""
    for t in types:
        if t.lower() not in TYPES:
            raise InvalidValueError(f"unknown type {t!r}: use one of {', '.join(TYPES)}")
    return list(types) or None


def _infos_text(infos) -> str:
    if not infos:
        return "nothing yet"
    out = []
    for i in infos:
        when = i.accessed or i.updated or i.created
        stamp = when.strftime("%Y-%m-%d %H:%M") if when else "                "
        out.append(f"{stamp}  {i.path}  [{i.type}] {i.title}")
    return "\n".join(out)


@click.command("search")
@click.argument("query")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only notes of this type: memory, session, soul, instance, bridge, pattern, note, message (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only notes/messages with this tag (repeatable).")
@click.option("--instance", "instances", multiple=True, help="Only what this instance wrote (repeatable).")
@click.option("--no-sessions", is_flag=True, help="Leave out session messages.")
@click.option("--any", "any_word", is_flag=True, help="Match any of the words (default: all).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--mode", type=click.Choice(MODES),
              help="keyword (the query syntax below), semantic (by meaning) or hybrid (both); "
                   "default: hybrid once this device has embeddings, else keyword.")
@click.option("--min-score", type=click.FloatRange(0, 1),
              help="Leave out hits scoring under this (0..1, the same scale in every mode).")
@click.option("--paths", is_flag=True, help="Print only the files that match, one per line (as `rg -l`).")
@click.option("--unlock", is_flag=True,
              help="Also search inside encrypted sections, decrypted in memory only (hits marked secret).")
@passphrase_file_option
@json_option
@pass_vault
def search_cmd(vault, query, types, tags, instances, no_sessions, any_word, limit, mode, min_score, paths,
               unlock, passphrase_file, as_json):
    """Full-text search over notes and session messages.

    \b
    Query syntax (docs/search.md):
      words                 all must appear (English words are stemmed)
      "exact phrase"        words in this order
      a OR b, a AND NOT b   boolean operators (upper case), (groups)
      prefix*               words starting with prefix
      tag:travel type:memory kind:preference instance:laptop
      category:work role:user title:tea
      created:2026-11  updated:>2026-01-01  created:[2026-01 TO 2026-03]  updated:>7d

    \b
    Examples:
      mirrorfs search tea
      mirrorfs search '"morning routine" OR breakfast' --type memory
      mirrorfs search 'lisbon role:assistant created:>30d' --json
      mirrorfs search 'what does Sam drink' --mode semantic --min-score 0.4
      mirrorfs search lisbon --paths | xargs grep -n flight
    """
    args = dict(types=check_types(types), sessions=not no_sessions, limit=limit,
                tags=list(tags) or None, instances=list(instances) or None, any_word=any_word)
    if paths and mode in (None, "keyword") and min_score is None:
        args["snippets"] = False  # only the paths are printed: no highlighting (the lean console asks the same)
    if unlock or passphrase_file is not None:
        if mode not in (None, "keyword") or min_score is not None:
            raise InvalidValueError("--unlock searches by keyword only: leave out --mode and --min-score")
        # Decrypted text stays in this process: never through the watcher's socket.
        from mirrorfs.secret_search import search_unlocked

        unlock_vault(vault, passphrase_file, create=False)  # a read never sets the key
        args.pop("snippets", None)
        results = search_unlocked(vault, query, **args)
    else:
        # Keyword searches ask a running watcher first (mirrorfs.search).
        results = vault.search(query, mode=mode, min_score=min_score, **args)
    _print_hits(results, as_json, paths)


@click.command("recall")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--half-life", default=30.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Days after which recency counts half.")
@json_option
@pass_vault
def recall_cmd(vault, query, limit, half_life, as_json):
    """Memories relevant to QUERY, recent ones first among equals.

    Searches memory notes only; the score mixes relevance (70%) and recency
    (30%, halving every --half-life days since the note was updated).
    Relevance is hybrid (words and meaning) once this device has embeddings.

    \b
    Examples:
      mirrorfs recall "what does Sam drink"
      mirrorfs recall 'tag:travel lisbon' --json
    """
    _print_hits(vault.recall(query, limit=limit, half_life_days=half_life), as_json)


@click.command("similar")
@click.argument("path_or_text")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--threshold", default=0.15, show_default=True, type=click.FloatRange(0, 1),
              help="Least share of the key terms a note must contain (keyword method).")
@click.option("--method", type=click.Choice(MODES),
              help="keyword (shared key terms), semantic (meaning) or hybrid (both); "
                   "default: hybrid once this device has embeddings, else keyword.")
@click.option("--sessions", is_flag=True, help="Also return session messages.")
@json_option
@pass_vault
def similar_cmd(vault, path_or_text, limit, threshold, method, sessions, as_json):
    """Notes similar to a note (PATH) or to a text ("more like this").

    TEXT may be `-` to read standard input.

    \b
    Examples:
      mirrorfs similar memory/prefers-tea.md
      mirrorfs similar "Sam likes green tea before meetings"
      mirrorfs similar memory/prefers-tea.md --method semantic
    """
    arg = read_text_arg(path_or_text)
    results = vault.find_similar(arg, limit=limit, threshold=threshold, method=method, sessions=sessions)
    _print_hits(results, as_json)


@click.command("recent")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only notes of this type (repeatable).")
@json_option
@pass_vault
def recent_cmd(vault, limit, types, as_json):
    """Working memory: notes this device read or wrote lately.

    \b
    Examples:
      mirrorfs recent
      mirrorfs recent --type memory --json
    """
    infos = search_api.recent(vault, limit=limit, types=list(types) or None)
    output([i.to_dict() for i in infos] if as_json else infos, as_json, _infos_text)


def _stats_text(s: dict) -> str:
    lines = [
        f"notes: {s['total_notes']}   sessions: {s['total_sessions']}   messages: {s['total_messages']}"
        f"   (avg {s['avg_messages_per_session']} per session)",
        f"storage: {s['storage_size_mb']} MB of notes, index {s['index_size_mb']} MB",
    ]
    if s["oldest_session"]:
        o = s["oldest_session"]
        lines.append(f"oldest session: {o['title']} ({o['created'] or 'undated'}) {o['path']}")
    if s["most_active_session"]:
        m = s["most_active_session"]
        lines.append(f"most active session: {m['title']} ({m['messages']} messages) {m['path']}")
    for key, label in (("by_type", "types"), ("by_kind", "kinds"), ("messages_by_role", "roles")):
        if s[key]:
            lines.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in s[key].items()))
    if s["by_tag"]:
        top = list(s["by_tag"].items())[:15]
        lines.append("tags: " + ", ".join(f"{k} {v}" for k, v in top)
                     + (" …" if len(s["by_tag"]) > 15 else ""))
    for inst, c in s["by_instance"].items():
        lines.append(f"instance {inst}: {c['notes']} notes, {c['sessions']} sessions, {c['messages']} messages")
    if s["unparseable_notes"] or s["skipped_files"]:
        lines.append(f"unparseable notes: {s['unparseable_notes']}, skipped files: {s['skipped_files']}"
                     " (see `mirrorfs index status`)")
    return "\n".join(lines)


@click.command("stats")
@json_option
@pass_vault
def stats_cmd(vault, as_json):
    """Counts over the vault: sessions, messages, types, kinds, tags, instances.

    \b
    Examples:
      mirrorfs stats
      mirrorfs stats --json | jq .total_messages
    """
    output(search_api.statistics(vault), as_json, _stats_text)


@click.group("index")
def index_group():
    """The per-device search index (rebuilt by itself when needed).

    \b
    Examples:
      mirrorfs index status
      mirrorfs index rebuild --procs 2
      mirrorfs index embed              # semantic recall from now on (the [embed] extra)
    """


def _progress_bar(label: str = "indexing"):
    if not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=1, label=label, file=sys.stderr)
    state = {"started": False}

    def progress(done, total):
        if not state["started"]:
            bar.length = max(total, 1)
            bar.__enter__()
            state["started"] = True
        bar.update(done - bar.pos)

    def finish():
        if state["started"]:
            bar.__exit__(None, None, None)

    return progress, finish


@index_group.command("rebuild")
@click.option("--procs", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@json_option
@pass_vault
def index_rebuild(vault, procs, as_json):
    """Re-index the whole vault from its files.

    Searches from other processes keep answering from the old index until the
    new one is complete.

    \b
    Example:
      mirrorfs index rebuild
    """
    progress, finish = _progress_bar()
    try:
        report = search_api.rebuild(vault, progress=progress, procs=procs)
    finally:
        if finish:
            finish()
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    data = {"files": len(report.added), "seconds": round(report.seconds, 3),
            "warnings": report.warnings}
    output(data, as_json, lambda d: f"indexed {d['files']} files in {d['seconds']} s")


@index_group.command("embed")
@click.option("--embedder", help="local (the default: offline, the [embed] extra), ollama or openai; "
                                 "MIRRORFS_EMBEDDER sets this device's default.")
@json_option
@pass_vault
def index_embed(vault, embedder, as_json):
    """Embed the vault's notes and messages for search by meaning (this device only).

    The first run embeds everything; later runs only what changed (a running
    `mirrorfs watch` keeps them fresh by itself). Locked text is never embedded.
    From then on search, recall and similar are hybrid unless given --mode.

    \b
    Examples:
      pip install 'mirrorfs[embed]' && mirrorfs index embed
      mirrorfs search 'what does Sam drink in the morning'
    """
    progress, finish = _progress_bar("embedding")
    try:
        report = vault.embed(embedder, progress=progress)
    finally:
        if finish:
            finish()
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    data = {"embedder": report.embedder, "notes": report.changed, "removed": report.deleted,
            "chunks": report.chunks, "embedded": report.embedded, "reused": report.reused,
            "seconds": round(report.seconds, 3)}
    output(data, as_json, lambda d: (
        f"embedded {d['embedded']} {'chunk' if d['embedded'] == 1 else 'chunks'} of {d['notes']} changed "
        f"{'note' if d['notes'] == 1 else 'notes'} in {d['seconds']} s ({d['reused']} reused, "
        f"{d['removed']} removed) with {d['embedder']}"))


def _status_text(s: dict) -> str:
    lines = [
        f"index: {s['path']}",
        f"engine: {s['engine']} (schema {s['schema_version']})",
        f"files: {s['files']}   documents: {s['documents']}   size: {s['size_mb']} MB",
        f"built: {s['built']}   updated: {s['updated']}",
    ]
    for p, why in s["unparseable"].items():
        lines.append(f"unparseable (indexed as text): {p}: {why}")
    for p, why in s["skipped"].items():
        lines.append(f"skipped: {p}: {why}")
    for w in s["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


@index_group.command("status")
@json_option
@pass_vault
def index_status(vault, as_json):
    """Where the index is, what it holds, and which files it skipped.

    \b
    Example:
      mirrorfs index status --json
    """
    output(search_api.status(vault), as_json, _status_text)
