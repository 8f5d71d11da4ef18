"""CLI commands for mirroring: instances, reflections, intentions and the human bridge."""

from __future__ import annotations

import click

from mirrorfs import bridge as bridge_mod
from mirrorfs import reflections as refl
from mirrorfs import render
from mirrorfs.cli_base import State, json_option, output, pass_vault, read_text_arg
from mirrorfs.clock import now as local_now
from mirrorfs.vault import Vault


@click.command("instances")
@json_option
@pass_vault
def instances_cmd(vault: Vault, as_json: bool) -> None:
    """List every instance of this vault, active, idle or gone.

    An instance is active when its card was seen in the last 10 minutes, idle
    within 7 days, gone after that (settings `presence: {active, idle}` in
    .mirrorfs/config.yaml, in seconds).

    \b
    Examples:
      mirrorfs instances
      mirrorfs instances --json
    """
    now = local_now()
    cards = [c.to_dict() for c in vault.instances.list(now=now)]
    width = max((len(c["name"]) for c in cards), default=0)

    def text(items: list[dict]) -> str:
        if not items:
            return "no instances yet"
        return "\n".join(
            bridge_mod.presence_line(c, now, width) + (f" · {c['status']}" if c.get("status") else "")
            for c in items
        )

    output(cards, as_json, text)


@click.command("reflections")
@click.option("--since", metavar="DATE", help="Everything others wrote since DATE (YYYY-MM-DD, an ISO time or an age like 7d), "
              "instead of since you last looked.")
@click.option("--mark-read", is_flag=True, help="Move your cursor past what is shown.")
@json_option
@pass_vault
def reflections_cmd(vault: Vault, since: str | None, mark_read: bool, as_json: bool) -> None:
    """What the other instances (and people) wrote since this instance last looked.

    One line per reflection: new or changed memories, sessions and messages,
    SOUL.md edits, intentions, bridge notes addressed to you, edits made in an
    editor (by `human`), merged conflict copies and blocks the watcher sealed.
    The first look, before any --mark-read, shows the last 7 days.

    \b
    Examples:
      mirrorfs reflections
      mirrorfs reflections --mark-read
      mirrorfs --instance phone reflections --since 2026-11-20 --json
    """
    cutoff = refl.parse_since(since) if since else None
    looked = refl.last_looked(vault)
    found = refl.vault_reflections(vault, since=cutoff, mark_read=mark_read)

    def text(items: list[dict]) -> str:  # as the lean console prints it (mirrorfs.render)
        return render.reflections_text(items, cutoff, looked, refl.first_look_days(vault))

    output([r.to_dict() for r in found], as_json, text)


def _intentions_text(card: dict) -> str:
    items = card.get("intention_items") or []
    if not items:
        return f"{card['name']} intends nothing"
    lines = [f"{card['name']} intends:"]
    for n, item in enumerate(items, 1):
        since = f" (since {item['since']})" if item.get("since") else ""
        lines.append(f"  {n}. {item['text']}{since}")
    return "\n".join(lines)


@click.command("intend")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Remove all your intentions (before adding TEXT, if given).")
@click.option("--done", "done_n", type=click.IntRange(min=1), metavar="N", help="Remove intention N (as listed) once it is done.")
@json_option
@pass_vault
def intend_cmd(vault: Vault, text: str | None, clear: bool, done_n: int | None, as_json: bool) -> None:
    """Record what this instance intends to do, on its card (instances/<name>.md).

    The person who coordinates sees every instance's intentions in `mirrorfs
    bridge`, and the other instances see them in their reflections. Without
    arguments, lists your intentions. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs intend "Draft the phase 2 timeline with a buffer week"
      mirrorfs intend --done 1
      mirrorfs intend --clear
      mirrorfs intend
    """
    instances = vault.instances
    if done_n is not None:
        instances.done(done_n)
    if clear:
        instances.clear_intentions()
    if text is not None:
        instances.intend(read_text_arg(text))
    card = instances.get()
    output(card.to_dict(), as_json, _intentions_text)


