from mirrorfs.cli import cli

cli(prog_name="mirrorfs")
