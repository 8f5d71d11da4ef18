"""Session commands: one Markdown file per conversation."""

from __future__ import annotations

from pathlib import Path

import click

from mirrorfs import storage
from mirrorfs.cli_base import (
    json_option,
    output,
    pass_vault,
    passphrase_file_option,
    read_text_arg,
    unlock_vault,
)
from mirrorfs.export import EXPORT_FORMATS
from mirrorfs.messages import ROLES
from mirrorfs.vault import Vault


@click.group()
def session() -> None:
    """Conversations: one Markdown file per session, messages appended.

    \b
    Examples:
      mirrorfs session new "Trip planning" --category travel
      mirrorfs session list --instance phone
      mirrorfs session show 2026-11-21-trip-planning-a1b2
    """


@session.command("new")
@click.argument("title")
@click.option("--ephemeral", is_flag=True, help="Keep it on this device only; dropped on close unless --keep.")
@click.option("--category", help="A category, e.g. work or travel.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--previous", help="Id of the session this one continues.")
@json_option
@pass_vault
def session_new(vault: Vault, title, ephemeral, category, tags, previous, as_json: bool) -> None:
    """Start a session and print its id.

    \b
    Examples:
      mirrorfs session new "Trip planning" --category travel --tag lisbon
      mirrorfs session new "Trip planning, part 2" --previous 2026-11-21-trip-planning-a1b2
    """
    s = vault.sessions.create(
        title,
        persistence="ephemeral" if ephemeral else "persistent",
        category=category,
        tags=tags,
        previous=previous,
    )
    output(s.to_dict(), as_json, lambda d: d["id"])


@session.command("add")
@click.argument("session_id")
@click.argument("text")
@click.option("--role", type=click.Choice(ROLES), required=True, help="Who speaks.")
@click.option("--tokens", type=click.IntRange(min=0), help="Token count of this message (summed in the session).")
@click.option("--secret", is_flag=True, help="Encrypt the whole message (needs the passphrase).")
@passphrase_file_option
@json_option
@pass_vault
def session_add(vault: Vault, session_id: str, text: str, role: str, tokens, secret: bool,
                passphrase_file, as_json: bool) -> None:
    """Append a message to a session. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs session add 2026-11-21-trip-planning-a1b2 "Where to in March?" --role user
      llm "Suggest a trip" | mirrorfs session add 2026-11-21-trip-planning-a1b2 - --role assistant
      mirrorfs session add 2026-11-21-trip-planning-a1b2 "My passport number is ..." --role user --secret
    """
    from mirrorfs.crypto import has_unsealed

    s = vault.sessions.load(session_id)
    text = read_text_arg(text)
    if secret or passphrase_file is not None or has_unsealed(text):
        unlock_vault(vault, passphrase_file)
    meta = {"tokens": tokens} if tokens is not None else {}
    msg = s.add_message(role, text, secret=secret, **meta)
    output(msg.to_dict(), as_json, lambda d: d["id"])


def _message_text(m: dict) -> str:
    return f"### {m['role']} · {m['instance']} · {m['time']}\n\n{m['content']}\n"


@session.command("show")
@click.argument("session_id")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many messages.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many messages.")
@json_option
@pass_vault
def session_show(vault: Vault, session_id: str, limit, offset: int, as_json: bool) -> None:
    """Show a session and its messages.

    \b
    Example:
      mirrorfs session show 2026-11-21-trip-planning-a1b2 --limit 10
    """
    s = vault.sessions.load(session_id)
    data = s.to_dict()
    data["messages"] = [m.to_dict() for m in s.get_messages(limit=limit, offset=offset)]

    def text(d: dict) -> str:
        head = f"# {d['title']}  ({d['id']}, {d['status']}, {d['message_count']} messages)\n"
        return head + "\n" + "\n".join(_message_text(m) for m in d["messages"])

    output(data, as_json, text)


def _session_line(d: dict) -> str:
    tags = " ".join(f"#{t}" for t in d["tags"])
    flags = "" if d["persistence"] == "persistent" else " (ephemeral)"
    return (
        f"{d['id']}  {d['status']:<6} {d['message_count']:>4} msgs  {d['instance']}  {d['title']}{flags}"
        + (f"  {tags}" if tags else "")
    )


