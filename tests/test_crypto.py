"""Encrypted sections: Meld Encrypt v2 interop (against an independent Node/WebCrypto
implementation), the known-answer vector, old forms, seal markers, the key cache,
errors that name the section and never carry secrets, and passphrase sources.

Each PBKDF2 derivation costs ~0.1 s, so tests share one module keyring and one
vault salt and keep fresh keyrings (and Node runs) to the few that need them.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from mirrorfs import crypto
from mirrorfs import passphrase as pp
from mirrorfs.crypto import Keyring, WeakSectionWarning
from mirrorfs.errors import (
    CryptoError,
    InvalidValueError,
    LockedError,
    MalformedSectionError,
    TamperedSectionError,
    WrongPassphraseError,
)

REPO = Path(__file__).resolve().parent.parent
MELD = Path(__file__).resolve().parent / "meld" / "meld.mjs"
CORPORA = REPO.parent / "shared" / "corpora"

PASS = "correct horse battery staple"
SALT = bytes(range(16))

# Known-answer vector (also in docs/format.md, "Encrypted sections").
KAT_PASSPHRASE = PASS
KAT_SALT = bytes(range(16))  # 000102…0f
KAT_IV = bytes(range(16, 32))  # 101112…1f
KAT_PLAINTEXT = "Meet at the blue door at 7."
KAT_SECTION = (
    "%%🔐β EBESExQVFhcYGRobHB0eHwABAgMEBQYHCAkKCwwNDg9t8Xz3Tw2tk4Nc5a4h6zU4UCQQ"
    "KB8d1KwcxKOMEHo54b+oqEymBtkI+94A 🔐%%"
)

# Written by the real Meld Encrypt plugin: its repository's test-vault/Example.md
# and "Untitled 1.md" (passphrase "123" for the first three, "1" for the last).
MELD_OBSOLETE = "%%🔐 jivo/4M89jau2ynN9PX3dfKlfwc= 🔐%%"
MELD_ALPHA_1 = "%%🔐α ad9FyiQKtZlfYuGi45HUc/XZ7sQ/MppzUEfR7k7+RQKPGD83 🔐%%"
MELD_ALPHA_2 = "%%🔐α kiOeq4oHsdlAtCVa6w/rtL1QEDleKas6L6YbtnPIdUVI0hvl 🔐%%"
MELD_ALPHA_HINT = "%%🔐α 💡1💡MlWZuxJGgG+NnQq6e7sFR2B5OYS9E3OHUNS+7qlkM8ryGxwc 🔐%%"


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring(PASS)


def node_binary() -> str:
    node = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)
    if node is None:
        pytest.fail("node is not installed: the Meld interop tests need it (apt-get install nodejs)")
    return node


def meld(command: str, payload: dict) -> dict:
    """Run the independent Node implementation."""
    proc = subprocess.run(
        [node_binary(), str(MELD), command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = json.loads(proc.stdout or "{}")
    if proc.returncode != 0:
        raise AssertionError(f"meld.mjs {command} failed ({proc.returncode}): {out} {proc.stderr}")
    return out


def secrets_absent(err: BaseException, *secrets: str) -> None:
    for text in (str(err), repr(err)):
        for secret in secrets:
            assert secret not in text


# ------------------------------------------------------------------ format / interop


def test_known_answer_vector_matches_mirrorfs_and_node():
    keyring = Keyring(KAT_PASSPHRASE)
    assert crypto.encrypt_section(KAT_PLAINTEXT, keyring, salt=KAT_SALT, iv=KAT_IV) == KAT_SECTION
    [section] = crypto.find_sections(f"before {KAT_SECTION} after")
    assert (section.version, section.visible, section.hint, section.salt) == (2, False, None, KAT_SALT)
    assert crypto.decrypt_section(section, keyring) == KAT_PLAINTEXT
    node = meld("encrypt", {
        "passphrase": KAT_PASSPHRASE,
        "items": [{"plaintext": KAT_PLAINTEXT, "salt": base64.b64encode(KAT_SALT).decode(),
                   "iv": base64.b64encode(KAT_IV).decode()}],
    })
    assert node["sections"] == [KAT_SECTION]
    assert KAT_SECTION in (REPO / "docs" / "format.md").read_text(encoding="utf-8")


def test_mirrorfs_sections_open_in_node(keyring):
    plaintexts = ["API key: sk-live-1234", "two lines\nwith ünïcode, 日本語 and 🔐", ""]
    text = (
        "---\ntitle: Keys\n---\n\nInline "
        + crypto.encrypt_section(plaintexts[0], keyring, salt=SALT, hint="the usual")
        + " here.\n\n"
        + crypto.encrypt_section(plaintexts[1], keyring, salt=SALT, visible=True)
        + "\n"
        + crypto.encrypt_section(plaintexts[2], keyring, salt=SALT)
        + "\n"
    )
    got = meld("decrypt", {"passphrase": PASS, "text": text})["sections"]
    assert [s["plaintext"] for s in got] == plaintexts
    assert [s["hint"] for s in got] == ["the usual", None, None]
    assert [s["visible"] for s in got] == [False, True, False]


def test_node_sections_open_in_mirrorfs_with_one_derivation_per_salt():
    items = [
        {"plaintext": "written by Meld"},
        {"plaintext": "with a hint", "hint": "first pet"},
        {"plaintext": "visible form\nsecond line", "visible": True},
    ]
    sections = meld("encrypt", {"passphrase": "pässwörd 🔑", "items": items})["sections"]
    note = "# From Obsidian\n\n" + "\n\n".join(sections) + "\n"
    keyring = Keyring("pässwörd 🔑")
    before = crypto.derivation_count()
    assert crypto.decrypt_text(note, keyring) == "# From Obsidian\n\n" + "\n\n".join(
        i["plaintext"] for i in items) + "\n"
    # Meld draws a random salt per section: one derivation each, counted by the module.
    assert keyring.derivations == 3
    assert crypto.derivation_count() - before == 3
    found = crypto.find_sections(note)
    assert [s.hint for s in found] == [None, "first pet", None]
    assert [s.visible for s in found] == [False, False, True]


def test_shared_vault_salt_costs_one_derivation():
    writer = Keyring(PASS)
    salt = crypto.new_vault_salt()
    before = crypto.derivation_count()
    note = "\n".join(crypto.encrypt_section(f"secret {i}", writer, salt=salt) for i in range(200))
    assert writer.derivations == 1
    reader = Keyring(PASS)
    assert crypto.decrypt_text(note, reader) == "\n".join(f"secret {i}" for i in range(200))
    assert reader.derivations == 1
    assert crypto.derivation_count() - before == 2
    # Fresh IV each time: the same plaintext never gives the same section.
    assert crypto.encrypt_section("same", writer, salt=salt) != crypto.encrypt_section("same", writer, salt=salt)


def test_old_meld_forms_are_read_with_a_weak_warning_and_upgrade(keyring):
    note = f"# v1\npw:123\n{MELD_OBSOLETE}\n\n# v2\n{MELD_ALPHA_1}\n{MELD_ALPHA_2}\n"
    sections = crypto.find_sections(note)
    assert [(s.version, s.weak, s.line) for s in sections] == [(0, True, 3), (1, True, 6), (1, True, 7)]
    k123 = Keyring("123")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert crypto.decrypt_text(note, k123) == "# v1\npw:123\nTest\n\n# v2\nTest\nTest\n"
    assert [w.category for w in caught] == [WeakSectionWarning] * 3
    assert [str(w.message).split(" uses ")[0] for w in caught] == [
        "encrypted section 1 (line 3)", "encrypted section 2 (line 6)", "encrypted section 3 (line 7)"]
    assert "obsolete (v0) form, whose key derivation is weak" in str(caught[0].message)
    [hinted] = crypto.find_sections(MELD_ALPHA_HINT)
    assert hinted.hint == "1"
    with pytest.warns(WeakSectionWarning):
        assert crypto.decrypt_section(hinted, Keyring("1")) == "test"

    salt = crypto.new_vault_salt()
    upgraded = crypto.rekey_text(note, k123, salt=salt, only_weak=True)
    assert upgraded.startswith("# v1\npw:123\n%%🔐β ") and "🔐α" not in upgraded
    assert all(s.version == 2 and s.salt == salt for s in crypto.find_sections(upgraded))
    assert [s["plaintext"] for s in meld("decrypt", {"passphrase": "123", "text": upgraded})["sections"]] == [
        "Test", "Test", "Test"]
    # Everything around the sections keeps its bytes.
    assert crypto.lock_placeholder(upgraded) == crypto.lock_placeholder(note)


# ------------------------------------------------------------------------- errors


def test_wrong_passphrase_names_the_section_and_leaks_nothing(keyring):
    secret = "the vault code is 4711"
    note = "intro\n" + crypto.encrypt_section("fine", keyring, salt=SALT) + "\n\n" + crypto.encrypt_section(
        secret, keyring, salt=SALT) + "\n"
    wrong = Keyring("not the passphrase")
    with pytest.raises(WrongPassphraseError, match=r"^encrypted section 1 \(line 2\): wrong passphrase") as info:
        crypto.decrypt_text(note, wrong)
    secrets_absent(info.value, secret, "not the passphrase", PASS)
    assert (info.value.section_index, info.value.line) == (1, 2)
    located = crypto.with_path(info.value, "memory/keys.md")
    assert isinstance(located, WrongPassphraseError)
    assert str(located).startswith("memory/keys.md: encrypted section 1 (line 2)")
    assert located.path == "memory/keys.md" and located.line == 2


def test_tampered_section_is_told_apart_once_the_key_is_known(keyring):
    secret = "tamper target plaintext"
    first = crypto.encrypt_section("opens fine", keyring, salt=SALT)
    second = crypto.encrypt_section(secret, keyring, salt=SALT)
    payload = second[len("%%🔐β "):-len(" 🔐%%")]
    raw = bytearray(base64.b64decode(payload))
    raw[40] ^= 0x01  # one ciphertext bit
    tampered = "%%🔐β " + base64.b64encode(bytes(raw)).decode() + " 🔐%%"
    note = f"{first}\n{tampered}\n"
    with pytest.raises(TamperedSectionError, match=r"^encrypted section 2 \(line 2\): it was changed") as info:
        crypto.decrypt_text(note, keyring)
    secrets_absent(info.value, secret, PASS)
    # A keyring that has opened nothing under that salt cannot tell: wrong passphrase or changed.
    [only] = crypto.find_sections(tampered)
    with pytest.raises(WrongPassphraseError, match="or the section was changed"):
        crypto.decrypt_section(only, Keyring(PASS))


def test_truncated_and_damaged_sections_are_malformed(keyring):
    good = crypto.encrypt_section("truncate me", keyring, salt=SALT)
    payload = good[len("%%🔐β "):-len(" 🔐%%")]
    cases = {
        "x\n%%🔐β " + payload[:61] + " 🔐%%": "damaged",  # 4n+1 characters: never base64
        "x\n%%🔐β " + payload[:20] + " 🔐%%": "truncated",  # too short for iv+salt+tag
        "x\n%%🔐β " + payload[:30] + "!?" + payload[32:] + " 🔐%%": "damaged",
    }
    for text, reason in cases.items():
        with pytest.raises(MalformedSectionError, match=rf"^encrypted section 1 \(line 2\): .*{reason}") as info:
            crypto.decrypt_text(text, keyring)
        secrets_absent(info.value, "truncate me", PASS)
    # Cut by one whole base64 quantum: still base64, but the tag no longer matches.
    [short] = crypto.find_sections("%%🔐β " + payload[:-4] + " 🔐%%")
    with pytest.raises((TamperedSectionError, WrongPassphraseError)):
        crypto.decrypt_section(short, keyring)


def test_unterminated_and_nested_sections(keyring):
    good = crypto.encrypt_section("inner secret", keyring, salt=SALT)
    payload = good[len("%%🔐β "):-len(" 🔐%%")]
    unterminated = f"# Note\n\nstart %%🔐β {payload}\n\nmore text\n"
    with pytest.raises(MalformedSectionError, match=r"^encrypted section 1 \(line 3\): it is unterminated"):
        crypto.find_sections(unterminated)
    nested = f"# Note\n%%🔐β {payload} {good} 🔐%% tail\n"
    with pytest.raises(MalformedSectionError, match=r"^encrypted section 1 \(line 2\): .*nested"):
        crypto.decrypt_text(nested, keyring)
    # Locked views and the index never raise and never show the ciphertext.
    for text in (unterminated, nested):
        for view in (crypto.lock_placeholder(text), crypto.strip_sections(text)):
            assert payload[:16] not in view and "🔐β" not in view
    assert crypto.lock_placeholder(nested) == "# Note\n🔒 [damaged encrypted section] tail\n"
    assert crypto.lock_placeholder(unterminated) == "# Note\n\nstart 🔒 [damaged encrypted section]\n\nmore text\n"


def test_damaged_text_only_ever_raises_malformed(keyring):
    import random

    template = (
        "Intro " + crypto.encrypt_section("alpha", keyring, salt=SALT, hint="h") + " mid\n"
        + crypto.encrypt_section("beta", keyring, salt=SALT, visible=True) + "\n"
        + MELD_ALPHA_1 + "\n" + MELD_OBSOLETE + "\n```secret hint: x\nclear\n```\n~~~\n```secret\n~~~\n"
    )
    pieces = ["%%", "🔐", "β ", "α ", " 🔐%%", " 🔐", "💡", "```", "```secret", "\n", " ", "A", "=", "!"]
    rng = random.Random(5)
    for _ in range(3000):
        text = template
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.5:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 12):]
        for parse in (crypto.find_sections, crypto.find_seal_markers):
            try:
                parse(text)
            except MalformedSectionError:
                pass
        crypto.lock_placeholder(text)
        stripped = crypto.strip_sections(text)
        # What the index gets holds no section payload and no secret block, damaged or not
        # (the scanners' raw output lists damaged ones too).
        for item in crypto._scan(text):
            if isinstance(item, crypto.Section) and len(item.payload) >= 16:
                assert item.payload not in stripped
        for item in crypto._seal_scan(text):
            assert text[item.start:item.end] not in stripped


def test_text_that_merely_mentions_the_markers_is_not_a_section():
    text = (
        "Meld writes `%%🔐β <base64> 🔐%%`; the `🔐β ` prefix is the v2 one.\n"
        "## 🔐 Security 🔐\n🔐 locked 🔐 door\n"
    )
    assert crypto.find_sections(text) == []
    assert crypto.lock_placeholder(text) == text == crypto.strip_sections(text)


def test_invalid_arguments(keyring):
    with pytest.raises(InvalidValueError):
        Keyring("")
    with pytest.raises(InvalidValueError):
        crypto.encrypt_section("x", keyring, salt=b"short")
    for hint in ("two\nlines", "has 💡 bulb", "has 🔐", "a %% b"):
        with pytest.raises(InvalidValueError):
            crypto.encrypt_section("x", keyring, salt=SALT, hint=hint)
    with pytest.raises(InvalidValueError):
        crypto.encrypt_section("lone \udc80 surrogate", keyring, salt=SALT)
    assert crypto.decode_salt(crypto.encode_salt(SALT)) == SALT
    for bad in ("not base64!", base64.b64encode(b"12345").decode()):
        with pytest.raises(CryptoError, match="encryption_salt"):
            crypto.decode_salt(bad)


# ------------------------------------------------------------------- locked views


def test_lock_placeholder_and_strip_hide_ciphertext_and_secret_blocks(keyring):
    sealed = crypto.encrypt_section("sealed secret", keyring, salt=SALT, hint="pet")
    visible = crypto.encrypt_section("visible secret", keyring, salt=SALT, visible=True)
    text = f"A {sealed} B\n{visible}\n\n```secret\nnot sealed yet\n```\nend\n"
    assert crypto.lock_placeholder(text) == (
        "A 🔒 [encrypted section, hint: pet] B\n🔒 [encrypted section]\n\n"
        "🔒 [secret block, not sealed yet]\nend\n"
    )
    stripped = crypto.strip_sections(text)
    assert stripped == "A   B\n \n\n\nend\n"
    for view in (crypto.lock_placeholder(text), stripped):
        assert "secret" not in view.replace("[secret block", "")
        for section in crypto.find_sections(text):
            assert section.payload[:12] not in view


def test_decrypt_text_placeholder_mode_keeps_going(keyring):
    # As Meld writes it: another passphrase, a salt of its own.
    other = crypto.encrypt_section("someone else's", Keyring("other passphrase"), salt=crypto.new_vault_salt())
    mine = crypto.encrypt_section("mine", keyring, salt=SALT)
    text = f"{other}\n{mine}\n"
    with pytest.raises(WrongPassphraseError):
        crypto.decrypt_text(text, keyring)
    assert crypto.decrypt_text(text, keyring, errors="placeholder") == "🔒 [encrypted section]\nmine\n"


def test_passphrase_check_value(keyring):
    check = crypto.make_check(keyring, SALT)
    crypto.verify_check(check, keyring)
    with pytest.raises(WrongPassphraseError, match="wrong passphrase for this vault") as info:
        crypto.verify_check(check, Keyring("guess"))
    secrets_absent(info.value, "guess", PASS)


def test_keyring_forget_and_repr(keyring):
    temp = Keyring("forget me please")
    assert "forget me" not in repr(temp)
    crypto.encrypt_section("x", temp, salt=crypto.new_vault_salt())
    temp.forget()
    assert temp.forgotten
    with pytest.raises(CryptoError, match="forgotten"):
        crypto.encrypt_section("x", temp, salt=SALT)
    assert keyring.same_passphrase(Keyring(PASS)) and not keyring.same_passphrase(temp)


def test_rekey_text_is_resumable(keyring):
    note = "a\n" + crypto.encrypt_section("one", keyring, salt=SALT, hint="h") + "\nb\n" + crypto.encrypt_section(
        "two", keyring, salt=SALT, visible=True) + "\n"
    new = Keyring("new passphrase")
    new_salt = crypto.new_vault_salt()
    once = crypto.rekey_text(note, keyring, new, salt=new_salt)
    assert crypto.decrypt_text(once, new) == "a\none\nb\ntwo\n"
    assert [(s.hint, s.visible, s.salt) for s in crypto.find_sections(once)] == [
        ("h", False, new_salt), (None, True, new_salt)]
    # Running again (after an interruption) leaves rekeyed sections byte-identical.
    assert crypto.rekey_text(once, keyring, new, salt=new_salt) == once
    with pytest.raises(WrongPassphraseError):
        crypto.decrypt_text(once, keyring)


# -------------------------------------------------------------------- seal markers


def test_seal_replaces_only_the_block(keyring):
    before = "\ufeff---\r\ntitle: Keys\r\n---\r\n\r\nIntro line  \r\n\r\n"
    block = "```secret\r\nline one\r\n  indented two\r\n```"
    after = "\r\n\r\nOutro with trailing spaces   \r\nno final newline"
    text = before + block + after
    [marker] = crypto.find_seal_markers(text)
    assert (marker.index, marker.line, marker.hint, marker.visible) == (1, 7, None, False)
    assert marker.plaintext == "line one\r\n  indented two"
    assert "line one" not in repr(marker)
    assert crypto.has_unsealed(text)
    sealed = crypto.seal_text(text, keyring, SALT)
    assert sealed.startswith(before) and sealed.endswith(after)
    middle = sealed[len(before):len(sealed) - len(after)]
    [section] = crypto.find_sections(sealed)
    assert middle == sealed[section.start:section.end] and middle.startswith("%%🔐β ")
    assert crypto.decrypt_text(sealed, keyring) == before + marker.plaintext + after
    assert not crypto.has_unsealed(sealed)
    assert crypto.seal_text(sealed, keyring, SALT) is sealed


def test_seal_options_and_containers(keyring):
    text = (
        "- item\n"
        "  ```secret hint: the usual\n"
        "  in a list\n"
        "  ```\n"
        "> [!note] callout\n"
        "> ~~~~secret visible\n"
        "> in a callout\n"
        "> ~~~~\n"
        "````markdown\n"
        "```secret\n"
        "an example, not a marker\n"
        "```\n"
        "````\n"
    )
    markers = crypto.find_seal_markers(text)
    assert [(m.plaintext, m.hint, m.visible, m.line) for m in markers] == [
        ("in a list", "the usual", False, 2), ("in a callout", None, True, 6)]
    sealed = crypto.seal_text(text, keyring, SALT)
    lines = sealed.split("\n")
    assert lines[0] == "- item" and lines[1].startswith("  %%🔐β 💡the usual💡")
    assert lines[2] == "> [!note] callout" and lines[3].startswith("> 🔐β ") and lines[3].endswith(" 🔐")
    assert "\n".join(lines[4:]) == "````markdown\n```secret\nan example, not a marker\n```\n````\n"
    assert crypto.decrypt_text(sealed, keyring) == (
        "- item\n  in a list\n> [!note] callout\n> in a callout\n" + "\n".join(lines[4:]))


def test_seal_marker_errors_name_the_block():
    bad = {
        "# T\n\n```secret\nnever closed\n": r"^secret block 1 \(line 3\): it is unterminated",
        "```secret\nouter\n~~~secret\ninner\n~~~\n```\n": r"^secret block 1 \(line 1\): .*nested secret block",
        "```secret\nx %%🔐β " + "A" * 64 + " 🔐%%\n```\n": r"^secret block 1 \(line 1\): .*already an encrypted section",
        "ok\n\n```secret please\nx\n```\n": r"^secret block 1 \(line 3\): unknown option 'please'",
    }
    for text, pattern in bad.items():
        with pytest.raises(MalformedSectionError, match=pattern) as info:
            crypto.seal_text(text, Keyring("unused"), SALT)
        secrets_absent(info.value, "never closed", "outer", "inner")
        assert crypto.has_unsealed(text)
        assert crypto.lock_placeholder(text).count("🔒 [secret block, not sealed yet]") == 1


def test_unseal_then_seal_keeps_unchanged_sections_byte_identical(keyring):
    note = (
        "# Edit me\n\n"
        + crypto.encrypt_section("keep ``` me\nas is", keyring, salt=SALT, hint="k")
        + "\n\ntext\n  "
        + crypto.encrypt_section("change me", keyring, salt=SALT)
        + "\ninline " + crypto.encrypt_section("inline stays", keyring, salt=SALT) + " sealed\n"
    )
    opened = crypto.unseal_text(note, keyring)
    assert "```secret hint: k\nkeep ``` me\nas is\n```" in opened
    assert "  ```secret\n  change me\n  ```" in opened
    assert "inline %%🔐β " in opened and "inline stays" not in opened
    assert crypto.seal_text(opened, keyring, SALT, previous=note) == note
    edited = opened.replace("change me", "changed!")
    resealed = crypto.seal_text(edited, keyring, SALT, previous=note)
    old, new = crypto.find_sections(note), crypto.find_sections(resealed)
    assert note[old[0].start:old[0].end] == resealed[new[0].start:new[0].end]
    assert note[old[1].start:old[1].end] != resealed[new[1].start:new[1].end]
    assert note[old[2].start:old[2].end] == resealed[new[2].start:new[2].end]
    assert crypto.decrypt_text(resealed, keyring) == crypto.decrypt_text(note, keyring).replace(
        "change me", "changed!")
    # A copied block gets a fresh section: one old section is never given back twice.
    copied = opened + "\n```secret hint: k\nkeep ``` me\nas is\n```\n"
    twice = crypto.find_sections(crypto.seal_text(copied, keyring, SALT, previous=note))
    assert len({s.payload for s in twice}) == 4


def test_real_notes_hold_no_false_sections_or_markers():
    if not CORPORA.is_dir():
        pytest.fail(f"the shared corpora are missing at {CORPORA}")
    notes = list(CORPORA.rglob("*.md"))
    assert len(notes) > 300
    for path in notes:
        text = path.read_text(encoding="utf-8")
        assert crypto.find_sections(text) == [], path
        assert crypto.find_seal_markers(text) == [], path
        assert not crypto.has_unsealed(text)
        assert crypto.lock_placeholder(text) == text == crypto.strip_sections(text)


# ----------------------------------------------------------------------- passphrase


def test_passphrase_file(tmp_path):
    path = tmp_path / "pass"
    path.write_bytes("  spaced pässphrase \r\n".encode())
    path.chmod(0o600)
    assert pp.read_passphrase_file(path) == "  spaced pässphrase "
    path.write_text("two\nlines\n\n")
    assert pp.read_passphrase_file(path) == "two\nlines\n"
    path.chmod(0o644)
    with pytest.warns(UserWarning, match="readable by other users"):
        pp.read_passphrase_file(path)
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(InvalidValueError, match="empty"):
        pp.read_passphrase_file(path)
    with pytest.raises(InvalidValueError, match="cannot read"):
        pp.read_passphrase_file(tmp_path / "missing")


def test_passphrase_sources_in_order(tmp_path, monkeypatch):
    path = tmp_path / "pass"
    path.write_text("from file\n")
    path.chmod(0o600)
    env = {pp.ENV_VAR: "from env"}
    assert pp.find_passphrase(passphrase_file=path, environ=env, interactive=False) == ("from file", "file")
    assert pp.find_passphrase(environ=env, interactive=False) == ("from env", "env")
    with pytest.raises(LockedError, match="--passphrase-file"):
        pp.find_passphrase(environ={}, interactive=False)
    monkeypatch.setenv(pp.ENV_VAR, "real environment")
    assert pp.get_passphrase(interactive=False) == "real environment"


def _memory_backend():
    """The real keyring package with a backend that keeps passwords in a dict (no desktop keyring on CI)."""
    try:
        import keyring
        from keyring.backend import KeyringBackend
        from keyring.errors import PasswordDeleteError
    except ImportError:
        pytest.fail("the optional 'keyring' package is missing: pip install -e '.[keyring]'")

    class Backend(KeyringBackend):
        priority = 1

        def __init__(self):
            super().__init__()
            self.store = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            if self.store.pop((service, username), None) is None:
                raise PasswordDeleteError(username)

    return keyring, Backend()


def test_os_keyring_source():
    keyring, backend = _memory_backend()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        assert pp.keyring_available()
        pp.store_in_keyring("v1", "from keyring")
        assert pp.find_passphrase(vault_id="v1", environ={}, interactive=False) == ("from keyring", "keyring")
        assert backend.store[("mirrorfs", "v1")] == "from keyring"
        # The environment wins over the keyring; use_keyring=False skips it.
        assert pp.find_passphrase(vault_id="v1", environ={pp.ENV_VAR: "env"}, interactive=False)[1] == "env"
        with pytest.raises(LockedError):
            pp.find_passphrase(vault_id="v1", environ={}, use_keyring=False, interactive=False)
        assert pp.forget_in_keyring("v1") is True
        assert pp.forget_in_keyring("v1") is False
        assert pp.from_keyring("v1") is None
    finally:
        keyring.set_keyring(previous)


def _run_in_terminal(code: str, answers: list[str], timeout: float = 30) -> str:
    """Run python ``code`` on a real pseudo-terminal, answering each prompt; return all it showed."""
    main, child = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop(pp.ENV_VAR, None)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=child, stdout=child, stderr=child,
                            env=env, close_fds=True)
    os.close(child)
    seen, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                # click prints "Label:" and then getpass turns echo off and prints " ":
                # answering before that space would echo (and lose) the answer.
                if pending and seen.endswith(b": "):
                    os.write(main, pending.pop(0).encode() + b"\n")
            elif proc.poll() is not None:
                break
        else:
            pytest.fail(f"the prompt did not finish in {timeout} s: {seen!r}")
    finally:
        os.close(main)
        proc.wait(timeout=10)
    return seen.decode("utf-8", "replace")


def test_interactive_prompt_hides_the_passphrase():
    code = (
        "from mirrorfs.passphrase import find_passphrase\n"
        "p, source = find_passphrase(environ={})\n"
        "print('GOT', len(p), source, p == 'hunter2 hidden')\n"
    )
    shown = _run_in_terminal(code, ["hunter2 hidden"])
    assert "GOT 14 prompt True" in shown
    assert "hunter2" not in shown
    code = (
        "from mirrorfs.passphrase import find_passphrase\n"
        "p, source = find_passphrase(environ={}, confirm=True)\n"
        "print('GOT', len(p), source)\n"
    )
    shown = _run_in_terminal(code, ["new one", "new one"])
    assert "GOT 7 prompt" in shown and "new one" not in shown
