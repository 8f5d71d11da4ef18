"""The `mirrorfs` command line: a thin adapter over the library.

Every command that prints data takes --json. Errors raised on purpose
(MirrorfsError) become one line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
import yaml

from mirrorfs import __version__
from mirrorfs.errors import MirrorfsError
from mirrorfs.memory import KINDS, TIERS
from mirrorfs.messages import ROLES
from mirrorfs.passphrase import passphrase_file_option
from mirrorfs.session import EXPORT_FORMATS
from mirrorfs.vault import Vault


# Commands of the other layers live in their own modules, imported only when
# one of their commands runs: `mirrorfs search` answered by a watcher must not
# pay for importing Whoosh or the crypto and merge layers.
LAZY_COMMANDS = {
    "search": "mirrorfs.cli_search",
    "recall": "mirrorfs.cli_search",
    "similar": "mirrorfs.cli_search",
    "recent": "mirrorfs.cli_search",
    "stats": "mirrorfs.cli_search",
    "index": "mirrorfs.cli_search",
    "conflicts": "mirrorfs.cli_conflicts",
    "instances": "mirrorfs.cli_mirror",
    "reflections": "mirrorfs.cli_mirror",
    "intend": "mirrorfs.cli_mirror",
    "bridge": "mirrorfs.cli_mirror",
    "watch": "mirrorfs.cli_watch",
    "status": "mirrorfs.cli_watch",
    "seal": "mirrorfs.cli_crypto",
    "reveal": "mirrorfs.cli_crypto",
    "edit": "mirrorfs.cli_crypto",
    "rekey": "mirrorfs.cli_crypto",
    "doctor": "mirrorfs.cli_crypto",
    "import": "mirrorfs.cli_import",
}


class Group(click.Group):
    """A click group that turns MirrorfsError into a clean one-line error."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        if self is cli:
            return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str):
        command = super().get_command(ctx, name)
        if command is None and self is cli and name in LAZY_COMMANDS:
            importlib.import_module(LAZY_COMMANDS[name])  # registers its commands on `cli`
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MirrorfsError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None


class State:
    """What the global options chose; the vault is opened on first use."""

    def __init__(self, vault_path: str | None, instance: str | None):
        self.vault_path = vault_path
        self.instance = instance
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.open(self.vault_path, instance=self.instance)
            self._vault.instances.ensure_card()
        return self._vault


def pass_vault(f: Callable) -> Callable:
    """Decorator: call the command with the opened Vault as first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, ctx.find_object(State).vault, *args, **kwargs)

    return functools.update_wrapper(wrapper, f)


def _default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def output(data: Any, as_json: bool, text: Callable[[Any], str] | str | None = None) -> None:
    """Print *data* as JSON for scripts, or as text for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_default))
        return
    if text is None:
        click.echo(data)
    elif callable(text):
        rendered = text(data)
        if rendered:
            click.echo(rendered)
    else:
        click.echo(text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def read_text_arg(text: str) -> str:
    """TEXT arguments: `-` reads standard input."""
    return sys.stdin.read() if text == "-" else text


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--vault",
    "vault_path",
    metavar="PATH",
    help="The vault folder (default: $MIRRORFS_VAULT, or the vault around the current folder).",
)
@click.option(
    "--instance",
    metavar="NAME",
    help="Which instance of the AI is acting (default: $MIRRORFS_INSTANCE, or this device's default).",
)
@click.version_option(__version__, prog_name="mirrorfs")
@click.pass_context
def cli(ctx: click.Context, vault_path: str | None, instance: str | None) -> None:
    """A memory for AI assistants that lives in Markdown files you own.

    \b
    Examples:
      mirrorfs init ~/Mira --name Mira --instance laptop
      mirrorfs --vault ~/Mira remember "Sam prefers tea" --kind preference --tag drinks
      mirrorfs --vault ~/Mira session new "Trip planning" --category travel
      mirrorfs demo
    """
    ctx.obj = State(vault_path, instance)


# -- init and soul ------------------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False), default=".")
@click.option("--name", help="The AI identity's name (written into SOUL.md).")
@json_option
@click.pass_context
def init(ctx: click.Context, path: str, name: str | None, as_json: bool) -> None:
    """Create a vault in PATH, or adopt an existing folder (an Obsidian vault).

    Existing files are never changed: init only adds .mirrorfs/config.yaml, the
    folders, SOUL.md and README-mirrorfs.md where they do not exist yet.

    \b
    Examples:
      mirrorfs init ~/Mira --name Mira
      mirrorfs --instance laptop init ~/Documents/MyObsidianVault
    """
    state = ctx.find_object(State)
    vault = Vault.init(path, name=name, instance=state.instance)
    output(
        {"path": str(vault.root), "vault_id": vault.id, "name": vault.name, "instance": vault.instance},
        as_json,
        lambda d: f"Vault {d['name']} ready at {d['path']} (instance {d['instance']})",
    )