@session.command("list")
@click.option("--instance", "of_instance", help="Only sessions of this instance.")
@click.option("--tag", help="Only sessions with this tag.")
@click.option("--category", help="Only this category.")
@click.option("--status", type=click.Choice(["open", "closed"]), help="Only open or closed ones.")
@click.option("--since", help="Only sessions created since DATE: YYYY-MM-DD, an ISO time or an age like 7d, 2w.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many.")
@json_option
@pass_vault
def session_list(vault: Vault, of_instance, tag, category, status, since, limit, offset, as_json: bool) -> None:
    """List sessions, most recently updated first.

    \b
    Examples:
      mirrorfs session list --instance phone --status open
      mirrorfs session list --since 2026-11-01 --json
    """
    found = vault.sessions.list(
        instance=of_instance, tag=tag, category=category, status=status, since=since, limit=limit, offset=offset
    )
    output([s.to_dict() for s in found], as_json, lambda items: "\n".join(_session_line(d) for d in items))


@session.command("close")
@click.argument("session_id")
@click.option("--keep", is_flag=True, help="Save an ephemeral session into the vault instead of dropping it.")
@json_option
@pass_vault
def session_close(vault: Vault, session_id: str, keep: bool, as_json: bool) -> None:
    """Close a session (an ephemeral one is discarded unless --keep).

    \b
    Examples:
      mirrorfs session close 2026-11-21-trip-planning-a1b2
      mirrorfs session close 2026-11-21-scratch-9f3c --keep
    """
    s = vault.sessions.load(session_id)
    result = s.close(keep=keep)
    data = {"closed": session_id, "kept": result.relpath if result and s.ephemeral else None}
    output(data, as_json, lambda d: f"closed {session_id}" + (f" ({d['kept']})" if d["kept"] else ""))


@session.command("delete")
@click.argument("session_id")
@click.option("--purge", is_flag=True, help="Delete for good instead of moving to the trash.")
@json_option
@pass_vault
def session_delete(vault: Vault, session_id: str, purge: bool, as_json: bool) -> None:
    """Move a session to the trash (restorable with `memory restore`), or delete it with --purge.

    \b
    Examples:
      mirrorfs session delete 2026-11-21-trip-planning-a1b2
      mirrorfs session delete 2026-11-21-trip-planning-a1b2 --purge
    """
    target = vault.sessions.load(session_id).delete(purge=purge)
    rel = vault.relpath(target) if target else None
    output({"trashed": rel, "purged": purge}, as_json, f"moved to {rel}" if rel else "deleted")


@session.command("tag")
@click.argument("session_id")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead of adding them.")
@json_option
@pass_vault
def session_tag(vault: Vault, session_id: str, tags, remove: bool, as_json: bool) -> None:
    """Add (or --remove) tags on a session.

    \b
    Example:
      mirrorfs session tag 2026-11-21-trip-planning-a1b2 lisbon spring
    """
    s = vault.sessions.load(session_id)
    for tag in tags:
        s.remove_tag(tag) if remove else s.add_tag(tag)
    output({"id": s.id, "tags": s.tags}, as_json, lambda d: " ".join(f"#{t}" for t in d["tags"]))


@session.command("export")
@click.argument("session_id")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="markdown", show_default=True)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@json_option
@pass_vault
def session_export(vault: Vault, session_id: str, fmt: str, out: str | None, as_json: bool) -> None:
    """Export a session as json, markdown, txt or mirrordna.

    \b
    Examples:
      mirrorfs session export 2026-11-21-trip-planning-a1b2 --format json
      mirrorfs session export 2026-11-21-trip-planning-a1b2 --format mirrordna -o trip.md
    """
    text = vault.sessions.load(session_id).export(fmt)
    if out:
        storage.atomic_write(Path(out), text.encode("utf-8"))
    if as_json:
        output({"id": session_id, "format": fmt, "written": out, **({} if out else {"text": text})}, True)
    elif out:
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)