@click.group("bridge", invoke_without_command=True)
@json_option
@click.pass_context
def bridge_cmd(ctx: click.Context, as_json: bool) -> None:
    """The human bridge: every instance's status and intentions, open conflicts
    and unanswered bridge notes, side by side.

    Bridge notes live in bridge/: a person writes one (here or in any editor)
    to one instance or to all, and it shows up in their reflections.

    \b
    Examples:
      mirrorfs bridge
      mirrorfs bridge write "Trip dates are fixed: 24 March to 3 April" --to all
      mirrorfs bridge write "Book the ryokan before Friday" --to phone
      mirrorfs --instance phone bridge answer book-the-ryokan "Booked for 31 March"
      mirrorfs bridge list --all
    """
    if ctx.invoked_subcommand is not None:
        return  # the subcommand opens the vault (its --help needs none)
    overview = bridge_mod.bridge_overview(ctx.find_object(State).vault)
    output(overview, as_json, bridge_mod.format_overview)


@bridge_cmd.command("write")
@click.argument("text")
@click.option("--to", "to", multiple=True, required=True, metavar="NAME|all",
              help="An instance name or `all` (repeat, or separate with commas).")
@click.option("--title", help="Title (default: the first words of TEXT).")
@click.option("--as", "sender", default=bridge_mod.HUMAN, show_default=True, metavar="NAME",
              help="Who writes it: `human`, or an instance name.")
@json_option
@pass_vault
def bridge_write(vault: Vault, text: str, to: tuple[str, ...], title: str | None, sender: str,
                 as_json: bool) -> None:
    """Write a bridge note to one instance or to all, and print its path. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs bridge write "No client edits from the phone while offline" --to phone
      mirrorfs bridge write "Flights are booked" --to laptop --to phone --title "Trip dates"
      mirrorfs --instance laptop bridge write "Which glaze colours?" --to human --as laptop
    """
    names = [name for value in to for name in value.replace(",", " ").split()]
    b = bridge_mod.write_bridge_note(vault, read_text_arg(text), to=names, title=title, sender=sender,
                                     known_only=True)
    output(b.to_dict(), as_json, lambda d: d["path"])


@bridge_cmd.command("answer")
@click.argument("ref")
@click.argument("text")
@click.option("--as", "sender", metavar="NAME", help="Who answers (default: this instance; `human` for a person).")
@json_option
@pass_vault
def bridge_answer(vault: Vault, ref: str, text: str, sender: str | None, as_json: bool) -> None:
    """Answer a bridge note (REF: path, file name, id or title) and mark it answered.

    \b
    Examples:
      mirrorfs --instance phone bridge answer trip-dates-are-fixed "Noted: no client work 22 March to 5 April"
      mirrorfs bridge answer bridge/which-glaze-colours.md "The blue ones" --as human
    """
    b = bridge_mod.answer(vault, ref, read_text_arg(text), sender=sender)
    output(b.to_dict(), as_json, lambda d: f"answered {d['path']}")


@bridge_cmd.command("list")
@click.option("--all", "show_all", is_flag=True, help="Answered notes too.")
@click.option("--for", "for_instance", metavar="NAME", help="Only notes addressed to NAME (or to all).")
@json_option
@pass_vault
def bridge_list(vault: Vault, show_all: bool, for_instance: str | None, as_json: bool) -> None:
    """List bridge notes (open ones unless --all), oldest first.

    \b
    Examples:
      mirrorfs bridge list
      mirrorfs bridge list --all --for phone --json
    """
    problems: list[str] = []
    found = bridge_mod.list_bridge(vault, open_only=not show_all, for_instance=for_instance,
                                   on_error=lambda e: problems.append(str(e)))
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)

    def text(items: list[dict]) -> str:
        if not items:
            return "no open bridge notes" if not show_all else "no bridge notes"
        return "\n".join(
            f"{d['path']}  {d['status']:<8}  {d['from']} -> {', '.join(d['to'])}  \"{d['title']}\"" for d in items
        )

    output([b.to_dict() for b in found], as_json, text)

