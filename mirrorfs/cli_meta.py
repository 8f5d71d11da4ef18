"""meta get|set|unset: one front-matter property of any note, byte for byte."""

from __future__ import annotations

from typing import Any

import click
import yaml

from mirrorfs.cli_base import json_option, output, pass_vault
from mirrorfs.note import yaml_problem
from mirrorfs.vault import Vault


@click.group()
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
    """Print the value of KEY in the note at PATH.

    \b
    Examples:
      mirrorfs meta get memory/prefers-tea.md tags
      mirrorfs meta get SOUL.md name --json
    """
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

    \b
    Examples:
      mirrorfs meta set memory/prefers-tea.md tier working
      mirrorfs meta set memory/prefers-tea.md tags "[drinks, morning]"
      mirrorfs meta set memory/prefers-tea.md source "2026-11-21 call" --string
    """
    parsed: Any = value
    if not as_string:
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"not valid YAML ({yaml_problem(exc, first_line=1)}); use --string for plain text",
                                     param_hint="VALUE")
    changed = vault.meta_set(path, key, parsed)
    output({"path": vault.relpath(path), "key": key, "changed": changed}, as_json,
           lambda d: f"{d['path']}: {key} " + ("set" if changed else "unchanged"))


@meta.command("unset")
@click.argument("path")
@click.argument("key")
@json_option
@pass_vault
def meta_unset(vault: Vault, path: str, key: str, as_json: bool) -> None:
    """Remove KEY from the note at PATH (every other line keeps its bytes).

    \b
    Example:
      mirrorfs meta unset memory/prefers-tea.md source
    """
    changed = vault.meta_unset(path, key)
    output({"path": vault.relpath(path), "key": key, "changed": changed}, as_json,
           lambda d: f"{d['path']}: {key} " + ("removed" if changed else "was not set"))
