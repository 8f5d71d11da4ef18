"""What one instance needs to know about the others: the `mirror_status` of an AI entrance.

`bridge_overview` is written for the person who coordinates (every card, every
open bridge note). An instance asks a narrower question: who else is there and
what do they intend, what did they write since I last looked (and remember
that I looked), which conflicts wait, which bridge notes are addressed to me.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mirrorfs import conflicts
from mirrorfs import reflections as reflections_mod
from mirrorfs.bridge import list_bridge
from mirrorfs.clock import now as local_now
from mirrorfs.errors import MirrorfsError

if TYPE_CHECKING:
    from mirrorfs.vault import Vault

# The status line an entrance writes on its card when its client disconnects.
IDLE_STATUS = "idle"
ACTIVE_STATUS = "active"
LATEST_REFLECTIONS = 20


def effective_state(card: dict) -> str | None:
    """The card's presence state, except that an instance which said it is idle is idle.

    `last_seen` stays fresh for some minutes after a client disconnects; the
    status line written at the disconnect is the better witness then.
    """
    state = card.get("state")
    if state == "active" and card.get("status") == IDLE_STATUS:
        return "idle"
    return state


def soul_name(vault: "Vault") -> str:
    """The identity's name: SOUL.md's `name`, else the vault's."""
    try:
        name = vault.soul.meta.get("name")
    except MirrorfsError:
        name = None
    except FileNotFoundError:
        name = None
    return str(name or vault.name)


def identity(vault: "Vault", now: dt.datetime | None = None) -> dict[str, Any]:
    """{name, instance, others: [{name, state}]}: who this instance is and who else exists."""
    others = []
    for card in vault.instances.list(now=now or local_now()):
        if card.name != vault.instance:
            data = card.to_dict()
            others.append({"name": card.name, "state": effective_state(data)})
    return {"name": soul_name(vault), "instance": vault.instance, "others": others}


def instance_cards(vault: "Vault", now: dt.datetime | None = None) -> tuple[list[dict], dict | None]:
    """(the other instances' cards, this instance's card or None), each with its effective state."""
    others, me = [], None
    for card in vault.instances.list(now=now or local_now()):
        data = card.to_dict()
        entry = {"name": card.name, "state": effective_state(data), "status": data["status"],
                 "last_seen": data["last_seen"], "device": data["device"], "intentions": data["intention_items"]}
        if card.name == vault.instance:
            me = entry
        else:
            others.append(entry)
    return others, me


def _reflections(vault: "Vault", latest: int, mark_read: bool) -> dict[str, Any]:
    found = vault.reflections()
    by_instance: dict[str, int] = {}
    for r in found:
        by_instance[r.instance] = by_instance.get(r.instance, 0) + 1
    shown = found[-latest:] if latest else []
    if mark_read and found:
        # Everything was counted in the summary; only the latest lines are spelled out.
        reflections_mod.mark_read(vault, found)
    return {
        "count": len(found),
        "by_instance": dict(sorted(by_instance.items(), key=lambda kv: (-kv[1], kv[0]))),
        "latest": [{"line": r.line(), "instance": r.instance, "action": r.action, "kind": r.kind,
                    "path": r.path, "time": r.time.isoformat() if r.time else None} for r in shown],
        "marked_read": bool(mark_read and found),
    }


def mirror_status(vault: "Vault", mark_read: bool = True, latest: int = LATEST_REFLECTIONS,
                  now: dt.datetime | None = None) -> dict[str, Any]:
    """The other instances, unread reflections (marked read), open conflicts, bridge notes to this instance."""
    now = now or local_now()
    problems: list[str] = []
    others, me = instance_cards(vault, now)
    notes_to_me = list_bridge(vault, open_only=True, for_instance=vault.instance,
                              on_error=lambda e: problems.append(str(e)))
    return {
        "instance": vault.instance,
        "time": now.isoformat(timespec="seconds"),
        "me": me,
        "instances": others,
        "reflections": _reflections(vault, latest, mark_read),
        "conflicts": [{"copy": c.copy, "original": c.original, "status": c.status, "reason": c.reason}
                      for c in conflicts.list_open(vault)],
        "bridge": [b.to_dict(body=True) for b in notes_to_me],
        "problems": problems,
    }
