"""Two real Syncthing daemons on 127.0.0.1 sharing one folder, for end-to-end tests.

Usage from a pytest fixture::

    from syncthing import SyncthingPair

    @pytest.fixture
    def pair(tmp_path):
        with SyncthingPair(tmp_path / "laptop", tmp_path / "phone",
                           names=("laptop", "phone"), base_dir=tmp_path / "st") as p:
            p.wait_connected()
            yield p          # stop() runs even when the test fails

    def test_x(pair):
        (pair.folder("laptop") / "memory" / "x.md").write_text("...")
        pair.wait_in_sync()  # scans both sides, waits until both hold the same
        assert (pair.folder("phone") / "memory" / "x.md").exists()

Each daemon gets its own home (config, keys, database, log) and a GUI/REST
address and sync address on free loopback ports. Global and local discovery,
relays, NAT traversal, upgrades and usage/crash reporting are off, so nothing
leaves the machine. The first side knows the second by its explicit tcp address
and is the only one that dials; the second accepts it (see _write_config for why).
Every wait polls the REST API for a condition with a timeout; a time-out raises
SyncthingError (an AssertionError, so the test fails) with the last observed
state and the tail of both daemons' logs.

Processes: by default each daemon runs as one process (the environment the 1.19
monitor gives its child: STMONITORED). With monitor=True, Syncthing runs as
usual as a monitor plus a child per side. Either way stop() asks each daemon to
shut down, then ends by pid whatever is left: the process it started, its
descendants and members of its process group (checked by start time, so a reused
pid is never hit).

The observed conflict semantics (which side wins, what the `.sync-conflict-`
copy holds and whose id it carries) are recorded in
tests/test_syncthing_harness.py::test_concurrent_edits_while_paused_make_a_conflict_copy.
"""

from __future__ import annotations

import atexit
import copy
import json as jsonlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

INSTALL_HINT = "run .ci/install-syncthing (installs the Debian package 'syncthing')"
LOG_TAIL_LINES = 60

# Proxies from the environment must not see loopback REST calls or sync dials.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SyncthingError(AssertionError):
    """The harness could not get Syncthing into the wanted state (test failure)."""


INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "install-syncthing"
_install_failure: str | None = None


def syncthing_binary(install: bool = True) -> str:
    """Path of the syncthing binary, installed by .ci/install-syncthing when missing.

    Fails (never skips) when it is still missing.
    """
    global _install_failure
    path = shutil.which("syncthing")
    if path is None and _install_failure is not None:
        raise SyncthingError(_install_failure)  # one apt-get attempt per test session
    if path is None and install and INSTALL_SCRIPT.exists():
        out = subprocess.run([str(INSTALL_SCRIPT)], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=900)
        path = shutil.which("syncthing")
        if path is None:
            _install_failure = (f"syncthing is not installed and {INSTALL_SCRIPT} failed "
                                f"({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            raise SyncthingError(_install_failure)
    if path is None:
        raise SyncthingError(f"syncthing is not installed or not on PATH: {INSTALL_HINT}")
    return path


def syncthing_version(binary: str | None = None) -> str:
    """The first line of `syncthing --version`."""
    out = subprocess.run([binary or syncthing_binary(), "--version"], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else out.stderr.strip()


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open together so the ports are distinct.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, start time) of a live process, None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[1]), int(fields[2]), int(fields[19])


def _related(root: int) -> dict[int, int]:
    """Live descendants of root and live members of its process group: pid -> start time.

    The start time tells a process from a later one that reuses its pid.
    """
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    found = {pid for pid, (_, pgid, _) in table.items() if pgid == root}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    found.discard(root)
    return {pid: table[pid][2] for pid in found}


