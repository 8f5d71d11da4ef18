"""What a new user hit, through the CLI as they typed it: each case ends in one clear line
and changes no byte of the vault (issue: "What a new user hits")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import snapshot_tree

from mirrorfs.cli import cli
from mirrorfs.vault import Vault


@pytest.fixture
def run(vault):
    runner = CliRunner()

    def invoke(*args, instance="laptop", input=None):
        prefix = ["--vault", str(vault.root)] + (["--instance", instance] if instance else [])
        return runner.invoke(cli, [*prefix, *args], input=input)

    invoke.vault = vault
    return invoke


def test_init_takes_the_instance_as_the_tour_says(tmp_path):
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "Mira"), "--name", "Mira", "--instance", "laptop"])
    assert (r.exit_code, r.output) == (0, f"Vault Mira ready at {tmp_path / 'Mira'} (instance laptop)\n")
    assert (tmp_path / "Mira" / "instances" / "laptop.md").is_file()


def test_a_read_never_gives_a_vault_its_first_passphrase(run, tmp_path):
    typo = tmp_path / "typo.pass"
    typo.write_text("tpyo\n")
    typo.chmod(0o600)
    before = snapshot_tree(run.vault.root)
    for args in (["reveal", "SOUL.md", "--passphrase-file", str(typo)],
                 ["search", "anything", "--unlock", "--passphrase-file", str(typo)],
                 ["reveal", "/etc/hostname", "--passphrase-file", str(typo)]):
        r = run(*args)
        assert r.exit_code == 1 and r.output.count("\n") == 1, (args, r.output)
    assert snapshot_tree(run.vault.root) == before
    assert "encryption_salt" not in (run.vault.root / ".mirrorfs" / "config.yaml").read_text()


def test_a_link_to_a_file_outside_the_vault_is_never_read(run):
    run.vault.remember("Sam likes tea", title="Tea")
    (run.vault.root / "memory" / "x.md").symlink_to("/etc/passwd")
    before = snapshot_tree(run.vault.root)
    found = run("search", "root", "--json")
    assert found.exit_code == 0 and json.loads(found.output) == []
    listed = run("memory", "list")
    assert listed.exit_code == 0 and listed.output.splitlines() == ["memory/tea.md  [fact/long_term] Tea"]
    doctor = run("doctor")
    assert doctor.output.count("link: memory/x.md:") == 1
    assert "root:" not in listed.output + found.output + doctor.output
    assert snapshot_tree(run.vault.root) == before


@pytest.mark.parametrize("args, error", [
    (["session", "add", "SOUL.md", "hi", "--role", "user"],
     "Error: SOUL.md is not a session: session commands act on the files in sessions/ "
     "(see `mirrorfs session list`); nothing was changed\n"),
    (["session", "close", ".mirrorfs/config.yaml"],
     "Error: .mirrorfs/config.yaml is not a session: session commands act on the files in sessions/ "
     "(see `mirrorfs session list`); nothing was changed\n"),
    (["meta", "set", ".obsidian/workspace.json", "k", "v"],
     "Error: .obsidian/workspace.json belongs to mirrorfs or another tool, not to your notes; "
     "nothing was changed\n"),
    (["meta", "set", "Untitled.canvas", "k", "v"],
     "Error: Untitled.canvas is not a Markdown note (.md): mirrorfs reads and edits notes only; "
     "nothing was changed\n"),
    (["meta", "set", "hugo.md", "k", "v"],
     "Error: hugo.md starts with TOML front matter (+++): mirrorfs edits YAML front matter only; "
     "nothing was written\n"),
])
def test_commands_act_only_on_files_of_their_own_type(run, args, error):
    root = run.vault.root
    (root / ".obsidian").mkdir()
    (root / ".obsidian" / "workspace.json").write_text('{"main": {}}\n')
    (root / "Untitled.canvas").write_text('{"nodes": []}\n')
    (root / "hugo.md").write_text('+++\ntitle = "Hugo"\n+++\n\nBody.\n')
    before = snapshot_tree(root)
    r = run(*args)
    assert (r.exit_code, r.output) == (1, error)
    assert snapshot_tree(root) == before


def test_reads_never_write_and_reserved_names_are_refused(run):
    before = snapshot_tree(run.vault.root)
    assert run("session", "list", instance="phone").exit_code == 0
    assert run("search", "tea", instance="phone").exit_code == 0
    assert snapshot_tree(run.vault.root) == before  # no instances/phone.md from a listing
    r = run("session", "list", instance="human")
    assert (r.exit_code, r.output) == (1, "Error: 'human' cannot be an instance name: mirrorfs uses it for a "
                                          "person; choose another, e.g. laptop or phone\n")
    assert run("remember", "Written as phone", instance="phone").exit_code == 0
    assert (run.vault.root / "instances" / "phone.md").is_file()  # the first write announces it


def test_two_copies_of_one_vault_keep_separate_state(vault, tmp_path):
    copy = tmp_path / "backup"
    shutil.copytree(vault.root, copy)
    original, backup = Vault.open(vault.root), Vault.open(copy)
    assert original.id == backup.id and original.state_dir != backup.state_dir
    backup.remember("Only in the backup", title="Backup only")
    assert [h.path for h in backup.search("backup")] == ["memory/backup-only.md"]
    assert [h.path for h in original.search("backup")] == []


def test_a_moved_vault_keeps_its_state(vault, tmp_path):
    vault.remember("Sam likes tea", title="Tea")
    state = vault.state_dir
    moved = tmp_path / "moved"
    os.rename(vault.root, moved)
    assert Vault.open(moved).state_dir.name == state.name.rsplit("-", 1)[0] + "-" + \
        Vault.open(moved).state_dir.name.rsplit("-", 1)[1]
    assert (Vault.open(moved).state_dir / "locks").is_dir()  # the old folder's state came along
    assert not state.exists()


@pytest.mark.parametrize("args, code, error", [
    (["memory", "list", "--limit", "-5"], 2, "Invalid value for '--limit': -5 is not in the range x>=1."),
    (["bridge", "write", "hello", "--to", "tablet"], 1,
     "Error: there is no instance 'tablet' in this vault (instances: laptop); address the note to one of them, "
     "to human or to all; nothing was written"),
])
def test_loose_input_gets_one_line(run, args, code, error):
    before = snapshot_tree(run.vault.root)
    r = run(*args)
    assert r.exit_code == code and r.output.strip().splitlines()[-1].endswith(error), r.output
    assert snapshot_tree(run.vault.root) == before


def test_since_takes_the_same_forms_everywhere(run):
    for args in (["reflections", "--since", "7d"], ["session", "list", "--since", "7d"],
                 ["reflections", "--since", "2026-11-01"], ["search", "tea created:>7d"]):
        assert run(*args).exit_code == 0, args


def test_a_vault_inside_a_vault_is_refused(run, vault):
    r = CliRunner().invoke(cli, ["init", str(vault.root / "memory" / "sub")])
    assert r.exit_code == 1 and r.output == (
        f"Error: {vault.root / 'memory' / 'sub'} is inside the vault {vault.root}: a vault inside a vault is "
        "not supported; choose a folder outside it\n")
    assert not (vault.root / "memory" / "sub").exists()


def test_help_works_outside_a_vault(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("MIRRORFS_VAULT", None)
    for args in (["bridge", "write", "--help"], ["--help"], ["session", "add", "--help"]):
        done = subprocess.run([sys.executable, "-m", "mirrorfs", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Usage:" in done.stdout, (args, done.stderr)


def test_errors_come_as_json_when_json_was_asked_for(run):
    r = run("memory", "show", "nothing-like-this", "--json")
    assert r.exit_code == 1
    assert json.loads(r.output) == {
        "error": "no memory note 'nothing-like-this' (give its path, file name, id or title)",
        "code": "NotFoundError"}


def test_a_world_readable_passphrase_file_warns_in_one_line(vault, tmp_path):
    pw = tmp_path / "pass"
    pw.write_text("correct horse\n")
    pw.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "remember",
                           "Locker code 12", "--secret", "--passphrase-file", str(pw)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"warning: the passphrase file {pw} is readable by other users (chmod 600 it)\n"


def test_watch_json_prints_one_object_per_reflection(vault, state_dir):
    import queue
    import signal
    import threading

    from conftest import close_pipes

    env = {**os.environ, "MIRRORFS_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mirrorfs", "--vault", str(vault.root), "--instance", "laptop",
                             "watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out: queue.Queue = queue.Queue()
    err: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=lambda: [out.put(line) for line in proc.stdout], daemon=True),
               threading.Thread(target=lambda: [err.put(line) for line in proc.stderr], daemon=True)]
    for t in readers:
        t.start()
    try:
        while not err.get(timeout=30).startswith("watching "):
            pass
        Vault.open(vault.root, instance="phone").remember("From the phone", title="Phone note")
        while True:
            event = json.loads(out.get(timeout=30))
            if event.get("path") == "memory/phone-note.md":
                break
        assert event["instance"] == "phone" and event["line"] == 'phone added memory "Phone note" (memory/phone-note.md)'
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        close_pipes(proc, *readers)
