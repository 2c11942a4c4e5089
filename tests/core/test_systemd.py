"""The systemd units in systemd/ and the processes' side of ``Type=notify``.

The units are checked by ``systemd-analyze verify`` (on copies whose ExecStart names the real
executable, which verify requires to exist) and for the directives production relies on. The
notify protocol is checked end to end: a datagram socket stands in for systemd's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from propmubi import systemd
from propmubi.cli import EXIT_CONFIG, EXIT_SCHEMA
from propmubi.config import Config, load_config
from tests.core.test_server import (
    PROPMUBI,
    START_TIMEOUT,
    Proc,
    get,
    job_runs,
    server_environ,
    wait_in_flight,
)

UNITS = Path(__file__).resolve().parents[2] / "systemd"
INSTALLED_EXE = "/opt/propmubi/venv/bin/propmubi"
WEB = "propmubi-web@.service"
SCHEDULER = "propmubi-scheduler.service"
WORKER = "propmubi-worker@.service"
MIGRATE = "propmubi-migrate.service"
TARGET = "propmubi.target"
SERVICES = (WEB, SCHEDULER, WORKER, MIGRATE)
LONG_RUNNING = (WEB, SCHEDULER, WORKER)

# Directive -> required value, in every service.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "User": "propmubi",
    "Group": "propmubi",
    "EnvironmentFile": "-/etc/propmubi/env",
    "KillSignal": "SIGTERM",
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """``{section: {key: [value per line]}}``; repeated keys keep every line."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}: {line!r} outside a section"
        assert not line.endswith("\\"), f"{path.name}: keep directives on one line"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a directive: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def last(unit: Unit, section: str, key: str) -> str:
    """The effective value of a single-valued directive (the last assignment wins)."""
    values = unit.get(section, {}).get(key)
    assert values, f"{key}= missing from [{section}]"
    return values[-1]


def words(unit: Unit, section: str, key: str) -> list[str]:
    """Every word of a list-valued directive, across its lines."""
    return [w for value in unit.get(section, {}).get(key, []) for w in value.split()]


def seconds(value: str) -> float:
    """A systemd time span such as ``35s``, ``1min 30s`` or ``30`` in seconds."""
    scale = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * scale[unit]
    assert total > 0, f"not a time span: {value!r}"
    return total


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {name: parse_unit(UNITS / name) for name in (*SERVICES, TARGET)}


def test_the_unit_files_exist() -> None:
    present = {p.name for p in UNITS.iterdir() if p.suffix in {".service", ".target"}}
    assert present == {*SERVICES, TARGET}


@pytest.fixture
def verifiable_units(tmp_path: Path) -> Path:
    """Copies of the units whose ExecStart names this checkout's executable."""
    folder = tmp_path / "units"
    folder.mkdir()
    for name in (*SERVICES, TARGET):
        text = (UNITS / name).read_text()
        if name in SERVICES:
            assert INSTALLED_EXE in text, name
        (folder / name).write_text(text.replace(INSTALLED_EXE, PROPMUBI))
    return folder


