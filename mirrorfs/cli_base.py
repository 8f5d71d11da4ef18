"""What every command module shares: the group class, global state, output and options.

The CLI is a thin adapter: each command translates its arguments, calls the
library and prints the result (text for people, --json for scripts). Errors
raised on purpose (MirrorfsError) become one line on stderr and exit 1.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import click

from mirrorfs import passphrase, render
from mirrorfs.errors import MirrorfsError
from mirrorfs.vault import Vault


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a person reads it on the command line: one line, no source."""
    click.echo(f"warning: {message}", err=True)


warnings.showwarning = _one_line_warning


class Group(click.Group):
    """A click group whose commands are listed in a registry and imported on first use,
    and that turns MirrorfsError into a clean one-line error.

    *registry* maps a command name to "module:attribute": `mirrorfs search`
    answered by a watcher must not pay for importing Whoosh or the crypto and
    merge layers, so a command's module is imported only when it runs.
    """

    def __init__(self, *args: Any, registry: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.registry = registry or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.registry))

    def get_command(self, ctx: click.Context, name: str):
        command = super().get_command(ctx, name)
        if command is None and name in self.registry:
            module, _, attr = self.registry[name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, name)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            # Errors, too, come as JSON for a script that asked for JSON.
            ctx.meta[JSON_ERRORS] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MirrorfsError as exc:
            if ctx.meta.get(JSON_ERRORS):
                _json_error(str(exc), type(exc).__name__, 1)
            raise click.ClickException(str(exc)) from None
        except click.UsageError as exc:
            if ctx.meta.get(JSON_ERRORS):
                _json_error(exc.format_message(), "UsageError", exc.exit_code)
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None


JSON_ERRORS = "mirrorfs.json_errors"


def _json_error(message: str, code: str, status: int) -> None:
    """`{"error": ..., "code": ...}` on stdout (where the script reads the JSON), then exit."""
    click.echo(json.dumps({"error": message, "code": code}, ensure_ascii=False))
    raise SystemExit(status)


class State:
    """What the global options chose; the vault is opened on first use."""

    def __init__(self, vault_path: str | None, instance: str | None):
        self.vault_path = vault_path
        self.instance = instance
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.open(self.vault_path, instance=self.instance, announce=True)
        return self._vault


def pass_vault(f: Callable) -> Callable:
    """Decorator: call the command with the opened Vault as first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, ctx.find_object(State).vault, *args, **kwargs)

    return functools.update_wrapper(wrapper, f)


def output(data: Any, as_json: bool, text: Callable[[Any], str] | str | None = None) -> None:
    """Print *data* as JSON for scripts, or as text for people."""
    if as_json:
        click.echo(render.json_text(data))
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


def passphrase_file_option(function):
    """``--passphrase-file PATH`` (there is deliberately no ``--passphrase``: argv is visible in ``ps``)."""
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Read the vault passphrase from this file (else MIRRORFS_PASSPHRASE, "
        "the OS keyring, or a hidden prompt).",
    )(function)


def unlock_vault(vault: Vault, passphrase_file: Path | None = None, *, create: bool = True) -> None:
    """Unlock *vault* from the usual passphrase sources (see mirrorfs.passphrase); create=False for reads."""
    passphrase.unlock_vault(vault, passphrase_file, create=create)


def read_text_arg(text: str) -> str:
    """TEXT arguments: `-` reads standard input."""
    return sys.stdin.read() if text == "-" else text