@cli.command()
@click.option("--edit", is_flag=True, help="Open SOUL.md in $EDITOR.")
@json_option
@pass_vault
def soul(vault: Vault, edit: bool, as_json: bool) -> None:
    """Show the AI's identity (SOUL.md), or edit it.

    \b
    Examples:
      mirrorfs soul
      mirrorfs soul --edit
    """
    if edit:
        click.edit(filename=str(vault.root / "SOUL.md"))
        return
    note = vault.soul
    output({"path": "SOUL.md", "meta": note.meta, "body": note.body}, as_json, lambda d: note.text.rstrip("\n"))


# -- memory -------------------------------------------------------------------


@cli.command()
@click.argument("text")
@click.option("--title", help="Title (default: the first words of TEXT).")
@click.option("--kind", default="fact", show_default=True, help=f"What it is: {', '.join(KINDS)} or another word.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--tier", type=click.Choice(TIERS), default="long_term", show_default=True)
@click.option("--source", help="Session id this memory came from.")
@click.option("--secret", is_flag=True, help="Encrypt the whole text (title and properties stay clear).")
@passphrase_file_option
@json_option
@pass_vault
def remember(vault: Vault, text: str, title, kind, tags, tier, source, secret: bool, passphrase_file,
             as_json: bool) -> None:
    """Write a new memory note and print its path. TEXT `-` reads stdin.

    \b
    Examples:
      mirrorfs remember "Sam prefers tea in the morning" --kind preference --tag drinks
      echo "Project Atlas ships in March" | mirrorfs remember - --kind project
    """
    link = f"[[{vault.sessions.load(source).id}]]" if source else None
    text = read_text_arg(text)
    from mirrorfs.crypto import has_unsealed

    if secret or passphrase_file is not None or has_unsealed(text):
        from mirrorfs.cli_crypto import unlock_vault

        unlock_vault(vault, passphrase_file)
    m = vault.remember(text, title=title, kind=kind, tags=tags, tier=tier, source=link, secret=secret)
    output(m.to_dict(), as_json, lambda d: d["path"])


@cli.group()
def memory() -> None:
    """List, show and forget memory notes."""


def _memory_line(d: dict) -> str:
    tags = " ".join(f"#{t}" for t in d["tags"])
    return f"{d['path']}  [{d['kind']}/{d['tier']}] {d['title']}" + (f"  {tags}" if tags else "")


@memory.command("list")
@click.option("--kind", help="Only this kind.")
@click.option("--tag", help="Only notes with this tag.")
@click.option("--tier", type=click.Choice(TIERS), help="Only this tier.")
@click.option("--limit", type=int, help="At most this many.")
@json_option
@pass_vault
def memory_list(vault: Vault, kind, tag, tier, limit, as_json: bool) -> None:
    """List memory notes, most recently updated first.

    \b
    Examples:
      mirrorfs memory list --kind preference
      mirrorfs memory list --tag drinks --json
    """
    problems: list[str] = []
    found = vault.memory.list(kind=kind, tag=tag, tier=tier, limit=limit, on_error=lambda e: problems.append(str(e)))
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    output([m.to_dict() for m in found], as_json, lambda items: "\n".join(_memory_line(d) for d in items))


@memory.command("show")
@click.argument("ref")
@json_option
@pass_vault
def memory_show(vault: Vault, ref: str, as_json: bool) -> None:
    """Show one memory note (REF: path, file name, id or title).

    \b
    Example:
      mirrorfs memory show prefers-tea
    """
    m = vault.memory.get(ref)
    output(m.to_dict(), as_json, lambda d: m.text.rstrip("\n"))


@memory.command("forget")
@click.argument("ref")
@click.option("--purge", is_flag=True, help="Delete for good instead of moving to the trash.")
@json_option
@pass_vault
def memory_forget(vault: Vault, ref: str, purge: bool, as_json: bool) -> None:
    """Move a memory note to the trash (.mirrorfs/trash), or delete it with --purge.

    \b
    Examples:
      mirrorfs memory forget prefers-tea
      mirrorfs memory restore .mirrorfs/trash/20261121T100412Z/memory/prefers-tea.md
    """
    target = vault.memory.forget(ref, purge=purge)
    rel = vault.relpath(target) if target else None
    output({"trashed": rel, "purged": purge}, as_json, lambda d: f"moved to {rel}" if rel else "deleted")


@memory.command("restore")
@click.argument("path")
@json_option
@pass_vault
def memory_restore(vault: Vault, path: str, as_json: bool) -> None:
    """Put a forgotten note back from the trash."""
    restored = vault.relpath(vault.restore(path))
    output({"restored": restored}, as_json, lambda d: f"restored {restored}")


# -- sessions -----------------------------------------------------------------