def test_systemd_analyze_verify_finds_nothing_to_say(verifiable_units: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/test-system-deps installs it)")
    paths = [str(verifiable_units / n) for n in (*SERVICES, TARGET)]
    # Instances too: a template is only fully checked through one.
    paths += [str(verifiable_units / f"propmubi-web@{i}.service") for i in (1, 2)]
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    result = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True,
                            cwd=verifiable_units, env=env, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Lines about other units of this machine are not ours to judge.
    ours = [line for line in output.splitlines()
            if "propmubi" in line or str(verifiable_units) in line]
    assert ours == [], "\n".join(ours)


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened(units: dict[str, Unit], name: str) -> None:
    unit = units[name]
    for key, wanted in HARDENING.items():
        assert " ".join(words(unit, "Service", key)) == wanted, f"{name}: {key}="
    environment = words(unit, "Service", "Environment")
    assert "PROPMUBI_CONFIG=/etc/propmubi/propmubi.toml" in environment
    credentials = {v.split(":", 1)[0] for v in words(unit, "Service", "LoadCredential")}
    assert "database.url" in credentials
    if name != MIGRATE:
        assert "redis.url" in credentials
    # The config reads $CREDENTIALS_DIRECTORY/<section>.<key>: the names must be real keys.
    config = load_config(environ={}, use_default_path=False)
    for credential in credentials:
        section, key = credential.split(".")
        assert hasattr(getattr(config, section), key), credential
    assert last(unit, "Service", "ExecStart").startswith(INSTALLED_EXE + " ")
    assert last(unit, "Service", "StateDirectory") == "propmubi"
    # MemoryDenyWriteExecute is on: test_runs_under_memory_deny_write_execute backs it.
    assert last(unit, "Service", "MemoryDenyWriteExecute") == "yes"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_notify_and_stop_gracefully(units: dict[str, Unit],
                                                          name: str) -> None:
    unit = units[name]
    assert last(unit, "Service", "Type") == "notify"
    assert last(unit, "Service", "NotifyAccess") == "main"
    assert last(unit, "Service", "Restart") == "on-failure"
    assert seconds(last(unit, "Service", "WatchdogSec")) > 0
    grace = load_config(environ={}, use_default_path=False).http.shutdown_grace
    assert seconds(last(unit, "Service", "TimeoutStopSec")) > grace, \
        "systemd would SIGKILL the web process in the middle of its drain"
    # A bad configuration or a schema behind is not fixed by restarting.
    prevented = set(words(unit, "Service", "RestartPreventExitStatus"))
    assert {str(EXIT_CONFIG), str(EXIT_SCHEMA)} <= prevented


def test_web_instances_share_the_port(units: dict[str, Unit]) -> None:
    exec_start = last(units[WEB], "Service", "ExecStart").split()
    assert exec_start[1:] == ["serve", "--reuse-port"]
    assert last(units[SCHEDULER], "Service", "ExecStart").split()[1:] == [
        "scheduler", "--metrics-port", "9100"]
    assert last(units[WORKER], "Service", "ExecStart").split()[1:] == [
        "worker", "--metrics-port", "910%i"]
    assert last(units[MIGRATE], "Service", "ExecStart").split()[1:] == ["migrate", "up"]


def test_migrate_runs_once_before_web_and_scheduler(units: dict[str, Unit]) -> None:
    migrate = units[MIGRATE]
    assert last(migrate, "Service", "Type") == "oneshot"
    assert last(migrate, "Service", "RemainAfterExit") == "yes"
    assert SCHEDULER in words(migrate, "Unit", "Before")
    for name in LONG_RUNNING:
        # The template's After= orders every instance (Before= cannot name a template).
        assert MIGRATE in words(units[name], "Unit", "Requires"), name
        assert MIGRATE in words(units[name], "Unit", "After"), name
        assert MIGRATE not in words(units[name], "Unit", "Before"), name
    assert not {WEB, SCHEDULER, WORKER} & set(words(migrate, "Unit", "After"))


def test_target_wants_every_service(units: dict[str, Unit]) -> None:
    wanted = set(words(units[TARGET], "Unit", "Wants"))
    assert {MIGRATE, SCHEDULER, "propmubi-web@1.service", "propmubi-web@2.service",
            "propmubi-worker@1.service"} <= wanted
    for name in SERVICES:
        assert TARGET in words(units[name], "Unit", "PartOf"), name
        assert TARGET in words(units[name], "Install", "WantedBy"), name


def test_every_propmubi_unit_named_exists(units: dict[str, Unit]) -> None:
    names = set(units)
    for name, unit in units.items():
        for section in unit.values():
            for key in ("Wants", "Requires", "After", "Before", "PartOf", "WantedBy"):
                for other in section.get(key, []):
                    for word in other.split():
                        if word.startswith("propmubi"):
                            template = re.sub(r"@[^.]+\.", "@.", word)
                            assert template in names, f"{name} {key}={word}"


