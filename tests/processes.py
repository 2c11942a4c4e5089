"""Real ``propmubi <role>`` processes for crash tests, and bounded waits on what they do.

A crash test starts ``propmubi worker``, ``serve`` or ``scheduler`` subprocesses on the test's
own database and Redis prefix (:class:`Processes`), kills one with SIGKILL at a point the test
has made certain (:func:`sigkill`), restarts it and checks the outcome. Every wait is bounded by
:data:`DEADLINE` (:func:`until`); no duration is ever asserted.

A test module gets its processes from a fixture of its own::

    @pytest.fixture
    def procs(migrated: Config, tmp_path: Path) -> Iterator[Processes]:
        with Processes.running(migrated, tmp_path) as spawned:
            yield spawned
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from propmubi.config import Config
from propmubi.embedded import die_with_parent
from tests.plugins.auth.conftest import AUTH_SETTINGS

__all__ = ["DEADLINE", "ROOT", "Processes", "consumer_of", "dead_letters", "free_port",
           "pending", "settled", "sigkill", "streams_of", "toml", "until"]

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 60.0  # seconds any awaited condition may take; never an assertion on durations


# -- processes ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml(tables: dict[str, dict[str, Any]]) -> str:
    """A TOML file of flat tables (JSON strings, numbers, booleans and lists are valid TOML
    values)."""
    return "\n".join(f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                             for key, value in values.items())
                     for name, values in tables.items())


class Processes:
    """Starts ``propmubi <role>`` subprocesses on the test's database and Redis prefix (the
    plugins the test database is migrated with, the test's auth keys, fast event retries,
    and ``env``, which every process also gets); kills whatever is left at the end and
    prints the tail of each one's log."""

    def __init__(self, config: Config, folder: Path, **env: str) -> None:
        self.config = config
        self.folder = folder
        self.extra_env = env
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.config_file = ""

    @classmethod
    @contextlib.contextmanager
    def running(cls, config: Config, folder: Path, **env: str) -> Iterator[Processes]:
        """Processes for one test, cleaned up when the block ends (a test's fixture)."""
        spawned = cls(config, folder, **env)
        try:
            yield spawned
        finally:
            spawned.cleanup()

    def use_settings(self, tables: dict[str, dict[str, Any]]) -> None:
        """Give later processes a configuration file with these tables (a provider's nested
        table, ``[plugins.payments.razorpay]``, cannot come from the environment)."""
        path = self.folder / "crash-test.toml"
        path.write_text(toml(tables))
        self.config_file = str(path)

    def env(self, **extra: str) -> dict[str, str]:
        dropped = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PROPMUBI_") and k not in dropped}
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                       if p),
            PROPMUBI_DATABASE__URL=self.config.database.url,
            PROPMUBI_REDIS__URL=self.config.redis.url,
            PROPMUBI_REDIS__KEY_PREFIX=self.config.redis.key_prefix,
            PROPMUBI_PLUGINS__MODULES="tests.refplugin",
            PROPMUBI_APP__ENVIRONMENT="test",
            PROPMUBI_LOGGING__JSON="false",
            PROPMUBI_RATELIMIT__ENABLED="false",
            PROPMUBI_PLUGINS__AUTH__SIGNING_KEY=AUTH_SETTINGS["signing_key"],
            PROPMUBI_PLUGINS__AUTH__OTP_SECRET=AUTH_SETTINGS["otp_secret"],
            PROPMUBI_EVENTS__CLAIM_IDLE="1",
            PROPMUBI_EVENTS__RETRY_BASE="0.05",
            PROPMUBI_EVENTS__RETRY_SCAN="0.05",
            PROPMUBI_EVENTS__BLOCK_MS="100",
            # A process the test keeps waiting on a lock must not give up by itself first.
            PROPMUBI_DATABASE__STATEMENT_TIMEOUT_MS="120000",
        )
        if self.config_file:
            env["PROPMUBI_CONFIG"] = self.config_file
        env.update(self.extra_env)
        env.update(extra)
        return env

    def start(self, role: str, **env: str) -> subprocess.Popen[bytes]:
        log_path = self.folder / f"{role}-{len(self.procs)}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "propmubi", role], cwd=self.folder,
                env=self.env(**env), stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT,
                # Even if pytest itself is SIGKILLed, no child outlives it.
                preexec_fn=die_with_parent(signal.SIGKILL))
        self.procs.append((proc, log_path))
        return proc

    def worker(self, **env: str) -> subprocess.Popen[bytes]:
        return self.start("worker", **env)

    def scheduler(self, **env: str) -> subprocess.Popen[bytes]:
        return self.start("scheduler", **env)

    async def serve(self) -> tuple[subprocess.Popen[bytes], str]:
        """A web process on a free port, once ``/health`` answers; it and its base URL."""
        port = free_port()
        proc = self.start("serve", PROPMUBI_HTTP__HOST="127.0.0.1",
                          PROPMUBI_HTTP__PORT=str(port), PROPMUBI_HTTP__REQUEST_TIMEOUT="120",
                          # Every hold of the test at once, each on its own connection.
                          PROPMUBI_DATABASE__POOL_MAX="60")
        base = f"http://127.0.0.1:{port}"

        async def healthy() -> bool:
            assert proc.poll() is None, f"serve exited with {proc.returncode}"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, \
                    s.get(f"{base}/health") as resp:
                return resp.status == 200

        await until(healthy, "the web process to answer /health")
        return proc, base

    def cleanup(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for proc, log_path in self.procs:  # shown when a test fails
            lines = log_path.read_text(errors="replace").splitlines()
            print(f"---- {log_path.name} (pid {proc.pid}, exit {proc.returncode}), last lines")
            print("\n".join(lines[-40:]))


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, f"pid {proc.pid} died before the test killed it"
    proc.kill()
    assert proc.wait(DEADLINE) == -signal.SIGKILL


def consumer_of(proc: subprocess.Popen[bytes]) -> str:
    """The consumer name a worker process uses in every group (``consumer_name``)."""
    return f"{socket.gethostname()}:{proc.pid}"


# -- observing ------------------------------------------------------------------------------

async def until(check: Callable[[], Awaitable[Any]], what: str, within: float = DEADLINE
                ) -> Any:
    """Poll ``check`` until it returns something truthy; errors (a process starting) count
    as "not yet". Fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            result = await check()
        except Exception as exc:
            result, last = None, exc
        else:
            last = result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(0.05)


async def streams_of(services: Any, group: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event stream ``group`` reads, with the group's XINFO on it."""
    found = []
    async for key in services.redis.scan_iter(match=f"{services.keys.prefix}events:*"):
        if await services.redis.type(key) != "stream":
            continue
        groups = {g["name"]: g for g in await services.redis.xinfo_groups(key)}
        if group in groups:
            found.append((key, groups[group]))
    return found


async def pending(services: Any, group: str) -> int:
    """Entries ``group`` has read and not acknowledged (XPENDING), over all its streams."""
    total = 0
    for stream, _ in await streams_of(services, group):
        total += int((await services.redis.xpending(stream, group))["pending"])
    return total


async def settled(services: Any, group: str) -> bool:
    """``group`` has read everything on its streams and acknowledged all of it."""
    for stream, info in await streams_of(services, group):
        last = await services.redis.xrevrange(stream, count=1)
        if int(info["pending"]) or (last and info["last-delivered-id"] != last[0][0]):
            return False
    return True


async def dead_letters(services: Any) -> int:
    """Entries in every group's dead-letter stream."""
    total = 0
    async for key in services.redis.scan_iter(match=services.keys.dead_letters("*")):
        total += await services.redis.xlen(key)
    return total
