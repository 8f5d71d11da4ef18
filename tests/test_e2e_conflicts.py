"""End to end, two real Syncthing daemons and a `mirrorfs watch` on each side: a conflict copy that
both watchers see is merged once; a conflict one device noticed is listed on the other; the `latest`
and `manual` strategies; a `.stignore` written by `mirrorfs sync-filter`.

One Syncthing pair and one pair of watchers serve the whole module (the suite's time matters); each
test works on notes of its own and leaves the strategy at `merge`. Fails (never skips) when
Syncthing is missing: the harness installs it with .ci/install-syncthing or fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from syncthing import SyncthingPair
from test_e2e_syncthing import Device, watching

from mirrorfs import conflicts, note, snapshots

SYNC_TIMEOUT = 30
SETTLE_TIMEOUT = 60
NAMES = ("laptop", "phone")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """The vault made on the laptop, synced to the phone, a watcher on each side, for the whole module."""
    base = tmp_path_factory.mktemp("conflicts-e2e")
    states = Path(tempfile.mkdtemp(prefix="mfs-cf-"))  # short: the watcher's socket lives there
    laptop = Device("laptop", base / "laptop", states / "laptop")
    phone = Device("phone", base / "phone", states / "phone")
    with laptop.active(init=True):
        pass
    with SyncthingPair(laptop.root, phone.root, names=NAMES, base_dir=base / "syncthing") as pair:
        pair.wait_connected()
        pair.wait_in_sync(SYNC_TIMEOUT)
        pair.laptop, pair.phone = laptop, phone
        pair.asleep = conflict_while_asleep(pair)
        with watching(states, laptop, phone):
            yield pair


def cli(device: Device, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mirrorfs", "--vault", str(device.root), "--instance",
                           device.name, *args], capture_output=True, text=True, env=device.env(),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def listed(device: Device) -> list[dict]:
    return json.loads(cli(device, "conflicts", "list", "--json").stdout)


def copies(root: Path) -> list[str]:
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*.md"))
    return sorted(r for r in rels if not r.startswith(".mirrorfs/") and conflicts.conflict_original(r))


def trash(root: Path) -> dict[str, bytes]:
    folder = root / ".mirrorfs" / "trash"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} \
        if folder.is_dir() else {}


def memory(updated: str, who: str, body: str, title: str) -> str:
    """A memory note with a chosen `updated` (which side is newer must not depend on the clock's second)."""
    note_id = hashlib.sha256(title.encode()).hexdigest()[:12]
    return (f"---\nid: {note_id}\ntype: memory\ntitle: {title}\nupdated: {updated}\n"
            f"updated_by: {who}\n---\n\n{body}\n")


def seen_by_both(mesh, rel: str, text: str) -> None:
    """Write *rel* on the laptop and wait until both watchers have seen it (their base for a merge)."""
    laptop, phone = mesh.laptop, mesh.phone
    (laptop.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (laptop.root / rel).write_text(text)
    phone.wait_line(lambda line: f"({rel})" in line, what=f"the phone's reflection of {rel}")
    # The laptop saw its own write before it sees a later one of the phone's.
    marker = rel.replace(".md", "-seen.md")
    (phone.root / marker).write_text("seen\n")
    laptop.wait_line(lambda line: f"({marker})" in line, what=f"the laptop's reflection of {marker}")


def make_conflict(mesh, rel: str, laptop_text: str, phone_text: str) -> None:
    """Both sides change *rel* while the link is paused; the phone's version wins, the laptop's becomes the copy."""
    laptop, phone = mesh.laptop, mesh.phone
    mesh.pause()
    (laptop.root / rel).write_text(laptop_text)
    (phone.root / rel).write_text(phone_text)
    newer = (laptop.root / rel).stat().st_mtime + 5
    os.utime(phone.root / rel, (newer, newer))  # Syncthing keeps the newer mtime: the phone's
    mesh.scan()
    mesh.resume()


def settle(mesh, done, what: str, timeout: float = SETTLE_TIMEOUT):
    def check():
        mesh.wait_in_sync(SYNC_TIMEOUT)
        return done()

    try:
        return mesh.wait_until(check, timeout, what, interval=0.5)
    except AssertionError:
        state = {d.name: {"copies": copies(d.root), "trash": sorted(trash(d.root))} for d in (mesh.laptop, mesh.phone)}
        print("state:", json.dumps(state, indent=1), "\nlaptop:", mesh.laptop.seen, "\nphone:", mesh.phone.seen)
        raise
    finally:
        mesh.laptop.drain(), mesh.phone.drain()


def set_strategy(mesh, value: str) -> None:
    cli(mesh.laptop, "conflicts", "strategy", value)
    config = ".mirrorfs/config.yaml"
    settle(mesh, lambda: (mesh.phone.root / config).read_bytes() == (mesh.laptop.root / config).read_bytes(),
           f"the strategy {value} on both sides")


def merge_lines(device: Device, rel: str) -> list[str]:
    return [line for line in device.seen if f"conflict copy of {rel}" in line and line.startswith(device.name)]


def test_a_copy_both_watchers_see_is_merged_once_with_one_trash_entry(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    rel = "memory/reading-list.md"
    base = memory("2026-11-21T09:00:00+00:00", "laptop", "Reading list:\n- Dune\n- Solaris", "Reading list")
    seen_by_both(mesh, rel, base)
    make_conflict(
        mesh, rel,
        base.replace("- Solaris", "- Solaris\n- Neuromancer").replace("09:00", "10:00"),
        base.replace("- Dune", "- Dune (reread)").replace("09:00", "11:00").replace("by: laptop", "by: phone"),
    )

    def entries(root: Path) -> list[str]:
        return [p for p in trash(root) if "/reading-list" in p]

    def merged():
        if copies(laptop.root) or copies(phone.root):
            return False
        body = _body(laptop.root / rel)
        return body == ["Reading list:", "- Dune (reread)", "- Solaris", "- Neuromancer"] and \
            (laptop.root / rel).read_bytes() == (phone.root / rel).read_bytes() and \
            trash(laptop.root) == trash(phone.root) and entries(laptop.root)

    settle(mesh, merged, f"{rel} merged on both sides")
    assert len(merge_lines(laptop, rel) + merge_lines(phone, rel)) == 1, (laptop.seen, phone.seen)
    # One trash entry in total, the same on both devices: the laptop's version, whose "- Dune" the merge replaced.
    [path] = entries(laptop.root)
    data = trash(laptop.root)[path]
    assert b"- Neuromancer" in data and b"- Dune\n" in data
    assert listed(laptop) == [] and listed(phone) == []


ASLEEP = "memory/packing.md"
ASLEEP_BASE = memory("2026-11-21T09:00:00+00:00", "laptop", "Packing:\n- socks\n- maps", "Packing")


def conflict_while_asleep(mesh) -> str:
    """Before any watcher runs: a conflict whose copy reaches both devices (both were asleep, say).

    Each device knows the base version as its watcher would have (its own last-seen store).
    Returns the copy's path.
    """
    laptop, phone = mesh.laptop, mesh.phone
    (laptop.root / ASLEEP).write_text(ASLEEP_BASE)
    mesh.wait_until(lambda: (mesh.wait_in_sync(SYNC_TIMEOUT), (phone.root / ASLEEP).exists())[1], SYNC_TIMEOUT,
                    "the base version on the phone")
    for d in (laptop, phone):
        with d.active() as v:
            snapshots.remember(v, ASLEEP, ASLEEP_BASE.encode())
    make_conflict(mesh, ASLEEP, ASLEEP_BASE.replace("- maps", "- maps\n- torch").replace("09:00", "10:00"),
                  ASLEEP_BASE.replace("- socks", "- wool socks").replace("09:00", "11:00")
                  .replace("by: laptop", "by: phone"))

    def copied():
        mesh.wait_in_sync(SYNC_TIMEOUT)
        return len(copies(laptop.root)) == 1 and copies(laptop.root) == copies(phone.root)

    mesh.wait_until(copied, SYNC_TIMEOUT, "the conflict copy on both sides", interval=0.3)
    return copies(laptop.root)[0]


def test_a_copy_already_on_both_devices_is_merged_by_one_watcher(mesh):
    """Both watchers start with the copy there: each sees it, exactly one merges."""
    laptop, phone = mesh.laptop, mesh.phone
    rel, copy = ASLEEP, mesh.asleep

    # Each watcher found the copy when it started; the one not chosen leaves it to the other
    # (and says so, unless the merged note reached it first).
    def merged_here(line: str) -> bool:
        return f" merged conflict copy of {rel}" in line

    merges = [line for d in (laptop, phone) for line in d.seen if merged_here(line)]
    if not merges:
        merges = [mesh.wait_until(lambda: [line for d in (laptop, phone) for line in d.drain() if merged_here(line)],
                                  40, f"a watcher to merge {copy}")[0]]

    def merged():
        return not copies(laptop.root) and not copies(phone.root) and \
            _body(phone.root / rel) == ["Packing:", "- wool socks", "- maps", "- torch"] and \
            (laptop.root / rel).read_bytes() == (phone.root / rel).read_bytes() and \
            trash(laptop.root) == trash(phone.root)

    settle(mesh, merged, f"{rel} merged once, on both sides")
    entries = [p for p in trash(laptop.root) if p.endswith(copy)]
    assert len(entries) == 1, trash(laptop.root)
    assert len(merge_lines(laptop, rel) + merge_lines(phone, rel)) == 1, (laptop.seen, phone.seen)
    chosen = merges[0].split()[0]
    other = phone if chosen == "laptop" else laptop
    assert all(f"is {chosen}'s to merge" in line for line in other.seen if copy in line), other.seen
    assert listed(laptop) == [] and listed(phone) == []


def _body(path: Path) -> list[str]:
    return [line for line in note.parse(path.read_bytes(), path.name).body.splitlines() if line.strip()]


def test_a_conflict_noticed_on_one_device_is_listed_and_settled_on_the_other(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    rel = "memory/colour.md"
    base = memory("2026-11-21T09:00:00+00:00", "laptop", "Favourite colour: green", "Colour")
    seen_by_both(mesh, rel, base)
    make_conflict(mesh, rel, base.replace("green", "blue (laptop)"), base.replace("green", "red (phone)"))
    state = {}

    def recorded():
        state.update(laptop=listed(laptop), phone=listed(phone))
        return all(len(v) == 1 and v[0]["status"] == "kept_both" for v in state.values())

    settle(mesh, recorded, "the open conflict recorded and listed on both sides")
    noticed = {d.name for d in (laptop, phone) if [line for line in d.seen if "kept for a person" in line and
                                                   "colour" in line and line.startswith(d.name)]}
    assert len(noticed) == 1, (laptop.seen, phone.seen)
    [who] = noticed
    other = phone if who == "laptop" else laptop
    [item] = state[other.name]
    assert (item["original"], item["detected_by"]) == (rel, who)  # the other device's notice, shown here
    assert item["reason"].startswith("both sides changed the same lines")
    # Settled on the device that did not notice it: closed on both.
    cli(other, "conflicts", "resolve", rel, "--keep", "both")
    settle(mesh, lambda: listed(laptop) == [] and listed(phone) == [] and not copies(laptop.root)
           and not copies(phone.root), "the conflict closed on both sides")
    text = (laptop.root / rel).read_text()
    assert "red (phone)" in text and "blue (laptop)" in text and "<<<<<<<" not in text


def test_strategy_latest_keeps_the_newer_side_and_trashes_the_other(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    rel = "memory/latest.md"
    base = memory("2026-11-21T09:00:00+00:00", "laptop", "Plan: walk", "Latest")
    seen_by_both(mesh, rel, base)
    before = set(trash(laptop.root))
    set_strategy(mesh, "latest")
    try:
        newer = base.replace("walk", "swim (laptop, newer)").replace("09:00", "12:00")
        older = base.replace("walk", "run (phone, older)").replace("09:00", "10:00").replace("by: laptop", "by: phone")
        make_conflict(mesh, rel, newer, older)  # the phone's file wins on mtime, the laptop's `updated` is later
        settle(mesh, lambda: not copies(laptop.root) and not copies(phone.root)
               and (laptop.root / rel).read_text() == newer and (phone.root / rel).read_text() == newer
               and len(set(trash(laptop.root)) - before) == 1 and trash(laptop.root) == trash(phone.root),
               "the newer side kept on both, the older in the trash")
        [added] = set(trash(laptop.root)) - before
        assert trash(laptop.root)[added].decode() == older
        kept = [line for d in (laptop, phone) for line in d.seen if f"kept the newer version of {rel}" in line]
        assert len(kept) == 1, (laptop.seen, phone.seen)
        assert listed(laptop) == [] and listed(phone) == []
    finally:
        set_strategy(mesh, "merge")


def test_strategy_manual_merges_nothing_and_lists_every_copy_on_both(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    rel = "memory/manual.md"
    base = memory("2026-11-21T09:00:00+00:00", "laptop", "Groceries:\n- bread", "Manual")
    seen_by_both(mesh, rel, base)
    set_strategy(mesh, "manual")
    try:
        mine = base.replace("- bread", "- bread\n- milk (phone)")
        make_conflict(mesh, rel, base.replace("- bread", "- bread\n- eggs (laptop)"), mine)  # would merge cleanly
        state = {}

        def waiting():
            state.update(laptop=listed(laptop), phone=listed(phone))
            return all([(c["original"], c["conflict"]) for c in v] == [(rel, "manual")] for v in state.values())

        settle(mesh, waiting, "the copy listed for a person on both sides")
        assert (phone.root / rel).read_text() == mine and (laptop.root / rel).read_text() == mine
        [copy] = copies(laptop.root)
        assert "- eggs (laptop)" in (laptop.root / copy).read_text()
        overview = json.loads(cli(phone, "bridge", "--json").stdout)
        assert [c["path"] for c in overview["conflicts"]] == [copy]
        cli(laptop, "conflicts", "resolve", copy, "--keep", "both")
        settle(mesh, lambda: listed(laptop) == [] and listed(phone) == [] and not copies(phone.root),
               "the manual conflict settled on both sides")
        assert "- eggs (laptop)" in (phone.root / rel).read_text()
    finally:
        set_strategy(mesh, "merge")


def test_a_stignore_from_rules_keeps_those_sessions_off_the_other_device(mesh):
    laptop, phone = mesh.laptop, mesh.phone
    mesh.pause()
    try:
        with laptop.active() as v:
            diary = v.sessions.create("Diary", tags=["private"])
            diary.add_message("user", "nobody else reads this")
            plans = v.sessions.create("Plans", tags=["work"])
            plans.add_message("user", "shared with every device")
        out = cli(laptop, "sync-filter", "--exclude-tag", "private", "--exclude-instance", "secret").stdout
        assert diary.relpath in out
        with laptop.active() as v:
            type(v).open(v.root, instance="secret").sessions.create("Hidden folder").add_message("user", "x")
        secret = sorted((laptop.root / "sessions" / "secret").glob("*.md"))
        assert len(secret) == 1
        mesh.scan()  # Syncthing reads the new .stignore before the link is back
    finally:
        mesh.resume()
    settle(mesh, lambda: (phone.root / plans.relpath).exists(), "the work session on the phone")
    assert not (phone.root / diary.relpath).exists()
    assert not (phone.root / "sessions" / "secret").exists()
    ignores = mesh.rest("laptop", "GET", f"/rest/db/ignores?folder={mesh.folder_id}")
    assert f"/{diary.relpath}" in ignores["ignore"] and "/sessions/secret" in ignores["ignore"]
    assert not ignores.get("error")
    assert not (phone.root / ".stignore").exists()  # Syncthing never syncs it: a filter per device
