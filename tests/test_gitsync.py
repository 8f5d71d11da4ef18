"""A vault synced with real git: `mirrorfs git setup`, the merge driver, and markers from a pull without it.

Every clone is a device with its own state folder; git, the merge driver and
`mirrorfs conflicts list` run as real processes. Fails (never skips) when git
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorfs import conflict_records, gitdriver, gitsync, note
from mirrorfs.errors import SyncEngineError
from mirrorfs.vault import Vault

REPO = Path(__file__).resolve().parent.parent


class Clone:
    """One git clone of the vault, as one device sees it."""

    def __init__(self, root: Path, state: Path, instance: str, home: Path):
        self.root, self.state, self.instance = root, state, instance
        self.env = {
            **os.environ, "MIRRORFS_STATE_DIR": str(state), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": instance, "GIT_AUTHOR_EMAIL": f"{instance}@example.org",
            "GIT_COMMITTER_NAME": instance, "GIT_COMMITTER_EMAIL": f"{instance}@example.org",
            "PYTHONPATH": str(REPO),
        }

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        assert not check or done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def mirrorfs(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(self.root), "--instance",
                               self.instance, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        assert not check or done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def vault(self, monkeypatch) -> Vault:
        monkeypatch.setenv("MIRRORFS_STATE_DIR", str(self.state))
        return Vault.open(self.root, instance=self.instance)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def pull(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.git("pull", "-q", "--no-rebase", "--no-edit", "origin", "main", check=check)


@pytest.fixture
def clones(tmp_path, monkeypatch):
    """A bare remote and two set-up clones of one vault (laptop made it, phone cloned it)."""
    assert shutil.which("git"), "git is not installed: the git tests need it (apt-get install git)"
    home = tmp_path / "home"
    home.mkdir()
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    laptop = Clone(tmp_path / "laptop", tmp_path / "state-laptop", "laptop", home)
    subprocess.run(["git", "clone", "-q", str(remote), str(laptop.root)], check=True, env=laptop.env,
                   capture_output=True)
    laptop.git("checkout", "-q", "-b", "main")
    laptop.mirrorfs("init", str(laptop.root), "--name", "Mira")
    laptop.mirrorfs("git", "setup")
    laptop.commit("a vault")
    laptop.git("push", "-q", "origin", "main")
    phone = Clone(tmp_path / "phone", tmp_path / "state-phone", "phone", home)
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(phone.root)], check=True, env=phone.env)
    phone.mirrorfs("git", "setup")
    return laptop, phone, remote


def test_setup_writes_its_blocks_only_and_is_idempotent(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    clone = Clone(tmp_path / "v", tmp_path / "state", "laptop", home)
    clone.root.mkdir()
    clone.git("init", "-q", "-b", "main")
    (clone.root / ".gitattributes").write_bytes(b"*.png binary\r\n")
    (clone.root / ".gitignore").write_bytes(b"# mine\r\nbuild/\r\n")
    vault = Vault.init(clone.root, name="Mira", instance="laptop")
    report = gitsync.setup(vault, python="/opt/py/bin/python3")
    assert report.changed == [".gitattributes", ".git/config merge.mirrorfs.name", ".git/config merge.mirrorfs.driver",
                              ".git/config merge.mirrorfs.recursive", ".gitignore"]
    assert (clone.root / ".gitattributes").read_bytes() == (
        b"*.png binary\r\n\r\n"
        b"# BEGIN mirrorfs git-setup (written by `mirrorfs git setup`; edit outside this block)\r\n"
        b"*.md merge=mirrorfs\r\n# END mirrorfs git-setup\r\n")
    ignored = (clone.root / ".gitignore").read_bytes()
    assert ignored.startswith(b"# mine\r\nbuild/\r\n\r\n# BEGIN mirrorfs git-setup")
    assert b".mirrorfs-*.tmp\r\n" in ignored and b"*.swp\r\n" in ignored and b".mirrorfs/" not in ignored
    assert clone.git("config", "--get", "merge.mirrorfs.driver").stdout == \
        "/opt/py/bin/python3 -m mirrorfs.gitdriver %O %A %B %P\n"
    assert gitsync.setup(vault, python="/opt/py/bin/python3").changed == []
    assert gitsync.is_set_up(vault)
    # git itself reads the attribute for notes only.
    assert clone.git("check-attr", "merge", "memory/x.md", "a.png").stdout == \
        "memory/x.md: merge: mirrorfs\na.png: merge: unset\n"  # the person's `binary`


def test_setup_outside_a_clone_says_so(vault):
    with pytest.raises(SyncEngineError, match="is not inside a git clone"):
        gitsync.setup(vault)


def test_two_clones_merge_sessions_and_keep_a_clash_readable(clones, monkeypatch):
    laptop, phone, _ = clones
    v = laptop.vault(monkeypatch)
    session = v.sessions.create("Shared chat")
    session.add_message("user", "hello before")
    v.remember("Reading list:\n- Dune\n- Solaris", title="Reading list")
    v.remember("Favourite colour: green", title="Colour")
    laptop.commit("base")
    laptop.git("push", "-q", "origin", "main")
    phone.pull()

    v = laptop.vault(monkeypatch)
    v.sessions.load(session.id).add_message("user", "laptop says")
    v.memory.update("memory/colour.md", text="Favourite colour: blue (laptop)")
    v.memory.update("memory/reading-list.md", text="Reading list:\n- Dune\n- Solaris\n- Neuromancer")
    laptop.commit("laptop")
    laptop.git("push", "-q", "origin", "main")
    v = phone.vault(monkeypatch)
    v.sessions.load(session.id).add_message("user", "phone says")
    v.memory.update("memory/colour.md", text="Favourite colour: red (phone)")
    v.memory.update("memory/reading-list.md", text="Reading list:\n- Dune (reread)\n- Solaris")
    phone.commit("phone")
    pulled = phone.pull()
    assert "CONFLICT" not in pulled.stdout + pulled.stderr
    assert phone.git("diff", "--name-only", "--diff-filter=U").stdout == ""  # git sees no conflict

    # The session: the union of both clones' messages, no markers.
    text = (phone.root / session.relpath).read_text()
    assert "<<<<<<<" not in text and ">>>>>>>" not in text
    got = [m.content for m in phone.vault(monkeypatch).sessions.load(session.id).get_messages()]
    assert got[0] == "hello before" and sorted(got[1:]) == ["laptop says", "phone says"]
    # A clean three-way merge of the memory.
    body = note.parse((phone.root / "memory/reading-list.md").read_bytes()).body
    assert "- Dune (reread)" in body and "- Neuromancer" in body and "<<<<<<<" not in body
    # The same line changed on both: ours in the note, theirs beside it, both readable.
    colour = (phone.root / "memory/colour.md").read_text()
    assert "Favourite colour: red (phone)" in colour and "<<<<<<<" not in colour
    listed = json.loads(phone.mirrorfs("conflicts", "list", "--json").stdout)
    assert [(c["original"], c["tool"], c["status"]) for c in listed] == [("memory/colour.md", "git", "kept_both")]
    copy = listed[0]["copy"]
    assert (phone.root / copy).read_text().count("Favourite colour: blue (laptop)") == 1
    assert "<<<<<<<" not in (phone.root / copy).read_text()
    shown = phone.mirrorfs("conflicts", "show", "memory/colour.md").stdout
    assert "-Favourite colour: red (phone)" in shown and "+Favourite colour: blue (laptop)" in shown

    # Committed and pulled, the conflict is listed on the other clone too...
    phone.commit("phone merged")
    phone.git("push", "-q", "origin", "main")
    laptop.pull()
    listed = json.loads(laptop.mirrorfs("conflicts", "list", "--json").stdout)
    assert [(c["copy"], c["detected_by"]) for c in listed] == [(copy, "phone")]
    # ...settled there, it is closed everywhere.
    laptop.mirrorfs("conflicts", "resolve", "memory/colour.md", "--keep", "both")
    laptop.commit("settled")
    laptop.git("push", "-q", "origin", "main")
    phone.pull()
    assert json.loads(phone.mirrorfs("conflicts", "list", "--json").stdout) == []
    both = (phone.root / "memory/colour.md").read_text()
    assert "Favourite colour: red (phone)" in both and "Favourite colour: blue (laptop)" in both
    # Nothing per-device ever landed in the vault.
    assert sorted(p.name for p in (phone.root / ".mirrorfs").iterdir()) == ["config.yaml"]
    assert phone.git("status", "--porcelain").stdout == ""


def test_a_pull_without_the_driver_leaves_markers_mirrorfs_lists_and_settles(clones, tmp_path, monkeypatch):
    laptop, phone, remote = clones
    desk = Clone(tmp_path / "desk", tmp_path / "state-desk", "desk", Path(laptop.env["HOME"]))
    v = laptop.vault(monkeypatch)
    v.remember("Favourite colour: green", title="Colour")
    laptop.commit("base")
    laptop.git("push", "-q", "origin", "main")
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(desk.root)], check=True, env=desk.env)
    # This clone never ran `mirrorfs git setup`: git merges notes its own way.
    v = laptop.vault(monkeypatch)
    v.memory.update("memory/colour.md", text="Favourite colour: blue (laptop)")
    laptop.commit("laptop")
    laptop.git("push", "-q", "origin", "main")
    v = desk.vault(monkeypatch)
    v.memory.update("memory/colour.md", text="Favourite colour: red (desk)")
    desk.commit("desk")
    pulled = desk.pull(check=False)
    assert pulled.returncode != 0 and "CONFLICT" in pulled.stdout + pulled.stderr
    assert "<<<<<<<" in (desk.root / "memory/colour.md").read_text()

    listed = json.loads(desk.mirrorfs("conflicts", "list", "--json").stdout)
    assert [(c["copy"], c["original"], c["status"]) for c in listed] == [
        ("memory/colour.md", "memory/colour.md", "markers")]
    shown = desk.mirrorfs("conflicts", "show", "memory/colour.md").stdout
    assert "-Favourite colour: red (desk)" in shown and "+Favourite colour: blue (laptop)" in shown
    # Indexed once: both sides found, no marker line.
    found = json.loads(desk.mirrorfs("search", "Favourite", "--json").stdout)
    assert [h["path"] for h in found if h["path"] == "memory/colour.md"] == ["memory/colour.md"]
    for word in ("desk", "laptop"):  # each side's words find the note
        assert "memory/colour.md" in [h["path"] for h in json.loads(desk.mirrorfs("search", word, "--json").stdout)]
    desk.mirrorfs("conflicts", "resolve", "memory/colour.md", "--keep", "theirs")
    text = (desk.root / "memory/colour.md").read_text()
    assert "Favourite colour: blue (laptop)" in text and "<<<<<<<" not in text
    assert json.loads(desk.mirrorfs("conflicts", "list", "--json").stdout) == []
    desk.commit("settled")  # git accepts the settled note as the merge's result
    assert desk.git("status", "--porcelain").stdout == ""


def _colour(updated: str, who: str, colour: str) -> str:
    return (f"---\nid: 3f9a1c2b7d4e\ntype: memory\ntitle: Colour\nupdated: {updated}\nupdated_by: {who}\n---\n\n"
            f"Favourite colour: {colour}\n")


def diverge(first: Clone, second: Clone, rel: str, first_text: str, second_text: str) -> None:
    """Both clones change *rel* and commit; *second* pushes, then *first* pulls (and merges)."""
    for clone, text in ((first, first_text), (second, second_text)):
        (clone.root / rel).write_text(text)
        clone.commit(f"{clone.instance} edits {rel}")
    second.git("push", "-q", "origin", "main")
    first.pull()


def test_the_driver_follows_the_vaults_strategy(clones, monkeypatch):
    laptop, phone, _ = clones
    rel = "memory/colour.md"
    (laptop.root / rel).write_text(_colour("2026-11-21T09:00:00+00:00", "laptop", "green"))
    laptop.mirrorfs("conflicts", "strategy", "latest")
    laptop.commit("base")
    laptop.git("push", "-q", "origin", "main")
    phone.pull()
    earlier = _colour("2026-11-21T10:00:00+00:00", "phone", "red (phone, earlier)")
    later = _colour("2026-11-21T11:00:00+00:00", "laptop", "blue (laptop, later)")
    diverge(phone, laptop, rel, earlier, later)
    assert (phone.root / rel).read_text() == later
    trashed = [p for p in (phone.root / ".mirrorfs" / "trash").rglob("*.md")]
    assert [p.read_text() for p in trashed] == [earlier]
    assert json.loads(phone.mirrorfs("conflicts", "list", "--json").stdout) == []

    phone.mirrorfs("conflicts", "strategy", "manual")
    phone.commit("manual")
    phone.git("push", "-q", "origin", "main")
    laptop.pull()
    diverge(laptop, phone, rel, _colour("2026-11-21T12:00:00+00:00", "laptop", "teal"),
            _colour("2026-11-21T13:00:00+00:00", "phone", "plum"))
    assert "teal" in (laptop.root / rel).read_text()
    [item] = json.loads(laptop.mirrorfs("conflicts", "list", "--json").stdout)
    assert item["conflict"] == "manual" and "plum" in (laptop.root / item["copy"]).read_text()


def test_instance_cards_merge_to_each_instances_latest(clones, monkeypatch):
    laptop, phone, _ = clones
    card = "instances/laptop.md"
    laptop.vault(monkeypatch).instances.intend("Book the ryokan")
    laptop.commit("intent")
    laptop.git("push", "-q", "origin", "main")
    phone.pull()
    # The same instance wrote on both clones (one person, one name on two machines).
    laptop.vault(monkeypatch).instances.touch(status="planning", force=True)
    laptop.commit("status")
    laptop.git("push", "-q", "origin", "main")
    v = phone.vault(monkeypatch)
    monkeypatch.setenv("MIRRORFS_STATE_DIR", str(phone.state))
    Vault.open(phone.root, instance="laptop").instances.intend("Pack the bags")
    phone.commit("another intent")
    phone.pull()
    meta = note.parse((phone.root / card).read_bytes()).meta
    assert [i.split(" (since")[0] for i in meta["intentions"]] == ["Book the ryokan", "Pack the bags"]
    assert phone.git("diff", "--name-only", "--diff-filter=U").stdout == ""
    assert v.instances.list()  # the card still reads


def test_the_driver_alone_never_loses_a_side(tmp_path):
    # Outside any vault it is git's own merge; a note it cannot read keeps both sides (markers).
    base, ours, theirs = (tmp_path / n for n in ("o", "a", "b"))
    base.write_bytes(b"x\n")
    ours.write_bytes(b"ours\n")
    theirs.write_bytes(b"theirs\n")
    assert gitdriver.run(str(base), str(ours), str(theirs), "note.md", cwd=tmp_path) == 1
    assert b"ours" in ours.read_bytes() and b"theirs" in ours.read_bytes()
    assert gitdriver.main(["only", "three", "args"]) == 2
    # The pure decision: a clash keeps ours and hands theirs over as a copy.
    out = gitdriver.decide(b"a\n", b"b\n", b"c\n", "note.md")
    assert (out.data, out.copy, out.status) == (b"b\n", b"c\n", "kept_both")
    assert conflict_records.PENDING == "pending"
