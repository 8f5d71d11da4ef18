"""`mirrorfs sync-filter`: which sessions the sync engine carries (mirrorfs.syncfilter)."""

from __future__ import annotations

import click

from mirrorfs.cli_base import json_option, output, pass_vault


def _many(name: str, what: str):
    return click.option(f"--{name}", "values_" + name.replace("-", "_"), multiple=True, metavar="NAME", help=what)


@click.command("sync-filter")
@click.option("--engine", type=click.Choice(["syncthing", "git"]),
              help="Which ignore file to write (default: .stignore when the folder has .stfolder, "
              ".gitignore in a git clone).")
@_many("include-tag", "Sync only sessions with this tag (or another included one).")
@_many("exclude-tag", "Do not sync sessions with this tag.")
@_many("include-category", "Sync only sessions of this category (or another included one).")
@_many("exclude-category", "Do not sync sessions of this category.")
@_many("include-instance", "Sync only the sessions of this instance (or another included one).")
@_many("exclude-instance", "Do not sync the sessions of this instance (its whole folder).")
@click.option("--clear", is_flag=True, help="Remove the filter: every session syncs again.")
@click.option("--dry-run", is_flag=True, help="Show the block without writing it.")
@json_option
@pass_vault
def sync_filter(vault, engine, values_include_tag, values_exclude_tag, values_include_category,
                values_exclude_category, values_include_instance, values_exclude_instance,
                clear: bool, dry_run: bool, as_json: bool) -> None:
    """Write the sync engine's ignore file from rules on session tags, categories and instances.

    The patterns go into a block of their own in .stignore (Syncthing) or
    .gitignore (git); lines you wrote stay as they are. Without rules, the
    rules already in the block are applied again (new sessions, new tags).

    \b
    Examples:
      mirrorfs sync-filter --exclude-tag private
      mirrorfs sync-filter --include-category work --exclude-instance phone
      mirrorfs sync-filter            # bring the list up to date
      mirrorfs sync-filter --clear
    """
    from mirrorfs.syncfilter import Rules, apply

    rules = Rules(tuple(values_include_tag), tuple(values_exclude_tag), tuple(values_include_category),
                  tuple(values_exclude_category), tuple(values_include_instance), tuple(values_exclude_instance))
    report = apply(vault, rules, engine=engine, dry_run=dry_run, clear=clear)

    def text(_) -> str:
        verb = "would leave out" if dry_run else "leaves out"
        if not report.lines:
            return f"{report.file}: no sync filter (every session syncs)"
        lines = [f"{report.file} {verb} {len(report.excluded)} session file(s)"
                 + (f" and the sessions of {', '.join(report.folders)}" if report.folders else "")]
        lines += [f"  {p}" for p in report.excluded]
        if not dry_run and not report.changed:
            lines.append("  (already so: nothing written)")
        if report.tracked:
            lines.append(f"note: git already tracks {len(report.tracked)} of them; ignoring does not untrack: "
                         "git rm --cached " + " ".join(report.tracked))
        return "\n".join(lines)

    output(report.to_dict(), as_json, text)
