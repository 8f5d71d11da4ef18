"""`mirrorfs ask`, `chat`, `context` and `usage`: talking to the AI from the terminal.

Thin: every command calls mirrorfs.conversation / mirrorfs.context /
mirrorfs.usage and prints. The reply streams to stdout; the line about the
model, tokens and cost goes to stderr, so `mirrorfs ask ... > reply.md` keeps
only the reply.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable

import click

from mirrorfs import context as context_mod
from mirrorfs import conversation, patterns, usage
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    read_text_arg,
    unlock_vault,
)
from mirrorfs.errors import ProviderError, StreamInterruptedError
from mirrorfs.markers import ADVICE
from mirrorfs.overview import soul_name
from mirrorfs.vault import Vault

EXIT_INTERRUPTED = 130
SKIPPED_SHOWN = 8


def provider_options(f: Callable) -> Callable:
    """--provider, --model, --base-url, --profile, --strategy, --budget, --session, --new, --include-locked."""
    for option in reversed([
        click.option("--provider", metavar="NAME", help="openai, anthropic, ollama, a plug-in, or a profile of "
                                                        "providers.yaml (default: its default_profile)."),
        click.option("--model", metavar="NAME", help="The model (default: the provider's or the profile's)."),
        click.option("--base-url", metavar="URL", help="Another server speaking the provider's API "
                                                       "(LM Studio, llama.cpp, vLLM, a proxy)."),
        click.option("--profile", metavar="NAME", help="A profile of providers.yaml."),
        click.option("--strategy", type=click.Choice(context_mod.STRATEGIES), default=conversation.DEFAULT_STRATEGY,
                     show_default=True, help="What fills the context after SOUL.md and the other instances."),
        click.option("--budget", "budget", type=click.IntRange(min=context_mod.MIN_BUDGET),
                     default=context_mod.DEFAULT_BUDGET, show_default=True, help="Tokens the prompt may use."),
        click.option("--session", "session_id", metavar="ID", help="Continue this session of this instance "
                                                                   "(default: its latest open one)."),
        click.option("--new", is_flag=True, help="Start a new session, linked after the previous one."),
        click.option("--include-locked", is_flag=True, help="Let locked sections into the prompt (needs the "
                                                            "passphrase; the reply is then stored sealed)."),
        passphrase_file_option,
    ]):
        f = option(f)
    return f


def _prepare(vault: Vault, include_locked: bool, passphrase_file) -> None:
    if include_locked:
        unlock_vault(vault, passphrase_file)


def _footer(result: conversation.AskResult) -> str:
    c = result.completion
    if c is None:
        return ""
    u = c.usage
    est = " (estimated)" if u.estimated else ""
    return (f"[{c.provider} {c.model} · {u.input_tokens} in / {u.output_tokens} out{est} · "
            f"{usage.cost_text(result.cost_usd)} · {result.session.relpath}]")


def _kept(session) -> str:
    return f"your message is kept in {session.relpath}" if session is not None else "nothing was written"


def _stream(vault: Vault, text: str, kwargs: dict[str, Any], show: bool = True,
            pattern: patterns.Pattern | None = None) -> tuple[conversation.AskResult | None, Any, int]:
    """Run one exchange, printing the reply as it streams; (result, session, exit status)."""
    session = None
    result = None
    events = conversation.ask_stream(vault, text, pattern=pattern, **kwargs)
    try:
        with contextlib.closing(events):
            for event in events:
                if event.type == "saved":
                    session = event.session
                elif event.type == "text" and show:
                    click.echo(event.text, nl=False)
                elif event.type == "done":
                    result = event.result
    except KeyboardInterrupt:
        # closing() has run: the partial reply is in the file, marked interrupted.
        click.echo("", err=not show)
        click.echo(f"[interrupted: {_kept(session)}, with the partial reply marked interrupted]", err=True)
        return None, session, EXIT_INTERRUPTED
    except StreamInterruptedError as exc:
        click.echo("", err=not show)
        raise click.ClickException(f"{exc}; {_kept(session)}, with the partial reply marked interrupted") from None
    except ProviderError as exc:
        raise click.ClickException(f"{exc}; {_kept(session)}") from None
    if show and result is not None:
        click.echo("")
    return result, session, 0


def _ask_kwargs(provider, model, base_url, profile, strategy, budget, session_id, new, include_locked,
                max_tokens=None) -> dict[str, Any]:
    return {"provider": provider, "model": model, "base_url": base_url, "profile": profile, "strategy": strategy,
            "budget_tokens": budget, "session": session_id, "new": new, "include_locked": include_locked,
            "max_tokens": max_tokens}


# -- dry runs ----------------------------------------------------------------------------------


def _dry_text(run: conversation.DryRun) -> str:
    b, s = run.bundle, run.settings
    where = f"provider {s.provider} · model {s.model or '(its default)'}" if s else "no provider configured"
    lines = ["Dry run: nothing is sent and nothing is written.",
             f"{where} · instance {b.instance} · session {b.session or '(a new one)'} · strategy {b.strategy} · "
             f"budget {b.budget_tokens} · {b.used_tokens} tokens (estimated)", "",
             "Items, in the order they are sent:"]
    for n, item in enumerate(b.items, 1):
        where = item.path or ("(your message)" if item.kind == "input" else
                              "(this session)" if item.kind == "turn" else f"({item.title})")
        lines.append(f"{n:>4}. {item.kind:<9} {item.tokens:>5} tok  {where}")
        lines.append(f"        {item.why}")
    if b.skipped:
        lines += ["", "Left out:"]
        lines += [f"  - {x['kind']} {x['path'] or x['title'] or ''}".rstrip() + f": {x['reason']}"
                  for x in b.skipped[:SKIPPED_SHOWN]]
        if len(b.skipped) > SKIPPED_SHOWN:
            lines.append(f"  - … and {len(b.skipped) - SKIPPED_SHOWN} more (--json lists them all)")
    if run.notes or b.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in run.notes + b.notes]
    lines += ["", "Messages exactly as they would be sent:"]
    for m in b.messages():
        lines += ["", f"--- {m['role']} ---", m["content"]]
    return "\n".join(lines)


def _dry_run(vault: Vault, text: str, kwargs: dict[str, Any], as_json: bool,
             pattern: patterns.Pattern | None = None) -> None:
    kwargs = {k: v for k, v in kwargs.items() if k != "max_tokens"}
    provider = kwargs.pop("provider")
    run = conversation.dry_run(vault, text, provider=provider, pattern=pattern, **kwargs)
    output(run.to_dict(), as_json, lambda _: _dry_text(run))


@click.command("ask")
@click.argument("text")
@provider_options
@click.option("--dry-run", is_flag=True, help="Print the exact messages that would be sent, item by item; "
                                              "call nothing, write nothing (no API key needed).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="The longest reply, in tokens.")
@json_option
@pass_vault
def ask_cmd(vault: Vault, text, provider, model, base_url, profile, strategy, budget, session_id, new,
            include_locked, passphrase_file, dry_run, max_tokens, as_json) -> None:
    """Ask the AI once; the reply streams here and both messages go to this instance's session.

    Your message is written before the call (never lost); the reply after it,
    with the model, provider, usage and estimated cost in its metadata.
    Ctrl-C keeps the partial reply, marked interrupted. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs ask "What did the phone add today?"
      mirrorfs ask "What is my day rate?" --provider anthropic --model claude-sonnet-4-5
      mirrorfs ask "Plan the week" --provider ollama --model llama3.2 --new
      mirrorfs ask "Summarise the trip" --strategy summarized --budget 4000
      mirrorfs ask "What would you remember?" --dry-run
      mirrorfs ask "Hi" --provider openai --base-url http://127.0.0.1:1234/v1 --json
    """
    text = read_text_arg(text)
    _prepare(vault, include_locked, passphrase_file)
    kwargs = _ask_kwargs(provider, model, base_url, profile, strategy, budget, session_id, new, include_locked,
                         max_tokens)
    if dry_run:
        _dry_run(vault, text, kwargs, as_json)
        return
    result, _, status = _stream(vault, text, kwargs, show=not as_json)
    if status:
        sys.exit(status)
    if as_json:
        output(result.to_dict() if result else None, True)
    elif result is not None:
        click.echo(_footer(result), err=True)
        for note in result.notes:
            click.echo(f"[{note}]", err=True)


@click.command("context")
@click.argument("query")
@provider_options
@json_option
@pass_vault
def context_cmd(vault: Vault, query, provider, model, base_url, profile, strategy, budget, session_id, new,
                include_locked, passphrase_file, as_json) -> None:
    """Show what the AI would be given for QUERY: the exact messages, item by item, with why
    each was chosen and its tokens. Calls nothing and writes nothing (no API key needed).

    The same as `mirrorfs ask QUERY --dry-run`.

    \b
    Examples:
      mirrorfs context "What did we decide about the Kyoto trip?"
      mirrorfs context "Day rate" --strategy relevant --budget 800
      mirrorfs context "Where were we?" --strategy summarized --session 2026-11-21-trip-planning-a1b2
      mirrorfs context "tea" --json | jq '.items[] | {kind, path, tokens, why}'
    """
    _prepare(vault, include_locked, passphrase_file)
    kwargs = _ask_kwargs(provider, model, base_url, profile, strategy, budget, session_id, new, include_locked)
    _dry_run(vault, read_text_arg(query), kwargs, as_json)


@click.command("chat")
@provider_options
@click.option("--pattern", metavar="NAME", help="A reflective pattern for every reply (see `mirrorfs patterns`).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="The longest reply, in tokens.")
@json_option
@pass_vault
def chat_cmd(vault: Vault, provider, model, base_url, profile, strategy, budget, session_id, new, include_locked,
             passphrase_file, pattern, max_tokens, as_json) -> None:
    """A conversation in the terminal, kept in this instance's session file.

    Type a message and press Enter; the reply streams back. Ctrl-C stops a
    reply (the partial reply is kept, marked interrupted); Ctrl-D, /quit or
    /exit leaves. With --json every reply is one JSON line instead.

    \b
    Examples:
      mirrorfs chat
      mirrorfs chat --provider ollama --model llama3.2 --new
      mirrorfs chat --session 2026-11-21-trip-planning-a1b2 --strategy summarized
      mirrorfs chat --pattern strategic
    """
    _prepare(vault, include_locked, passphrase_file)
    chosen = patterns.get(vault, pattern) if pattern else None
    kwargs = _ask_kwargs(provider, model, base_url, profile, strategy, budget, session_id, new, include_locked,
                         max_tokens)
    settings = {k: kwargs.pop(k) for k in ("model", "base_url", "profile")}
    llm, _ = conversation.open_provider(kwargs.pop("provider"), settings)
    kwargs["model"] = settings["model"]
    name = soul_name(vault)
    stdin = sys.stdin
    with llm:
        if not as_json:
            how = f" · pattern {chosen.glyph} {chosen.name}".rstrip() if chosen else ""
            click.echo(f"Chat with {name} as {vault.instance} · {llm.settings.provider} "
                       f"{llm.settings.model or ''} · strategy {strategy}{how}. Ctrl-C stops a reply; "
                       "Ctrl-D or /quit leaves.", err=True)
        while True:
            if not as_json:
                click.echo("you> ", nl=False, err=True)
            try:
                line = stdin.readline()
            except KeyboardInterrupt:
                click.echo("", err=True)
                break
            if not line:
                click.echo("", err=True)
                break
            text = line.strip()
            if text in ("/quit", "/exit"):
                break
            if not text:
                continue
            if not as_json:
                click.echo(f"{name.lower()}> ", nl=False, err=True)
            try:
                result, session, _ = _stream(vault, text, {**kwargs, "provider": llm}, show=not as_json,
                                             pattern=chosen)
            except click.ClickException as exc:
                click.echo(f"Error: {exc.format_message()}", err=True)
                session, result = None, None
            if session is not None:
                kwargs.update(session=session.id, new=False)
            if result is None:
                continue
            if as_json:
                click.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
                continue
            meta = result.answer.meta if result.answer else {}
            if chosen is not None and meta.get("uncertainty"):
                level = meta["uncertainty"]
                click.echo(f"[{chosen.glyph} {chosen.name} · uncertainty {level}: {ADVICE[level]}]".replace("[ ", "["),
                           err=True)
            click.echo(_footer(result), err=True)


@click.command("usage")
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="A date (2026-11-01), an ISO time or an age (7d, 2w, 3m); `all` for everything.")
@click.option("--by", "by", type=click.Choice(usage.GROUPINGS), default="model", show_default=True,
              help="How to group the calls.")
@json_option
@pass_vault
def usage_cmd(vault: Vault, since: str, by: str, as_json: bool) -> None:
    """Tokens and estimated cost of the AI calls recorded in the vault (every instance's sessions
    and the summaries), grouped by model, instance, session, provider or day. A model without a
    price costs "unknown", never 0 (prices: prices.yaml in the config folder).

    \b
    Examples:
      mirrorfs usage
      mirrorfs usage --since 7d --by instance
      mirrorfs usage --since 2026-11-01 --by session --json
      mirrorfs usage --since all --by day
    """
    report = usage.vault_usage(vault, since=None if since == "all" else since, by=by)
    output(report, as_json, _usage_text)


def _usage_text(report: dict) -> str:
    since = f"since {report['since'][:16].replace('T', ' ')}" if report["since"] else "all time"
    if not report["rows"]:
        return f"No AI calls recorded ({since})."
    width = max(12, *(len(r["key"]) for r in report["rows"]))
    head = f"{report['by']:<{width}}  {'calls':>5}  {'prompt':>9}  {'completion':>10}  {'total':>9}  cost"
    lines = [f"Usage {since}, by {report['by']}:", head]
    for row in report["rows"] + [{"key": "total", **report["total"]}]:
        lines.append(f"{row['key']:<{width}}  {row['calls']:>5}  {row['prompt_tokens']:>9}  "
                     f"{row['completion_tokens']:>10}  {row['total_tokens']:>9}  "
                     f"{usage.cost_text(row['estimated_cost_usd'], row['unpriced_calls'], row['known_cost_usd'])}")
    total = report["total"]
    if total["estimated_calls"]:
        lines.append(f"({total['estimated_calls']} calls reported no usage: their tokens are estimates)")
    return "\n".join(lines)