def _kill_pid(pid: int, start_time: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after timeout, the process pid if it is still the one seen."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        stat = _proc_stat(pid)
        if stat is None or stat[2] != start_time:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stat = _proc_stat(pid)
            if stat is None or stat[2] != start_time:
                return
            time.sleep(0.05)


class _Side:
    def __init__(self, name: str, folder: Path, home: Path):
        self.name = name
        self.folder = folder
        self.home = home
        self.log_path = home / "syncthing.log"
        self.device_id = ""
        self.api_key = secrets.token_urlsafe(24)
        self.gui_port = 0
        self.sync_port = 0
        self.proc: subprocess.Popen | None = None
        self.log_fh = None
        self.children: dict[int, int] = {}  # pid -> start time

    @property
    def short_id(self) -> str:
        return self.device_id.split("-", 1)[0]


class SyncthingPair:
    """Two Syncthing daemons sharing one sendreceive folder over 127.0.0.1.

    folder_a, folder_b: the shared folder on each side (created if missing).
    names: the two sides' names (also their Syncthing device names); anywhere a
    `side` is asked for, pass a name or the index 0/1.
    base_dir: where the daemons' homes go (default: a fresh temp dir, removed by stop()).
    """

    def __init__(
        self,
        folder_a: str | os.PathLike,
        folder_b: str | os.PathLike,
        *,
        names: tuple[str, str] = ("a", "b"),
        folder_id: str = "mirrorfs",
        base_dir: str | os.PathLike | None = None,
        rescan_interval_s: int = 10,
        fs_watcher_delay_s: int = 1,
        monitor: bool = False,
    ):
        if len(names) != 2 or names[0] == names[1]:
            raise ValueError("names must be two distinct side names")
        self.folder_id = folder_id
        self.rescan_interval_s = rescan_interval_s
        self.fs_watcher_delay_s = fs_watcher_delay_s
        self.monitor = monitor
        self._binary = syncthing_binary()
        self.version = syncthing_version(self._binary)
        self._own_base = base_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="syncthing-pair-")) if base_dir is None \
            else Path(base_dir)
        self._sides = [
            _Side(names[0], Path(folder_a).resolve(), self.base_dir / f"syncthing-home-{names[0]}"),
            _Side(names[1], Path(folder_b).resolve(), self.base_dir / f"syncthing-home-{names[1]}"),
        ]
        self._subcommands = True
        self._started = False

    # --- lifecycle -------------------------------------------------------

    def __enter__(self) -> "SyncthingPair":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> "SyncthingPair":
        """Generate both configs and start both daemons; returns when both REST APIs answer."""
        atexit.register(self.stop)
        self._started = True
        try:
            for side in self._sides:
                self._generate(side)
            # A free port can be taken between probing and binding: retry with new ones.
            for attempt in range(3):
                self._assign_ports()
                for i in range(2):
                    self._write_config(i)
                try:
                    for side in self._sides:
                        self._launch(side)
                    for side in self._sides:
                        self._wait_up(side, timeout)
                    # The dialling side starts with its peer paused: a dial that finds
                    # no listener yet is retried only seconds later, while unpausing
                    # now that both listen dials at once.
                    self.rest(0, "PATCH", f"/rest/config/devices/{self._sides[1].device_id}",
                              json={"paused": False})
                    return self
                except SyncthingError:
                    lost_port = any("address already in use" in self._log_text(s)
                                    for s in self._sides)
                    self._stop_daemons()
                    if not lost_port or attempt == 2:
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both daemons (and any process they left) by pid; safe to call twice."""
        try:
            if self._started:
                self._started = False
                self._stop_daemons()
        finally:
            atexit.unregister(self.stop)
            if self._own_base:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def pids(self) -> set[int]:
        """Live pids of every process the daemons run (main processes and any children)."""
        pids = set()
        for side in self._sides:
            if side.proc is not None:
                if side.proc.poll() is None:
                    pids.add(side.proc.pid)
                pids |= set(_related(side.proc.pid))
        return pids

    # --- accessors -------------------------------------------------------

    @property
    def names(self) -> tuple[str, str]:
        return (self._sides[0].name, self._sides[1].name)

    def device_id(self, side: str | int) -> str:
        """Full device id, e.g. 'WIACJOW-25LRYBQ-...'."""
        return self._side(side).device_id

    def short_id(self, side: str | int) -> str:
        """First 7 characters of the device id, as used in `.sync-conflict-` names."""
        return self._side(side).short_id

    def folder(self, side: str | int) -> Path:
        return self._side(side).folder

    def home(self, side: str | int) -> Path:
        return self._side(side).home

    def gui_url(self, side: str | int) -> str:
        return f"http://127.0.0.1:{self._side(side).gui_port}"

    def api_key(self, side: str | int) -> str:
        return self._side(side).api_key

    def logs(self, lines: int | None = LOG_TAIL_LINES) -> str:
        """Tail of both daemons' logs (all of them with lines=None)."""
        parts = []
        for side in self._sides:
            text = self._log_text(side).splitlines()
            if lines is not None:
                text = text[-lines:]
            parts.append(f"----- syncthing log of {side.name} ({side.short_id}) -----\n"
                         + "\n".join(text))
        return "\n".join(parts)

    # --- REST ------------------------------------------------------------

    def rest(self, side: str | int, method: str, path: str, json: Any = None,
             timeout: float = 10.0) -> Any:
        """Call the REST API of one side; returns decoded JSON, text, or None when empty."""
        s = self._side(side)
        data = None
        headers = {"X-API-Key": s.api_key}
        if json is not None:
            data = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"http://127.0.0.1:{s.gui_port}{path}", data=data,
                                     headers=headers, method=method.upper())
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                body = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise SyncthingError(f"{s.name}: {method} {path} -> HTTP {exc.code}: {detail}") from exc
        if not body.strip():
            return None
        if "json" in ctype:
            return jsonlib.loads(body)
        return body.decode(errors="replace")

    def _folder_q(self) -> str:
        return urllib.parse.quote(self.folder_id)

    # --- actions and waits -------------------------------------------------

    def scan(self, side: str | int | None = None) -> None:
        """Rescan the shared folder now (both sides when side is None); returns when done."""
        for s in self._pick(side):
            self.rest(s.name, "POST", f"/rest/db/scan?folder={self._folder_q()}", timeout=60)

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str,
                   interval: float = 0.1) -> Any:
        """Poll predicate until it returns a truthy value; time-out raises with both logs.

        The predicate may raise; the last error is reported if the wait times out.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                result = predicate()
                if result:
                    return result
                last = result
            except Exception as exc:  # the condition is not met yet
                last = f"{type(exc).__name__}: {exc}"
            for s in self._sides:
                if s.proc is not None and s.proc.poll() is not None:
                    raise SyncthingError(
                        f"while waiting for {what}: syncthing of {s.name} exited with "
                        f"{s.proc.returncode}\n{self.logs()}")
            if time.monotonic() >= deadline:
                raise SyncthingError(
                    f"timed out after {timeout:.1f}s waiting for {what}; last state: {last}\n"
                    f"{self.logs()}")
            time.sleep(interval)

    def connected(self) -> bool:
        """True when each side sees a live connection to the other."""
        for me, other in ((0, 1), (1, 0)):
            conns = self.rest(me, "GET", "/rest/system/connections")["connections"]
            if not conns.get(self._sides[other].device_id, {}).get("connected"):
                return False
        return True

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until the two daemons are connected to each other."""
        self.wait_until(self.connected, timeout, "both daemons to connect")

    def sync_state(self) -> dict:
        """Per side: folder status, the completion of the other device, and connection state."""
        state = {}
        for me, other in ((0, 1), (1, 0)):
            peer = self._sides[other].device_id
            status = self.rest(me, "GET", f"/rest/db/status?folder={self._folder_q()}")
            completion = self.rest(
                me, "GET", f"/rest/db/completion?folder={self._folder_q()}&device={peer}")
            conns = self.rest(me, "GET", "/rest/system/connections")["connections"]
            state[self._sides[me].name] = {
                "status": status, "peer_completion": completion,
                "connected": bool(conns.get(peer, {}).get("connected")),
            }
        return state

    def _in_sync(self, state: dict) -> bool:
        # Each side must have received the other's whole index (the peer's view of
        # our sequence equals our own) and need nothing from it: the completion
        # figures alone say 100 % for a peer that has not sent any index yet.
        keys = ("globalFiles", "globalDirectories", "globalSymlinks", "globalDeleted", "globalBytes")
        globals_seen = set()
        (name_a, a), (name_b, b) = state.items()
        if a["status"].get("sequence") != b["peer_completion"].get("sequence") \
                or b["status"].get("sequence") != a["peer_completion"].get("sequence"):
            return False
        for side in (a, b):
            st, comp = side["status"], side["peer_completion"]
            if not side["connected"] or st.get("state") != "idle":
                return False
            if st.get("needTotalItems", 1) != 0 or st.get("pullErrors", 0):
                return False
            if comp.get("completion") != 100 or comp.get("needItems", 1) != 0 \
                    or comp.get("needDeletes", 1) != 0:
                return False
            if comp.get("remoteState", "valid") != "valid":
                return False
            globals_seen.add(tuple(st.get(k) for k in keys))
        return len(globals_seen) == 1

    def wait_in_sync(self, timeout: float = 30.0) -> None:
        """Scan both sides, then wait until both are idle, connected and need nothing.

        Holds only when seen on two polls in a row, so a change announced between
        two REST calls cannot pass for "in sync".
        """
        self.scan()
        streak = [0]
        last = [None]

        def settled():
            state = self.sync_state()
            last[0] = state
            streak[0] = streak[0] + 1 if self._in_sync(state) else 0
            return streak[0] >= 2

        try:
            self.wait_until(settled, timeout, "both sides in sync", interval=0.15)
        except SyncthingError as exc:
            raise SyncthingError(f"{exc}\nlast sync state: {jsonlib.dumps(last[0], indent=1)}") \
                from None

    def pause(self, timeout: float = 30.0) -> None:
        """Pause the link: each side pauses the other device; returns once disconnected.

        While paused each side scans and keeps its own edits; resume() then makes
        concurrent edits of one file meet as a Syncthing conflict.
        """
        self._set_peer_paused(True)

        def disconnected():
            for me, other in ((0, 1), (1, 0)):
                conns = self.rest(me, "GET", "/rest/system/connections")["connections"]
                if conns.get(self._sides[other].device_id, {}).get("connected"):
                    return False
            return True

        self.wait_until(disconnected, timeout, "both daemons to disconnect after pause")

    def resume(self, timeout: float = 30.0) -> None:
        """Unpause the link on both sides and wait until the daemons are connected again."""
        self._set_peer_paused(False)
        self.wait_connected(timeout)

    def _set_peer_paused(self, paused: bool) -> None:
        # On resume the listening side goes first, so the dialler's immediate dial
        # finds it ready instead of waiting for the next redial.
        for me, other in ((1, 0), (0, 1)):
            peer = self._sides[other].device_id
            self.rest(me, "PATCH", f"/rest/config/devices/{peer}", json={"paused": paused})

    # --- internals -------------------------------------------------------

    def _side(self, side: str | int) -> _Side:
        if isinstance(side, int):
            return self._sides[side]
        for s in self._sides:
            if s.name == side:
                return s
        raise KeyError(f"no side named {side!r}; sides are {self.names}")

    def _pick(self, side: str | int | None) -> list[_Side]:
        return list(self._sides) if side is None else [self._side(side)]

    def _log_text(self, side: _Side) -> str:
        try:
            return side.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        env.pop("STMONITORED", None)
        env.update(STNORESTART="1", STNOUPGRADE="1", STNODEFAULTFOLDER="1",
                   no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost",
                   # Skips the ~1 s SHA-256 implementation benchmark at each start.
                   STHASHING="minio")
        if not self.monitor:
            # What the monitor sets for its child: the daemon runs in this very process.
            env["STMONITORED"] = "yes"
        return env

    def _generate(self, side: _Side) -> None:
        side.home.mkdir(parents=True, exist_ok=True)
        side.folder.mkdir(parents=True, exist_ok=True)
        # Syncthing refuses to run a folder whose marker is missing.
        (side.folder / ".stfolder").mkdir(exist_ok=True)
        cmd = [self._binary, "generate", f"--home={side.home}", "--no-default-folder"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=self._env(), timeout=60)
        if out.returncode != 0:
            # Releases before the subcommand CLI (< 1.17 or so) take -generate=DIR.
            self._subcommands = False
            cmd = [self._binary, f"-generate={side.home}"]
            out = subprocess.run(cmd, capture_output=True, text=True, env=self._env(),
                                 timeout=60)
        config = side.home / "config.xml"
        if out.returncode != 0 or not config.exists():
            raise SyncthingError(f"{' '.join(cmd)} failed ({out.returncode}):\n"
                                 f"{out.stdout}\n{out.stderr}")
        devices = ET.parse(config).getroot().findall("device")
        if len(devices) != 1:
            raise SyncthingError(f"expected one device in fresh {config}, found {len(devices)}")
        side.device_id = devices[0].get("id")

    def _assign_ports(self) -> None:
        ports = _free_ports(4)
        for i, side in enumerate(self._sides):
            side.gui_port, side.sync_port = ports[2 * i], ports[2 * i + 1]

    def _write_config(self, i: int) -> None:
        me, peer = self._sides[i], self._sides[1 - i]
        path = me.home / "config.xml"
        tree = ET.parse(path)
        root = tree.getroot()

        def set_child(parent: ET.Element, tag: str, text: str) -> None:
            for extra in parent.findall(tag)[1:]:
                parent.remove(extra)
            el = parent.find(tag)
            if el is None:
                el = ET.SubElement(parent, tag)
            el.text = text

        devices = root.findall("device")
        template = next(d for d in devices if d.get("id") == me.device_id)
        for d in devices:
            root.remove(d)
        # Only the first side dials. When both dial at once, Syncthing 1.19 handles
        # each side's outgoing Hello before the incoming one and both wait out the
        # 20 s Hello timeout; the second side still accepts the first's connection.
        # With discovery off, "dynamic" resolves to no address at all.
        peer_address = f"tcp://127.0.0.1:{peer.sync_port}" if i == 0 else "dynamic"
        for side, address in ((me, "dynamic"), (peer, peer_address)):
            dev = copy.deepcopy(template)
            dev.set("id", side.device_id)
            dev.set("name", side.name)
            for a in dev.findall("address"):
                dev.remove(a)
            ET.SubElement(dev, "address").text = address
            set_child(dev, "paused", "true" if side is peer and i == 0 else "false")
            set_child(dev, "autoAcceptFolders", "false")
            root.append(dev)

        gui = root.find("gui")
        gui.set("enabled", "true")
        gui.set("tls", "false")
        set_child(gui, "address", f"127.0.0.1:{me.gui_port}")
        set_child(gui, "apikey", me.api_key)

        opts = root.find("options")
        for tag, value in {
            "listenAddress": f"tcp://127.0.0.1:{me.sync_port}",
            "globalAnnounceEnabled": "false",
            "localAnnounceEnabled": "false",
            "relaysEnabled": "false",
            "natEnabled": "false",
            "startBrowser": "false",
            "urAccepted": "-1",
            "urSeen": "3",
            "autoUpgradeIntervalH": "0",
            "crashReportingEnabled": "false",
            "restartOnWakeup": "false",
            "announceLANAddresses": "false",
            "setLowPriority": "false",
            "reconnectionIntervalS": "5",  # the minimum Syncthing accepts
            "progressUpdateIntervalS": "1",
        }.items():
            set_child(opts, tag, value)
        for note in opts.findall("unackedNotificationID"):
            opts.remove(note)

        for f in root.findall("folder"):
            root.remove(f)
        folder = copy.deepcopy(root.find("defaults/folder"))
        folder.attrib.update({
            "id": self.folder_id, "label": self.folder_id, "path": str(me.folder),
            "type": "sendreceive", "rescanIntervalS": str(self.rescan_interval_s),
            "fsWatcherEnabled": "true", "fsWatcherDelayS": str(self.fs_watcher_delay_s),
        })
        dev_template = folder.find("device")
        for d in folder.findall("device"):
            folder.remove(d)
        for side in (me, peer):
            d = copy.deepcopy(dev_template)
            d.set("id", side.device_id)
            folder.append(d)
        set_child(folder, "paused", "false")
        # Keep every conflict copy (the default 10 drops old ones) and retry a
        # failed pull after 1 s instead of 60 s.
        set_child(folder, "maxConflicts", "-1")
        set_child(folder, "pullerPauseS", "1")
        root.append(folder)
        tree.write(path, encoding="unicode")

    def _launch(self, side: _Side) -> None:
        if self._subcommands:
            cmd = [self._binary, "serve", f"--home={side.home}", "--no-browser",
                   "--no-restart", "--no-upgrade", "--logflags=6"]
        else:
            cmd = [self._binary, f"-home={side.home}", "-no-browser", "-no-restart",
                   "-no-upgrade", "-logflags=6"]
        side.log_fh = open(side.log_path, "ab")
        # Own session: a Ctrl-C on the test run reaches pytest, which then stops us by pid.
        side.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=side.log_fh,
                                     stderr=subprocess.STDOUT, env=self._env(),
                                     start_new_session=True)
        side.children = {}

    def _wait_up(self, side: _Side, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if side.proc.poll() is not None:
                raise SyncthingError(f"syncthing of {side.name} exited with "
                                     f"{side.proc.returncode} on start\n{self.logs()}")
            try:
                if self.rest(side.name, "GET", "/rest/system/ping", timeout=2) == {"ping": "pong"}:
                    side.children.update(_related(side.proc.pid))
                    return
            except (OSError, SyncthingError):
                pass
            if time.monotonic() >= deadline:
                raise SyncthingError(f"syncthing of {side.name} did not answer on "
                                     f"{self.gui_url(side.name)} within {timeout}s\n{self.logs()}")
            time.sleep(0.05)

    def _stop_daemons(self) -> None:
        running = [side for side in self._sides if side.proc is not None]
        # Ask both to shut down first, then wait: the two exits overlap.
        for side in running:
            side.children.update(_related(side.proc.pid))
            if side.proc.poll() is None:
                try:
                    self.rest(side.name, "POST", "/rest/system/shutdown", timeout=2)
                except Exception:
                    pass  # not answering: signals below
        for side in running:
            proc = side.proc
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            # A monitor's child, or anything left in the daemon's process group.
            leftovers = {**side.children, **_related(proc.pid)}
            for pid, start_time in leftovers.items():
                _kill_pid(pid, start_time)
            side.proc = None
            side.children = {}
            if side.log_fh is not None:
                side.log_fh.close()
                side.log_fh = None
