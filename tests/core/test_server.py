"""`propmubi serve` and `propmubi scheduler` as real processes: readiness, graceful drain on
SIGTERM, the drain's time limit, SO_REUSEPORT, refusing an unmigrated schema.

Each test runs the installed ``propmubi`` executable against its own migrated database and
Redis key prefix, with the reference plugin, in ``tmp_path`` (so no ./propmubi.toml is read).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2
import pytest

from propmubi import testing
from propmubi.config import Config

ROOT = Path(__file__).resolve().parents[2]
PROPMUBI = str(Path(sys.executable).with_name("propmubi"))
START_TIMEOUT = 60.0  # generous: only there so that a broken start fails instead of hanging
STOP_TIMEOUT = 30.0
EXIT_CONFIG = 2
EXIT_SCHEMA = 3
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=START_TIMEOUT)

pytestmark = pytest.mark.slow


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ() -> dict[str, str]:
    """This process's environment without anything that would configure a child for us."""
    dropped = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PROPMUBI_") and k not in dropped}


def server_environ(config: Config, **extra: str) -> dict[str, str]:
    """Environment for a `propmubi` child on the test's database and key prefix."""
    env = clean_environ()
    env.update(
        PROPMUBI_DATABASE__URL=config.database.url,
        PROPMUBI_REDIS__URL=config.redis.url,
        PROPMUBI_REDIS__KEY_PREFIX=config.redis.key_prefix,
        PROPMUBI_PLUGINS__MODULES="tests.refplugin",
        PROPMUBI_APP__ENVIRONMENT="test",
        PROPMUBI_HTTP__HOST="127.0.0.1",
        PROPMUBI_HTTP__PORT=str(free_port()),
        PROPMUBI_LOGGING__JSON="false",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class Proc:
    """A `propmubi` child process whose output goes to a file (a pipe nobody reads blocks)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path,
                 **popen: Any) -> None:
        self.log = log
        self.env = env
        with open(log, "ab") as out:
            self.popen = subprocess.Popen([PROPMUBI, *args], env=env, cwd=cwd,
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, **popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def port(self) -> int:
        return int(self.env["PROPMUBI_HTTP__PORT"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    async def wait(self, within: float = STOP_TIMEOUT) -> int:
        """The exit code, waiting without blocking the event loop."""
        deadline = time.monotonic() + within
        while self.popen.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pid {self.pid} still running after {within:g}s:\n"
                                     f"{self.output()}")
            await asyncio.sleep(0.05)
        return self.popen.returncode

    async def wait_for_output(self, text: str, within: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        while text not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(f"exited with {self.popen.returncode} before logging "
                                     f"{text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the output after {within:g}s:\n"
                                     f"{self.output()}")
            await asyncio.sleep(0.05)

    async def wait_http(self, path: str = "/health", within: float = START_TIMEOUT) -> None:
        """Poll ``path`` until it answers 200 (the process must stay alive meanwhile)."""
        deadline = time.monotonic() + within
        url = f"http://127.0.0.1:{self.port}{path}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                if self.popen.poll() is not None:
                    raise AssertionError(f"exited with {self.popen.returncode} before "
                                         f"{path} answered:\n{self.output()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} not ready after {within:g}s:\n"
                                         f"{self.output()}")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """Make sure the process is gone (teardown; a passing test already stopped it)."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


async def in_flight(port: int) -> float:
    """The server's ``propmubi_http_requests_in_flight`` gauge (this request included)."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    for line in text.splitlines():
        if line.startswith("propmubi_http_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no propmubi_http_requests_in_flight in /metrics")


async def wait_in_flight(port: int, count: int, within: float = START_TIMEOUT) -> None:
    """Wait until ``count`` requests besides the probe itself are being handled."""
    deadline = time.monotonic() + within
    while await in_flight(port) < count + 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} request(s) in flight")
        await asyncio.sleep(0.02)


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


async def get(port: int, path: str) -> tuple[int, Any]:
    # A limit, so that a wedged server fails the test instead of hanging it for 5 minutes.
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, await resp.json(content_type=None)


async def test_serve_drains_in_flight_requests_on_sigterm(migrated: Config, spawn: Any) -> None:
    proc = spawn(["serve"], server_environ(migrated))
    await proc.wait_http()
    status, body = await get(proc.port, "/api/v1/reference/notes")
    assert status == 200, body

    # Long enough to be still in flight however slowly the socket closes on a busy machine.
    slow = asyncio.create_task(get(proc.port, "/api/v1/reference/sleep?seconds=10"))
    await wait_in_flight(proc.port, 1)
    proc.signal(signal.SIGTERM)

    # The listening socket closes at once; the in-flight request is still being served.
    deadline = time.monotonic() + STOP_TIMEOUT
    while not await refuses_connections(proc.port):
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        await asyncio.sleep(0.02)
    assert not slow.done(), "the in-flight request ended before new connections were refused"

    status, body = await asyncio.wait_for(slow, STOP_TIMEOUT)
    assert (status, body) == (200, {"slept": 10.0})
    assert await proc.wait() == 0, proc.output()
    assert "draining in-flight requests" in proc.output()


async def test_serve_cuts_requests_longer_than_the_grace(migrated: Config, spawn: Any) -> None:
    proc = spawn(["serve"], server_environ(migrated, PROPMUBI_HTTP__SHUTDOWN_GRACE="1"))
    await proc.wait_http()
    slow = asyncio.create_task(get(proc.port, "/api/v1/reference/sleep?seconds=30"))
    await wait_in_flight(proc.port, 1)
    proc.signal(signal.SIGTERM)

    # Cut: the client sees the connection end without a response, well before the 30 s
    # sleep would have ended, and the process exits cleanly.
    with pytest.raises((aiohttp.ClientError, OSError)):
        await asyncio.wait_for(slow, STOP_TIMEOUT)
    assert await proc.wait() == 0, proc.output()


async def test_reuse_port_lets_two_processes_share_the_port(migrated: Config,
                                                            spawn: Any) -> None:
    env = server_environ(migrated)
    first = spawn(["serve", "--reuse-port"], env)
    await first.wait_http()
    second = spawn(["serve", "--reuse-port"], env)
    await second.wait_for_output("listening on")
    assert second.popen.poll() is None, second.output()

    # With the first one gone, whatever answers on the port is the second process.
    first.signal(signal.SIGTERM)
    assert await first.wait() == 0, first.output()
    for _ in range(10):  # new connections each time
        status, body = await get(second.port, "/api/v1/reference/notes")
        assert status == 200, body
    second.signal(signal.SIGTERM)
    assert await second.wait() == 0, second.output()


async def test_without_reuse_port_a_second_process_cannot_bind(migrated: Config,
                                                               spawn: Any) -> None:
    env = server_environ(migrated)
    first = spawn(["serve"], env)
    await first.wait_http()
    second = spawn(["serve"], env)
    assert await second.wait(START_TIMEOUT) != 0
    assert "address already in use" in second.output().lower()
    first.signal(signal.SIGTERM)
    assert await first.wait() == 0, first.output()


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A unix socket path short enough for sun_path (tmp_path may not be)."""
    with tempfile.TemporaryDirectory(prefix="pm-", dir="/tmp") as folder:
        yield Path(folder) / "web.sock"


async def test_serve_refuses_a_unix_socket_without_trust_forwarded(
        migrated: Config, socket_path: Path, spawn: Any) -> None:
    # Every client of a unix socket has the same unknown address: per-IP limits and the
    # console's lockout would be site-wide.
    proc = spawn(["serve"], server_environ(migrated,
                                           PROPMUBI_HTTP__UNIX_SOCKET=str(socket_path)))
    assert await proc.wait(START_TIMEOUT) == EXIT_CONFIG, proc.output()
    assert "http.unix_socket" in proc.output()
    assert "http.trust_forwarded" in proc.output()


async def test_serve_on_a_unix_socket_behind_a_trusted_proxy(
        migrated: Config, socket_path: Path, spawn: Any) -> None:
    proc = spawn(["serve", "--unix-socket", str(socket_path)],
                 server_environ(migrated, PROPMUBI_HTTP__TRUST_FORWARDED="true"))
    await proc.wait_for_output("listening on")
    connector = aiohttp.UnixConnector(path=str(socket_path))
    async with aiohttp.ClientSession(connector=connector, timeout=CLIENT_TIMEOUT) as session:
        async with session.get("http://proxy/health",
                               headers={"X-Forwarded-For": "203.0.113.7"}) as resp:
            assert resp.status == 200, await resp.text()
    proc.signal(signal.SIGTERM)
    assert await proc.wait() == 0, proc.output()


@pytest.fixture
def unmigrated_url(test_servers: testing.TestServers) -> Iterator[str]:
    name = f"propmubi_empty_{uuid.uuid4().hex[:10]}"
    url = testing.create_database(test_servers, name)
    yield url
    testing.drop_database(test_servers, name)


@pytest.mark.parametrize("role", ["serve", "scheduler"])
async def test_refuses_to_start_on_an_unmigrated_database(
        role: str, migrated: Config, unmigrated_url: str, spawn: Any) -> None:
    env = server_environ(migrated, PROPMUBI_DATABASE__URL=unmigrated_url)
    proc = spawn([role], env)
    assert await proc.wait(START_TIMEOUT) == EXIT_SCHEMA, proc.output()
    assert "run `propmubi migrate up`" in proc.output()
    with psycopg2.connect(unmigrated_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = 'public'")
        assert cur.fetchone() == (0,), "serve must never migrate by itself"
    conn.close()


def job_runs(url: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reference_job_runs")
        (count,) = cur.fetchone()
    conn.close()
    return count


async def test_scheduler_runs_the_reference_job_and_stops_on_sigterm(
        migrated: Config, spawn: Any) -> None:
    proc = spawn(["scheduler"], server_environ(migrated))
    await proc.wait_for_output("reference.count_notes")
    deadline = time.monotonic() + START_TIMEOUT
    while not await asyncio.to_thread(job_runs, migrated.database.url):
        assert proc.popen.poll() is None, proc.output()
        assert time.monotonic() < deadline, f"the job never ran:\n{proc.output()}"
        await asyncio.sleep(0.1)
    proc.signal(signal.SIGTERM)
    assert await proc.wait() == 0, proc.output()
    assert "Traceback" not in proc.output()
