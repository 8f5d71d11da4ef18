"""Commands that make and show a vault: init, soul, demo."""

from __future__ import annotations

import click

from mirrorfs.cli_base import State, json_option, output, pass_vault
from mirrorfs.vault import Vault


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False), default=".")
@click.option("--name", help="The AI identity's name (written into SOUL.md).")
@click.option("--instance", "init_instance", metavar="NAME",
              help="This device's instance name, its default from now on (same as the global --instance).")
@json_option
@click.pass_context
def init(ctx: click.Context, path: str, name: str | None, init_instance: str | None, as_json: bool) -> None:
    """Create a vault in PATH, or adopt an existing folder (an Obsidian vault).

    Existing files are never changed: init only adds .mirrorfs/config.yaml, the
    folders, SOUL.md and README-mirrorfs.md where they do not exist yet.

    \b
    Examples:
      mirrorfs init ~/Mira --name Mira --instance laptop
      mirrorfs --instance laptop init ~/Documents/MyObsidianVault
    """
    state = ctx.find_object(State)
    vault = Vault.init(path, name=name, instance=init_instance or state.instance)
    output(
        {"path": str(vault.root), "vault_id": vault.id, "name": vault.name, "instance": vault.instance},
        as_json,
        lambda d: f"Vault {d['name']} ready at {d['path']} (instance {d['instance']})",
    )


@click.command()
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


@click.command()
@click.option("--into", type=click.Path(file_okay=False),
              help="Copy the sample vault here and keep it (default: a temp folder, removed at the end).")
@click.option("--keep", is_flag=True, help="Keep the temp copy (its path is printed).")
@json_option
def demo(into: str | None, keep: bool, as_json: bool) -> None:
    """Run the main job on a copy of the bundled sample vault, step by step.

    The bundled sample_vault/ itself is never modified.

    \b
    Examples:
      mirrorfs demo
      mirrorfs demo --into ~/mira-demo
    """
    from mirrorfs import demo as demo_module

    if not as_json:
        demo_module.run(into, echo=click.echo, keep=keep)
        return
    lines: list[str] = []
    root = demo_module.run(into, echo=lines.append, keep=keep)
    output({"vault": str(root), "kept": bool(into or keep), "lines": lines}, True)
