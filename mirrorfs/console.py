"""The `mirrorfs` console entry point: a lean path first, the full CLI otherwise.

A one-shot `mirrorfs search` through a running watcher spent four fifths of
its time importing click, YAML, filelock and the library before asking the
watcher a question that takes it a few milliseconds. For the commands a
watcher can answer (search in every mode, recall and similar by keyword,
status, reflections without --since or --mark-read) this module parses the
command line itself, finds the vault and the watcher's socket with the
standard library only (mirrorfs.locate), sends the request (watch_client) and
prints through the formatter the full CLI uses (mirrorfs.render).

Whenever it cannot serve exactly what the full CLI would print - no watcher,
an option or a value it does not know, embeddings that make the default recall
or similar hybrid, any error - it hands the untouched command line to the full CLI,
which then answers (or explains the error) as always. The lean path never
reads standard input or prints anything before it knows it can serve.

`MIRRORFS_LEAN_REPORT=FILE` writes what happened (served or why not, and the
modules loaded) to FILE as JSON: how the tests check the path is taken and lean.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from mirrorfs import locate, render, watch_client
from mirrorfs.layout import OWNED_TYPES, SEARCH_MODES

ENV_REPORT = "MIRRORFS_LEAN_REPORT"
# As cli_search: the --type values, and the longest query the library takes.
TYPES = (*OWNED_TYPES, "note", "message")
MAX_QUERY_CHARS = 2000
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class Unserved(Exception):
    """The lean path cannot answer this command line exactly; the full CLI does."""


def main(argv: list[str] | None = None) -> None:
    """Run `mirrorfs` with *argv* (default: the process's arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        status = serve(args)
    except Unserved as why:
        _report(False, str(why))
    else:
        _report(True, "")
        sys.exit(status)
    from mirrorfs.cli import cli  # the full CLI, with everything it imports

    cli.main(args=args, prog_name="mirrorfs")


def _report(served: bool, why: str) -> None:
    path = os.environ.get(ENV_REPORT)
    if path:
        data = {"served": served, "why": why, "modules": sorted(sys.modules)}
        Path(path).write_text(json.dumps(data), encoding="utf-8")


# -- the command line ---------------------------------------------------------------

# Per command: option -> (destination, kind); kind "flag", "one" (a value, the last
# one counts, as click does), or "many" (repeatable).
_OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "search": {"--type": ("types", "many"), "--tag": ("tags", "many"), "--instance": ("instances", "many"),
               "--no-sessions": ("no_sessions", "flag"), "--any": ("any_word", "flag"),
               "--limit": ("limit", "one"), "--mode": ("mode", "one"), "--min-score": ("min_score", "one"),
               "--paths": ("paths", "flag"), "--json": ("as_json", "flag")},
    "recall": {"--limit": ("limit", "one"), "--half-life": ("half_life", "one"), "--json": ("as_json", "flag")},
    "similar": {"--limit": ("limit", "one"), "--threshold": ("threshold", "one"),
                "--method": ("method", "one"), "--sessions": ("sessions", "flag"),
                "--json": ("as_json", "flag")},
    "status": {"--json": ("as_json", "flag")},
    # Read-only only: --since and --mark-read go to the full CLI.
    "reflections": {"--json": ("as_json", "flag")},
}
_ARGUMENTS = {"search": 1, "recall": 1, "similar": 1, "status": 0, "reflections": 0}
_GLOBAL = {"--vault": "vault", "--instance": "instance"}


def parse(args: list[str]) -> tuple[dict[str, str], str, dict[str, Any], list[str]]:
    """(global options, command, its options, its arguments) as click would read them, or Unserved."""
    glob: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, value, i = _option(args, i)
        if name not in _GLOBAL:
            raise Unserved(f"global option {name}")
        glob[_GLOBAL[name]] = value
    if i >= len(args) or args[i] not in _OPTIONS:
        raise Unserved("not a command the lean path serves")
    command, known = args[i], _OPTIONS[args[i]]
    opts: dict[str, Any] = {dest: [] for dest, kind in known.values() if kind == "many"}
    positional: list[str] = []
    i += 1
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name = arg.split("=", 1)[0]
            if name not in known:
                raise Unserved(f"option {name}")
            dest, kind = known[name]
            if kind == "flag":
                if "=" in arg:
                    raise Unserved(f"{name} with a value")
                opts[dest] = True
                i += 1
                continue
            _, value, i = _option(args, i)
            if kind == "many":
                opts[dest].append(value)
            else:
                opts[dest] = value
            continue
        positional.append(arg)
        i += 1
    if len(positional) != _ARGUMENTS[command]:
        raise Unserved("arguments")
    return glob, command, opts, positional


def _option(args: list[str], i: int) -> tuple[str, str, int]:
    """(name, value, next index) of the option taking a value at args[i]."""
    name, eq, value = args[i].partition("=")
    if eq:
        return name, value, i + 1
    if i + 1 >= len(args) or args[i + 1].startswith("-"):
        raise Unserved(f"option {name} without a plain value")
    return name, args[i + 1], i + 2


def _number(value: str | None, default: float, least: float, most: float | None = None,
            integer: bool = False) -> Any:
    """A plainly written number in range, as click's IntRange/FloatRange reads it; else Unserved."""
    if value is None:
        return default
    if not _NUMBER.match(value) or integer and "." in value:
        raise Unserved(f"number {value!r}")
    number = int(value) if integer else float(value)
    if number < least or most is not None and number > most:
        raise Unserved(f"number {value!r} out of range")
    return number


# -- the vault and its watcher ----------------------------------------------------------