@cli.group()
def session() -> None:
    """Conversations: one Markdown file per session, messages appended."""


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
@click.option("--tokens", type=int, help="Token count of this message (summed in the session).")
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
        from mirrorfs.cli_crypto import unlock_vault

        unlock_vault(vault, passphrase_file)
    meta = {"tokens": tokens} if tokens is not None else {}
    msg = s.add_message(role, text, secret=secret, **meta)
    output(msg.to_dict(), as_json, lambda d: d["id"])


def _message_text(m: dict) -> str:
    return f"### {m['role']} · {m['instance']} · {m['time']}\n\n{m['content']}\n"


@session.command("show")
@click.argument("session_id")
@click.option("--limit", type=int, help="At most this many messages.")
@click.option("--offset", type=int, default=0, help="Skip this many messages.")
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
@click.option("--since", help="Only sessions created since this date (YYYY-MM-DD).")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--offset", type=int, default=0, help="Skip this many.")
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
    """Close a session (an ephemeral one is discarded unless --keep)."""
    s = vault.sessions.load(session_id)
    result = s.close(keep=keep)
    data = {"closed": session_id, "kept": result.relpath if result and s.ephemeral else None}
    output(data, as_json, lambda d: f"closed {session_id}" + (f" ({d['kept']})" if d["kept"] else ""))


@session.command("delete")
@click.argument("session_id")
@click.option("--purge", is_flag=True, help="Delete for good instead of moving to the trash.")
@pass_vault
def session_delete(vault: Vault, session_id: str, purge: bool) -> None:
    """Move a session to the trash (or delete it with --purge)."""
    target = vault.sessions.load(session_id).delete(purge=purge)
    click.echo(f"moved to {vault.relpath(target)}" if target else "deleted")


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
@pass_vault
def session_export(vault: Vault, session_id: str, fmt: str, out: str | None) -> None:
    """Export a session as json, markdown, txt or mirrordna.

    \b
    Examples:
      mirrorfs session export 2026-11-21-trip-planning-a1b2 --format json
      mirrorfs session export 2026-11-21-trip-planning-a1b2 --format mirrordna -o trip.md
    """
    text = vault.sessions.load(session_id).export(fmt)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


# -- meta ---------------------------------------------------------------------


@cli.group()
def meta() -> None:
    """Read or change one front-matter property of any note, byte for byte.

    \b
    Examples:
      mirrorfs meta get memory/prefers-tea.md tags
      mirrorfs meta set memory/prefers-tea.md tier working
      mirrorfs meta set "Projects/Atlas.md" tags "[design, client]"
      mirrorfs meta unset memory/prefers-tea.md source
    """


def _show_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, sort_keys=False).strip()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@meta.command("get")
@click.argument("path")
@click.argument("key")
@json_option
@pass_vault
def meta_get(vault: Vault, path: str, key: str, as_json: bool) -> None:
    """Print the value of KEY in the note at PATH."""
    value = vault.meta_get(path, key)
    output(value, as_json, _show_value)


@meta.command("set")
@click.argument("path")
@click.argument("key")
@click.argument("value")
@click.option("--string", "as_string", is_flag=True, help="Store VALUE as text, not as YAML.")
@json_option
@pass_vault
def meta_set(vault: Vault, path: str, key: str, value: str, as_string: bool, as_json: bool) -> None:
    """Set KEY to VALUE (read as YAML: `42`, `true`, `[a, b]`; --string for text).

    Only the lines of KEY change; the rest of the file keeps its bytes. Setting a
    value a note already has writes nothing.
    """
    parsed: Any = value
    if not as_string:
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"not valid YAML ({exc}); use --string for plain text", param_hint="VALUE")
    changed = vault.meta_set(path, key, parsed)
    output({"path": vault.relpath(path), "key": key, "changed": changed}, as_json,
           lambda d: f"{d['path']}: {key} " + ("set" if changed else "unchanged"))


@meta.command("unset")
@click.argument("path")
@click.argument("key")
@json_option
@pass_vault
def meta_unset(vault: Vault, path: str, key: str, as_json: bool) -> None:
    """Remove KEY from the note at PATH."""
    changed = vault.meta_unset(path, key)
    output({"path": vault.relpath(path), "key": key, "changed": changed}, as_json,
           lambda d: f"{d['path']}: {key} " + ("removed" if changed else "was not set"))


# -- demo ---------------------------------------------------------------------


@cli.command()
@click.option("--into", type=click.Path(file_okay=False), help="Copy the sample vault here (default: a temp folder).")
def demo(into: str | None) -> None:
    """Run the main job on a copy of the bundled sample vault, step by step.

    The bundled sample_vault/ itself is never modified.

    \b
    Example:
      mirrorfs demo --into /tmp/mira-demo
    """
    from mirrorfs import demo as demo_module

    demo_module.run(into, echo=click.echo)


def main() -> None:  # pragma: no cover
    cli(prog_name="mirrorfs")

