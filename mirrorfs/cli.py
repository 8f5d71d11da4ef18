"""The `mirrorfs` command line: a thin adapter over the library.

Every command is one row of COMMANDS (name -> "module:attribute"); its module
is imported only when the command runs. Shared options and output live in
cli_base. Errors raised on purpose (MirrorfsError) become one line on stderr
and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import click

from mirrorfs import __version__
from mirrorfs.cli_base import Group, State

# The one registry of commands.
COMMANDS = {
    "init": "mirrorfs.cli_vault:init",
    "soul": "mirrorfs.cli_vault:soul",
    "demo": "mirrorfs.cli_vault:demo",
    "remember": "mirrorfs.cli_memory:remember",
    "memory": "mirrorfs.cli_memory:memory",
    "session": "mirrorfs.cli_session:session",
    "meta": "mirrorfs.cli_meta:meta",
    "search": "mirrorfs.cli_search:search_cmd",
    "recall": "mirrorfs.cli_search:recall_cmd",
    "similar": "mirrorfs.cli_search:similar_cmd",
    "recent": "mirrorfs.cli_search:recent_cmd",
    "stats": "mirrorfs.cli_search:stats_cmd",
    "index": "mirrorfs.cli_search:index_group",
    "conflicts": "mirrorfs.cli_conflicts:conflicts",
    "instances": "mirrorfs.cli_mirror:instances_cmd",
    "reflections": "mirrorfs.cli_mirror:reflections_cmd",
    "intend": "mirrorfs.cli_mirror:intend_cmd",
    "bridge": "mirrorfs.cli_mirror:bridge_cmd",
    "watch": "mirrorfs.cli_watch:watch",
    "status": "mirrorfs.cli_watch:status",
    "key": "mirrorfs.cli_crypto:key",
    "seal": "mirrorfs.cli_crypto:seal",
    "reveal": "mirrorfs.cli_crypto:reveal",
    "edit": "mirrorfs.cli_crypto:edit",
    "rekey": "mirrorfs.cli_crypto:rekey",
    "doctor": "mirrorfs.cli_crypto:doctor",
    "mcp": "mirrorfs.cli_mcp:mcp_cmd",
    "import": "mirrorfs.cli_import:import_cmd",
    "ask": "mirrorfs.cli_ask:ask_cmd",
    "chat": "mirrorfs.cli_ask:chat_cmd",
    "context": "mirrorfs.cli_ask:context_cmd",
    "usage": "mirrorfs.cli_ask:usage_cmd",
    "patterns": "mirrorfs.cli_patterns:patterns_group",
    "reflect": "mirrorfs.cli_patterns:reflect_cmd",
    "git": "mirrorfs.cli_git:git",
    "sync-filter": "mirrorfs.cli_sync:sync_filter",
}


@click.group(cls=Group, registry=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