def _state_dir(glob: dict[str, str]) -> tuple[Path, Path, str]:
    """(vault folder, state folder, instance) of the vault the command means (as Vault.open finds them),
    or Unserved."""
    try:
        root = locate.vault_root(glob.get("vault"))
    except Exception as exc:  # the full CLI says what is wrong
        raise Unserved(f"vault: {exc}") from None
    state = locate.existing_state_dir(root, locate.config_vault_id(root), locate.guess_state_base())
    if state is None:
        raise Unserved("no state folder known without YAML")
    instance = _instance(glob.get("instance") or os.environ.get(locate.ENV_INSTANCE), state)
    return root, state, instance


_DEVICE_INSTANCE = re.compile(rb"^instance:(.*)$", re.M)


def _instance(explicit: str | None, state: Path) -> str:
    """The instance Vault.open would choose; Unserved when it would refuse it."""
    if explicit:
        name = explicit
    else:
        try:
            found = _DEVICE_INSTANCE.findall((state / locate.DEVICE_FILE).read_bytes())
        except FileNotFoundError:
            found = []
        except OSError:
            raise Unserved("device settings unreadable") from None
        if len(found) > 1:
            raise Unserved("device settings")
        name = found[0].decode("utf-8", "replace").strip() if found else locate.default_instance_name()
    try:
        return locate.check_instance_name(name)
    except Exception:
        raise Unserved("instance name") from None


def _has_vectors(state: Path) -> bool:
    return state.joinpath(*locate.VECTORS_FILE).exists()


def _keyword_only(state: Path) -> None:
    """Unserved when this device has embeddings: recall and similar are then hybrid, run in-process."""
    if _has_vectors(state):
        raise Unserved("embeddings: the default mode is hybrid")


def _ask(state: Path, op: str, args: dict) -> Any:
    try:
        reply = watch_client.request(state, op, args)
    except (OSError, ValueError) as exc:
        raise Unserved(f"watcher: {exc}") from None
    if not reply.get("ok"):
        raise Unserved(f"watcher error: {reply.get('error')}")
    return reply.get("result")


# -- the commands ------------------------------------------------------------------------


def _search(root: Path, state: Path, opts: dict, query: str) -> dict:
    mode = opts.get("mode")
    if mode is not None and mode not in SEARCH_MODES:
        raise Unserved("--mode value")
    min_score = _number(opts.get("min_score"), None, 0, 1)
    types = opts["types"]
    if any(t.lower() not in TYPES for t in types):
        raise Unserved("--type")
    if len(query) > MAX_QUERY_CHARS:
        raise Unserved("long query")
    limit = _number(opts.get("limit"), 20, 1, integer=True)
    chosen = dict(types=types or None, sessions=not opts.get("no_sessions"), limit=limit,
                  tags=opts["tags"] or None, instances=opts["instances"] or None,
                  any_word=bool(opts.get("any_word")))
    if mode not in (None, "keyword") or min_score is not None or mode is None and _has_vectors(state):
        # By meaning (or a threshold): the arguments mirrorfs.vault.Vault.search sends the watcher.
        return _ask(state, "semantic", dict(query=query, mode=mode, min_score=min_score, **chosen))
    # The arguments mirrorfs.search.search sends the watcher.
    return _ask(state, "search", dict(query=query, snippets=not opts.get("paths"), **chosen))


def _recall(root: Path, state: Path, opts: dict, query: str) -> dict:
    _keyword_only(state)
    if len(query) > MAX_QUERY_CHARS:
        raise Unserved("long query")
    return _ask(state, "recall", dict(
        query=query, limit=_number(opts.get("limit"), 10, 1, integer=True),
        half_life_days=_number(opts.get("half_life"), 30.0, 0.01), recency_weight=0.3, now=None))


def _similar(root: Path, state: Path, opts: dict, text: str) -> dict:
    if opts.get("method") not in (None, "keyword"):
        raise Unserved("--method")
    if opts.get("method") is None:
        _keyword_only(state)
    if text == "-":
        raise Unserved("standard input")  # read once, by whoever answers
    if "\n" not in text and len(text) < 1024 and Path(text).suffix == ".md":
        # A relative path is this process's (its working folder, then the vault's), never the watcher's.
        text = str(Path(text).resolve() if Path(text).is_file() else root / text)
    return _ask(state, "similar", dict(
        text_or_path=text, limit=_number(opts.get("limit"), 10, 1, integer=True),
        threshold=_number(opts.get("threshold"), 0.15, 0, 1), sessions=bool(opts.get("sessions"))))


_COMMANDS: dict[str, Callable[..., Any]] = {"search": _search, "recall": _recall, "similar": _similar}


def serve(args: list[str]) -> int:
    """Answer the command line through the running watcher; its exit status, or Unserved."""
    glob, command, opts, positional = parse(args)
    root, state, instance = _state_dir(glob)
    if command == "status":
        data = _ask(state, "status", {})
        _print(render.json_text(data) if opts.get("as_json") else render.status_text(data))
        return 0
    if command == "reflections":
        data = _ask(state, "reflections", {"instance": instance})
        items = data["items"]
        _print(render.json_text(items) if opts.get("as_json")
               else render.reflections_text(items, None, data["looked"], data["days"]))
        return 0
    reply = _COMMANDS[command](root, state, opts, *positional)
    for warning in reply.get("warnings") or ():
        sys.stderr.write(f"warning: {warning}\n")
    hits = reply.get("hits") or []
    if opts.get("as_json"):
        _print(render.json_text(hits))
    elif opts.get("paths"):
        _print(render.hits_paths(hits))
    else:
        _print(render.hits_text(hits, sys.stdout.isatty()))
    return 0


def _print(text: str) -> None:
    """As click.echo prints the full CLI's output: a line, nothing for an empty text."""
    if text:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