# ----------------------------------------------------------------------- the notify protocol


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    folder = None
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        folder = Path(tempfile.mkdtemp(prefix="pm-notify-"))
        path = folder / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield sock, str(path)
    finally:
        sock.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class Notifications:
    """Reads the notify socket in the background (as systemd does, so that senders never find
    its queue full); one list entry per ``KEY=value`` line received."""

    def __init__(self, sock: socket.socket, proc: Proc) -> None:
        self.sock = sock
        self.proc = proc
        self.lines: list[str] = []
        self.reading = True
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            if self.reading:
                self.lines += data.decode().splitlines()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def until(self, line: str, count: int = 1, within: float = START_TIMEOUT) -> None:
        """Wait until ``line`` arrived ``count`` times in all."""
        deadline = time.monotonic() + within
        while self.lines.count(line) < count:
            if self._task.done():
                self._task.result()
            if self.proc.popen.poll() is not None:
                await asyncio.sleep(0.2)  # what was sent before the exit may still be queued
                if self.lines.count(line) >= count:
                    return
                raise AssertionError(f"exited with {self.proc.popen.returncode} before "
                                     f"{line!r} x{count}; got {self.lines}:\n"
                                     f"{self.proc.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r} x{count} not received; got {self.lines}:\n"
                                     f"{self.proc.output()}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def notifications(notify_socket: tuple[socket.socket, str]) -> AsyncIterator[Any]:
    """``notifications(proc)`` starts reading the notify socket for ``proc``."""
    readers: list[Notifications] = []

    def start(proc: Proc) -> Notifications:
        readers.append(Notifications(notify_socket[0], proc))
        return readers[-1]

    yield start
    for reader in readers:
        await reader.close()


@pytest.mark.slow
async def test_serve_notifies_ready_watchdog_and_stopping(
        migrated: Config, spawn: Any, notify_socket: tuple[socket.socket, str],
        notifications: Any) -> None:
    proc = spawn(["serve"], server_environ(migrated, NOTIFY_SOCKET=notify_socket[1],
                                           WATCHDOG_USEC="200000"))
    notes = notifications(proc)
    await notes.until("READY=1")
    # READY=1 comes after the socket listens: no polling needed.
    status, _ = await get(proc.port, "/health")
    assert status == 200
    await notes.until("WATCHDOG=1", count=2)

    # The watchdog keeps being fed while in-flight requests drain.
    # In flight until well after STOPPING=1 and the next ping, however busy the machine.
    slow = asyncio.create_task(get(proc.port, "/api/v1/reference/sleep?seconds=5"))
    await wait_in_flight(proc.port, 1)
    proc.signal(signal.SIGTERM)
    await notes.until("STOPPING=1")
    pings = notes.lines.count("WATCHDOG=1")
    await notes.until("WATCHDOG=1", count=pings + 1)
    assert (await slow)[0] == 200
    assert await proc.wait() == 0, proc.output()
    assert notes.lines.count("READY=1") == 1
    assert notes.lines.index("READY=1") < notes.lines.index("STOPPING=1")


@pytest.mark.slow
async def test_scheduler_notifies_ready_watchdog_and_stopping(
        migrated: Config, spawn: Any, notify_socket: tuple[socket.socket, str],
        notifications: Any) -> None:
    proc = spawn(["scheduler"], server_environ(migrated, NOTIFY_SOCKET=notify_socket[1],
                                               WATCHDOG_USEC="200000"))
    notes = notifications(proc)
    await notes.until("READY=1")
    await notes.until("WATCHDOG=1", count=2)
    proc.signal(signal.SIGTERM)
    await notes.until("STOPPING=1")
    assert await proc.wait() == 0, proc.output()


@pytest.mark.slow
async def test_a_full_notify_queue_does_not_wedge_the_server(
        migrated: Config, spawn: Any, notify_socket: tuple[socket.socket, str],
        notifications: Any) -> None:
    """A datagram queue that nobody empties (a stuck systemd) blocks a blocking sender: the
    event loop must not be that sender."""
    proc = spawn(["serve"], server_environ(migrated, NOTIFY_SOCKET=notify_socket[1],
                                           WATCHDOG_USEC="20000"))
    notes = notifications(proc)
    await notes.until("READY=1")
    await notes.close()  # from now on nobody reads: the queue fills within milliseconds
    for _ in range(20):
        status, _ = await get(proc.port, "/health")
        assert status == 200
        await asyncio.sleep(0.05)
    proc.signal(signal.SIGTERM)
    assert await proc.wait() == 0, proc.output()


def test_sd_notify_outside_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.sd_notify("READY=1") is False


def test_sd_notify_survives_a_vanished_socket(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert systemd.sd_notify("WATCHDOG=1") is False


def test_sd_notify_sends_the_message(notify_socket: tuple[socket.socket, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert systemd.sd_notify("STATUS=testing") is True
    sock.setblocking(True)
    sock.settimeout(10)
    assert sock.recv(4096) == b"STATUS=testing"


@pytest.mark.parametrize(("usec", "pid", "expected"), [
    ("", "", None),
    ("0", "", None),
    ("200000", "", 0.1),
    ("30000000", "self", 15.0),
    ("30000000", "other", None),  # inherited by a child: the watchdog is the parent's
    ("junk", "", None),
])
def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch, usec: str, pid: str,
                           expected: float | None) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    pids = {"": "", "self": str(os.getpid()), "other": str(os.getpid() + 1)}
    monkeypatch.setenv("WATCHDOG_PID", pids[pid])
    assert systemd.watchdog_interval() == expected


# ------------------------------------------------------------------ MemoryDenyWriteExecute

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> Any:
    """A preexec_fn applying the kernel's form of MemoryDenyWriteExecute= (PR_SET_MDWE, Linux
    6.3+), which everything the child runs inherits. libc is loaded before the fork."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")

    return preexec


def _mdwe_supported() -> bool:
    probe = ("import ctypes, sys; libc = ctypes.CDLL(None); "
             f"sys.exit(libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0)")
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


@pytest.mark.slow
async def test_runs_under_memory_deny_write_execute(migrated: Config, spawn: Any) -> None:
    """The units set MemoryDenyWriteExecute=yes; prove the web and scheduler processes, with
    every C extension they load, work without writable+executable memory."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+) to emulate the setting")
    env = server_environ(migrated)
    web = spawn(["serve"], env, preexec_fn=deny_write_execute())
    scheduler = spawn(["scheduler"], env, preexec_fn=deny_write_execute())
    await web.wait_http("/ready")
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as session:
        async with session.post("/api/v1/reference/notes",
                                json={"text": "mdwe", "tags": ["x"]}) as resp:
            assert resp.status == 201, await resp.text()
        for path in ("/api/v1/reference/notes", "/api/v1/openapi.json", "/metrics"):
            async with session.get(path) as resp:
                assert resp.status == 200, (path, await resp.text())
        # The error path (validation, problem+json) too.
        async with session.get("/api/v1/reference/notes/not-a-uuid") as resp:
            assert 400 <= resp.status < 500, await resp.text()
    deadline = time.monotonic() + START_TIMEOUT
    while not await asyncio.to_thread(job_runs, migrated.database.url):
        assert scheduler.popen.poll() is None, scheduler.output()
        assert time.monotonic() < deadline, f"the job never ran:\n{scheduler.output()}"
        await asyncio.sleep(0.1)
    for proc in (web, scheduler):
        proc.signal(signal.SIGTERM)
    for proc in (web, scheduler):
        assert await proc.wait() == 0, proc.output()
        assert "Traceback" not in proc.output(), proc.output()
