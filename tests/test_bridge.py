"""Presence cards, intentions and the human bridge, through the library and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
import yaml
from click.testing import CliRunner

import mirrorfs.cli_mirror  # noqa: F401  (registers the commands until cli.py imports it)
from mirrorfs import bridge
from mirrorfs.cli import cli
from mirrorfs.errors import InvalidValueError, NotFoundError
from mirrorfs.instances import presence_state
from mirrorfs.messages import parse_time
from mirrorfs.vault import Vault

T0 = dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.timezone.utc)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def phone(vault):
    p = Vault.open(vault.root, instance="phone")
    p.instances.ensure_card()
    return p


def card_bytes(v: Vault) -> bytes:
    return v.instances.card_path().read_bytes()


# -- presence ---------------------------------------------------------------


def test_touch_is_throttled_unless_forced_or_the_status_changes(vault):
    cards = vault.instances
    assert cards.touch(force=True, now=T0) is True
    written = card_bytes(vault)
    stat = cards.card_path().stat()
    assert cards.get().last_seen == T0
    # Within five minutes nothing is written: no churn for the sync tool.
    for minutes in (1, 4):
        assert cards.touch(now=T0 + minutes * MIN) is False
    assert card_bytes(vault) == written and cards.card_path().stat().st_mtime_ns == stat.st_mtime_ns
    assert cards.touch(now=T0 + 5 * MIN) is True
    assert cards.get().last_seen == T0 + 5 * MIN
    assert cards.touch(force=True, now=T0 + 6 * MIN) is True  # a watcher starting or stopping
    assert cards.get().last_seen == T0 + 6 * MIN
    assert cards.touch(status="watching", now=T0 + 7 * MIN) is True  # news, not churn
    assert cards.touch(status="watching", now=T0 + 8 * MIN) is False
    card = cards.get()
    assert (card.status, card.last_seen) == ("watching", T0 + 7 * MIN)
    text = cards.card_path().read_text()
    assert "last_seen: 2026-11-21T10:07:00+00:00\n" in text and "status: watching\n" in text
    assert "updated_by: laptop\n" in text


def test_touch_interval_is_a_vault_setting(tmp_path):
    v = Vault.init(tmp_path / "v", instance="laptop")
    config = v.root / ".mirrorfs" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["presence"] = {"touch_interval": 60}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    v = Vault.open(v.root, instance="laptop")
    v.instances.touch(force=True, now=T0)
    assert v.instances.touch(now=T0 + dt.timedelta(seconds=59)) is False
    assert v.instances.touch(now=T0 + dt.timedelta(seconds=60)) is True


def test_states_from_last_seen(vault, phone):
    vault.instances.touch(force=True, now=T0)
    phone.instances.touch(force=True, now=T0 - dt.timedelta(days=2))
    states = {c.name: c.state for c in vault.instances.list(now=T0 + 9 * MIN)}
    assert states == {"laptop": "active", "phone": "idle"}
    states = {c.name: c.state for c in vault.instances.list(now=T0 + 11 * MIN)}
    assert states == {"laptop": "idle", "phone": "idle"}
    states = {c.name: c.state for c in vault.instances.list(now=T0 + dt.timedelta(days=6))}
    assert states == {"laptop": "idle", "phone": "gone"}
    assert presence_state(None, T0) == "gone"


def test_intentions_are_dated_strings_in_a_block_list(vault):
    cards = vault.instances
    cards.intend("Draft the phase 2 timeline", now=T0)
    cards.intend("Ask Sam: portfolio slot?", now=T0 + dt.timedelta(days=1))
    text = cards.card_path().read_text()
    assert ("intentions:\n  - Draft the phase 2 timeline (since 2026-11-21)\n"
            "  - 'Ask Sam: portfolio slot? (since 2026-11-22)'\n") in text
    card = cards.get()
    assert card.to_dict()["intention_items"] == [
        {"text": "Draft the phase 2 timeline", "since": "2026-11-21"},
        {"text": "Ask Sam: portfolio slot?", "since": "2026-11-22"},
    ]
    assert card.last_seen == T0 + dt.timedelta(days=1)  # recording an intention is being alive
    assert cards.done(1) == "Draft the phase 2 timeline"
    assert cards.get().intentions == ["Ask Sam: portfolio slot? (since 2026-11-22)"]
    with pytest.raises(InvalidValueError, match="has 1 intention"):
        cards.done(2)
    cards.clear_intentions()
    assert cards.get().intentions == []
    assert "intentions: []\n" in cards.card_path().read_text()
    with pytest.raises(InvalidValueError):
        cards.intend("   ")


def test_card_edits_keep_the_persons_lines(vault):
    path = vault.instances.card_path()
    original = path.read_text()
    edited = original.replace("intentions: []\n", "intentions: []  # what I plan\nmood: calm\n")
    path.write_text(edited)
    vault.instances.intend("Something", now=T0)
    text = path.read_text()
    assert "mood: calm\n" in text and "  - Something (since 2026-11-21)\n" in text


# -- bridge notes -----------------------------------------------------------


def test_write_list_and_answer(vault, phone):
    b = bridge.write_bridge_note(vault, "Book the ryokan before Friday.", to=["phone"], title="Ryokan",
                                 sender="human")
    text = (vault.root / b.path).read_text()
    assert text.startswith("---\nid: ")
    assert "\ntype: bridge\ntitle: Ryokan\nfrom: human\nto:\n  - phone\nstatus: open\n" in text
    assert text.endswith("---\n\nBook the ryokan before Friday.\n")
    everyone = bridge.write_bridge_note(vault, "Flights are booked.", to="all", sender="human")
    assert "\nto: all\n" in (vault.root / everyone.path).read_text()
    assert sorted(n.path for n in bridge.list_bridge(vault, for_instance="phone")) == sorted([b.path, everyone.path])
    assert [n.path for n in bridge.list_bridge(vault, for_instance="laptop")] == [everyone.path]

    answered = bridge.answer(phone, "Ryokan", "Booked for 31 March.", now=T0)
    assert answered.status == "answered" and answered.answers == ["phone"]
    text = (vault.root / b.path).read_text()
    assert "\nstatus: answered\n" in text and "\nupdated_by: phone\n" in text
    assert text.endswith("Book the ryokan before Friday.\n\n## Answer from phone · "
                         f"{T0.astimezone():%Y-%m-%d %H:%M}\n\nBooked for 31 March.\n")
    assert [n.path for n in bridge.list_bridge(vault)] == [everyone.path]
    assert sorted(n.path for n in bridge.list_bridge(vault, open_only=False)) == sorted([b.path, everyone.path])


def test_a_plain_file_in_bridge_is_a_note_from_the_person_to_all(vault, phone):
    plain = vault.root / "bridge" / "Shopping.md"
    plain.write_text("# Buy tea\n\nGreen, please.\n", encoding="utf-8")
    [b] = bridge.list_bridge(vault, for_instance="phone")
    assert (b.title, b.sender, b.to, b.status) == ("Buy tea", "human", ["all"], "open")
    bridge.answer(phone, "Shopping", "On the list.", now=T0)
    # Answering never injects front matter into a person's plain file.
    assert plain.read_text(encoding="utf-8") == (
        "# Buy tea\n\nGreen, please.\n\n"
        f"## Answer from phone · {T0.astimezone():%Y-%m-%d %H:%M}\n\nOn the list.\n")
    assert bridge.list_bridge(vault) == []


def test_bad_bridge_input_is_a_clear_error_and_writes_nothing(vault):
    with pytest.raises(InvalidValueError, match="cannot address"):
        bridge.write_bridge_note(vault, "x", to="Phone!")
    with pytest.raises(InvalidValueError, match="needs some text"):
        bridge.write_bridge_note(vault, "  ", to="all")
    with pytest.raises(NotFoundError, match="no bridge note"):
        bridge.answer(vault, "nope", "hi")
    assert list((vault.root / "bridge").iterdir()) == []


def test_overview_puts_presence_conflicts_and_open_notes_side_by_side(vault, phone):
    vault.instances.touch(status="tokens for the shop", force=True, now=T0)
    vault.instances.intend("Leave a buffer week", now=T0)
    phone.instances.touch(status="trip planning", force=True, now=T0 - dt.timedelta(days=2))
    note = bridge.write_bridge_note(vault, "Flights are booked.", to="all", title="Trip dates", sender="human")
    copy = vault.root / "memory" / "tea.sync-conflict-20261121-100412-ABCDEFG.md"
    copy.write_text("tea\n", encoding="utf-8")
    data = bridge.bridge_overview(vault, now=T0 + MIN)
    assert [(c["name"], c["state"], c["status"]) for c in data["instances"]] == [
        ("laptop", "active", "tokens for the shop"), ("phone", "idle", "trip planning")]
    assert [b["path"] for b in data["bridge"]] == [note.path]
    assert [c["path"] for c in data["conflicts"]] == ["memory/tea.sync-conflict-20261121-100412-ABCDEFG.md"]
    host = socket.gethostname()
    t_laptop = T0.astimezone()
    t_phone = (T0 - dt.timedelta(days=2)).astimezone()
    created = parse_time(data["bridge"][0]["created"]).astimezone()
    assert bridge.format_overview(data) == "\n".join([
        "Instances",
        f"  laptop  active  seen {t_laptop:%Y-%m-%d %H:%M} (1 min ago) on {host}",
        "          status: tokens for the shop",
        "          intends:",
        "            1. Leave a buffer week (since 2026-11-21)",
        f"  phone   idle    seen {t_phone:%Y-%m-%d %H:%M} (2 days ago) on {host}",
        "          status: trip planning",
        "          intends: nothing recorded",
        "",
        "Open conflicts",
        "  memory/tea.sync-conflict-20261121-100412-ABCDEFG.md  (copy of memory/tea.md): "
        "not merged yet (mirrorfs conflicts merge)",
        "",
        "Unanswered bridge notes",
        f'  bridge/trip-dates.md  "Trip dates"  human -> all  {created:%Y-%m-%d %H:%M}',
    ])


# -- CLI --------------------------------------------------------------------


@pytest.fixture
def run(vault):
    runner = CliRunner()

    def invoke(*args, instance="laptop", input=None, code=0):
        result = runner.invoke(cli, ["--vault", str(vault.root), "--instance", instance, *args], input=input)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_cli_intend(run, vault):
    assert run("intend") == "laptop intends nothing\n"
    today = dt.date.today().isoformat()
    assert run("intend", "Draft the timeline") == f"laptop intends:\n  1. Draft the timeline (since {today})\n"
    assert run("intend", "-", input="Ask about the portfolio\n") == (
        f"laptop intends:\n  1. Draft the timeline (since {today})\n  2. Ask about the portfolio (since {today})\n")
    assert run("intend", "--done", "1") == f"laptop intends:\n  1. Ask about the portfolio (since {today})\n"
    data = json.loads(run("intend", "--json"))
    assert data["intentions"] == [f"Ask about the portfolio (since {today})"]
    assert run("intend", "--clear") == "laptop intends nothing\n"
    assert run("intend", "--done", "3", code=1) == (
        "Error: laptop has 0 intention(s); there is nothing to mark done\n")


def test_cli_instances(run, vault, phone):
    now = dt.datetime.now().astimezone().replace(microsecond=0)
    vault.instances.touch(status="idle", force=True, now=now)
    phone.instances.touch(status="trip planning", force=True, now=now - dt.timedelta(days=8))
    host = socket.gethostname()
    old = now - dt.timedelta(days=8)
    assert run("instances") == (
        f"laptop  active  seen {now:%Y-%m-%d %H:%M} (just now) on {host} · idle\n"
        f"phone   gone    seen {old:%Y-%m-%d %H:%M} (8 days ago) on {host} · trip planning\n")
    data = json.loads(run("instances", "--json"))
    assert [(d["name"], d["state"], d["device"]) for d in data] == [("laptop", "active", host), ("phone", "gone", host)]


def test_cli_bridge_write_answer_and_overview(run, vault, phone):
    assert run("bridge", "write", "Book the ryokan before Friday.", "--to", "phone", "--title", "Ryokan") == (
        "bridge/ryokan.md\n")
    assert "\nfrom: human\n" in (vault.root / "bridge/ryokan.md").read_text()
    assert run("bridge", "write", "Flights are booked.", "--to", "laptop,phone") == "bridge/flights-are-booked.md\n"
    assert sorted(run("bridge", "list").splitlines()) == [
        'bridge/flights-are-booked.md  open      human -> laptop, phone  "Flights are booked."',
        'bridge/ryokan.md  open      human -> phone  "Ryokan"',
    ]
    assert sorted(run("reflections", instance="phone").splitlines()) == [  # phone's first look
        'human added bridge note "Flights are booked." for laptop, phone (bridge/flights-are-booked.md)',
        'human added bridge note "Ryokan" for phone (bridge/ryokan.md)',
        "laptop joined the vault (instances/laptop.md)",
    ]
    assert run("bridge", "answer", "ryokan", "Booked for 31 March.", instance="phone") == (
        "answered bridge/ryokan.md\n")
    assert run("bridge", "list") == 'bridge/flights-are-booked.md  open      human -> laptop, phone  "Flights are booked."\n'
    overview = run("bridge")
    assert overview.startswith("Instances\n  laptop  active  seen ")
    assert "Open conflicts\n  none\n\nUnanswered bridge notes\n  bridge/flights-are-booked.md" in overview
    data = json.loads(run("bridge", "--json"))
    assert [b["path"] for b in data["bridge"]] == ["bridge/flights-are-booked.md"]
    assert data["conflicts"] == [] and {c["name"] for c in data["instances"]} == {"laptop", "phone"}
    assert run("bridge", "write", "x", code=2).endswith("Error: Missing option '--to'.\n")
    assert run("bridge", "write", "x", "--to", "Phone!", code=1) == (
        "Error: cannot address a bridge note to 'phone!': use `all`, `human` or an instance name like phone\n")
    assert run("bridge", "answer", "nope", "x", code=1) == (
        "Error: no bridge note 'nope' (see `mirrorfs bridge list --all`)\n")
