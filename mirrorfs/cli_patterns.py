"""`mirrorfs patterns list|show` and `mirrorfs reflect`: reflective patterns from the terminal."""

from __future__ import annotations

import click

from mirrorfs import patterns, reflect, usage
from mirrorfs.cli_ask import provider_options
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    read_text_arg,
    unlock_vault,
)
from mirrorfs.errors import ProviderError
from mirrorfs.overview import soul_name
from mirrorfs.vault import Vault


@click.group("patterns")
def patterns_group() -> None:
    """Reflective patterns: the built-ins and the vault's patterns/*.md notes.

    A pattern is a note `patterns/<name>.md` with `type: pattern`, `name`,
    `glyph`, `style` (optionally `compose_with`, `cues`) and a body of
    instructions. Save one in Obsidian to add a pattern, or to override a
    built-in of the same name.

    \b
    Examples:
      mirrorfs patterns list
      mirrorfs patterns show analytical
    """


def _list_text(data: dict) -> str:
    rows = data["patterns"]
    width = min(16, max((len(p["name"]) for p in rows), default=4))
    lines = []
    for p in rows:
        source = p["source"] + (" (overrides the built-in)" if p["overrides_builtin"] else "")
        style = f"  — {p['style']}" if p["style"] else ""
        lines.append(f"{p['glyph'] or ' '} {p['name']:<{width}}  {source}{style}")
    lines += [f"! {problem}" for problem in data["problems"]]
    return "\n".join(lines)


@patterns_group.command("list")
@json_option
@pass_vault
def patterns_list(vault: Vault, as_json: bool) -> None:
    """Every pattern, with its glyph, where it comes from and its style.

    \b
    Examples:
      mirrorfs patterns list
      mirrorfs patterns list --json
    """
    problems: list[str] = []
    found = patterns.load(vault, problems)
    order = [n for n in patterns.BUILTIN if n in found] + sorted(n for n in found if n not in patterns.BUILTIN)
    output({"patterns": [found[n].to_dict() for n in order], "problems": problems}, as_json, _list_text)


@patterns_group.command("show")
@click.argument("name")
@json_option
@pass_vault
def patterns_show(vault: Vault, name: str, as_json: bool) -> None:
    """One pattern: its settings and the instructions it adds to a prompt.

    \b
    Examples:
      mirrorfs patterns show strategic
      mirrorfs patterns show my-pattern --json
    """
    p = patterns.get(vault, name)
    data = {**p.to_dict(template=True), "instructions": patterns.instructions(p, soul_name(vault))}

    def text(d: dict) -> str:
        head = [f"{d['glyph']} {d['name']}".strip() + f" — {d['title']}", f"source: {d['source']}"]
        if d["style"]:
            head.append(f"style: {d['style']}")
        if d["compose_with"]:
            head.append(f"compose with: {', '.join(d['compose_with'])}")
        if d["cues"]:
            head.append(f"cues: {', '.join(d['cues'])}")
        return "\n".join(head) + "\n\n" + d["instructions"]

    output(data, as_json, text)


def _reflect_text(result: reflect.ReflectResult) -> str:
    blocks = []
    for s in result.steps:
        p = s.parsed
        glyphs = " ".join(p.glyphs) or "none"
        blocks.append(f"## {s.heading}\n\n{p.response}\n\n(uncertainty {p.uncertainty}: {p.advice} · glyphs "
                      f"{glyphs} · depth {p.reflection_depth})")
    return "\n\n".join(blocks)


@click.command("reflect")
@click.argument("text")
@click.option("--pattern", "pattern", default=patterns.AUTO, show_default=True, metavar="NAME[,NAME…]",
              help="Patterns to reflect through, or auto (the one that fits the text, and why).")
@click.option("--blend", type=click.Choice(reflect.BLENDS), default="sequential", show_default=True,
              help="sequential: each pattern builds on the reflections before it; parallel: each alone.")
@click.option("--meta-depth", type=click.IntRange(0, reflect.MAX_META_DEPTH), default=0, show_default=True,
              help="Reflections on the reflections (0-2).")
@click.option("--save/--no-save", default=True, show_default=True,
              help="Keep the reflection as a note in insights/ that links its patterns and session.")
@provider_options
@click.option("--max-tokens", type=click.IntRange(min=1), help="The longest reply of each call, in tokens.")
@json_option
@pass_vault
def reflect_cmd(vault: Vault, text, pattern, blend, meta_depth, save, provider, model, base_url, profile, strategy,
                budget, session_id, new, include_locked, passphrase_file, max_tokens, as_json) -> None:
    """Reflect on TEXT through reflective patterns (one call per pattern, plus meta-reflections).

    Each reply is read for uncertainty markers (⟨low⟩ ⟨medium⟩ ⟨⟨high⟩⟩) and
    glyphs (◊ ✦ ★ ⬢ ◈ ⬡). TEXT and the reflection go to this instance's
    session, like `ask`. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs reflect "Should I take the Kyoto job?"
      mirrorfs reflect "Should I raise my day rate?" --pattern analytical,strategic --meta-depth 1
      mirrorfs reflect "Names for the new shop" --pattern creative --blend parallel --no-save
      mirrorfs reflect "What did this month teach me?" --pattern my-pattern --json
    """
    text = read_text_arg(text)
    if include_locked:
        unlock_vault(vault, passphrase_file)
    try:
        result = reflect.reflect(vault, text, patterns=pattern, blend=blend, meta_depth=meta_depth, save=save,
                                 session=session_id, new=new, provider=provider, model=model, base_url=base_url,
                                 profile=profile, strategy=strategy, budget_tokens=budget,
                                 include_locked=include_locked, max_tokens=max_tokens)
    except ProviderError as exc:
        raise click.ClickException(f"{exc}; your text is kept in this instance's session "
                                   "(and any reflection that came back before the error)") from None
    if as_json:
        output(result.to_dict(), True)
        return
    if result.why:
        click.echo(f"[auto: {result.why}]", err=True)
    click.echo(_reflect_text(result))
    calls = len(result.steps)
    tokens_in = sum(s.completion.usage.input_tokens for s in result.steps)
    tokens_out = sum(s.completion.usage.output_tokens for s in result.steps)
    saved = f"saved {result.note} · " if result.note else ""
    click.echo(f"[{saved}{calls} call{'s' if calls > 1 else ''} · {tokens_in} in / {tokens_out} out · "
               f"{usage.cost_text(result.cost_usd)} · {result.session.relpath}]", err=True)
    for note in result.notes:
        click.echo(f"[{note}]", err=True)
