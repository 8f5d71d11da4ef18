"""`mirrorfs mcp`: serve the vault to one MCP client over stdio; a row of the registry in mirrorfs/cli.py."""

from __future__ import annotations

import click

from mirrorfs.cli_base import State, passphrase_file_option


@click.command("mcp")
@click.option("--read-only", is_flag=True, help="Offer only the reading tools (also MIRRORFS_MCP_TOOLS=read).")
@click.option("--unlock", is_flag=True,
              help="Hold the vault key (passphrase from --passphrase-file, MIRRORFS_PASSPHRASE or the OS keyring) "
                   "so memory_read can reveal locked sections when asked.")
@passphrase_file_option
@click.pass_context
def mcp_cmd(ctx: click.Context, read_only: bool, unlock: bool, passphrase_file) -> None:
    """Serve the vault to an MCP client (Claude Desktop, Cursor, ...) on stdin/stdout.

    The client becomes an instance: named by --instance, else after the
    client's own name (Claude Desktop -> claude-desktop). See docs/mcp.md.

    \b
    Examples:
      mirrorfs --vault ~/Mira mcp
      mirrorfs --vault ~/Mira --instance desktop mcp --read-only
    """
    from mirrorfs import mcp_server

    state = ctx.find_object(State)
    mcp_server.serve(state.vault_path, state.instance, read_only=read_only, unlock=unlock,
                     passphrase_file=str(passphrase_file) if passphrase_file else None)

