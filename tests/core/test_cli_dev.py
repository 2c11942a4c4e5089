"""The CLI against `make dev` with no setup: while `propmubi dev` runs, any other `propmubi`
command started from the same directory (same ``app.var_dir``), without a URL in its
environment, uses dev's embedded servers and says so in one stderr line; once dev has stopped,
the command exits 2 naming the missing key, as it always did.

Real processes throughout: one `propmubi dev` (its helpers are tests/core/test_dev.py's) and, in
parallel where they are independent, the commands a developer types in a second shell.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

from propmubi.dev import DEV_FILE
from tests.core.test_dev import DevTree, assert_all_gone, wait_ready
from tests.core.test_server import PROPMUBI, ROOT, START_TIMEOUT, clean_environ

pytestmark = pytest.mark.slow

CLI_TIMEOUT = 120.0  # generous: a bound, so that a wedged command fails instead of hanging
PHONE = "+919812345678"


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


def cli(folder: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`propmubi <args>` in ``folder`` with no PROPMUBI_* variable but ``env``: a second shell."""
    environ = clean_environ()
    environ.update(PYTHONPATH=str(ROOT), **(env or {}))
    proc = subprocess.run([PROPMUBI, *args], cwd=folder, env=environ, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


async def cli_all(folder: Path, *calls: tuple[str, ...] | tuple[tuple[str, ...], dict[str, str]]
                  ) -> list[Result]:
    """Several independent commands at once (process start-up dominates each); a call is the
    arguments, or the arguments and extra environment variables."""
    def one(call: Any) -> Result:
        if call and isinstance(call[0], tuple):
            return cli(folder, *call[0], env=call[1])
        return cli(folder, *call)

    return list(await asyncio.gather(*(asyncio.to_thread(one, c) for c in calls)))


def assert_ok(result: Result) -> None:
    assert result.code == 0, result
    assert "Traceback" not in result.err, result.err


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[DevTree]:
    dev = DevTree(tmp_path)
    yield dev
    dev.cleanup()


async def sign_up(port: int, dev_output: Callable[[], str], phone: str) -> None:
    """Register ``phone`` the way a user does: ask for a code, read it from the console SMS
    provider's log line (in dev's output; the notifications plugin's ``console_sms`` writes
    "console sms to <phone>: <code> ..."), verify it."""
    base = f"http://127.0.0.1:{port}/api/v1/auth"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=START_TIMEOUT)) as s:
        async with s.post(f"{base}/otp", json={"phone": phone}) as resp:
            assert resp.status == 202, await resp.text()
            challenge = (await resp.json())["challenge_id"]
        deadline = time.monotonic() + START_TIMEOUT
        pattern = re.compile(rf"console sms to {re.escape(phone)}: (\d{{6}})", re.IGNORECASE)
        while not (found := pattern.findall(dev_output())):
            assert time.monotonic() < deadline, f"no code for {phone}:\n{dev_output()}"
            await asyncio.sleep(0.05)
        async with s.post(f"{base}/otp/verify",
                          json={"challenge_id": challenge, "code": found[-1]}) as resp:
            assert resp.status == 200, await resp.text()


async def test_commands_use_the_running_dev_servers_and_not_a_stopped_one(
        tree: DevTree) -> None:
    dev = tree.start()
    await wait_ready(dev)
    folder, var = tree.folder, tree.var
    dev_file = var / DEV_FILE
    assert stat.S_IMODE(dev_file.stat().st_mode) == 0o600
    using = f"propmubi: using the dev servers of {var}/ (started by propmubi dev)\n"

    catalog, dlq, staff, migrated, explicit, unknown = await cli_all(
        folder, ("events", "catalog"), ("events", "dlq", "list"), ("staff", "list"),
        ("migrate", "status"), (("config",), {"PROPMUBI_REDIS__URL": "redis://127.0.0.1:1/0"}),
        ("users", "grant", PHONE, "builder"))
    # Nothing but the JSON on stdout: `propmubi events catalog | jq` works.
    assert_ok(catalog)
    listed = json.loads(catalog.out)
    assert isinstance(listed, list) and listed, catalog.out
    assert all({"type", "version", "publisher", "fields"} <= set(item) for item in listed)
    assert catalog.err == ""  # it opens no server, so it has nothing to say
    assert_ok(dlq)
    assert (dlq.out, dlq.err) == ("no dead letters\n", using)
    assert_ok(staff)
    assert "admin@propmubi.local" in staff.out and staff.err == using  # dev's console admin
    assert_ok(migrated)  # exit 0: dev's schema is current

    # An explicit URL still wins over the dev file, key by key.
    assert_ok(explicit)
    shown = json.loads(explicit.out)
    assert shown["redis"]["url"] == "redis://127.0.0.1:1/0"
    assert str(tree.pg_socket_dir) in shown["database"]["url"]
    assert explicit.err == f"propmubi: using the dev PostgreSQL of {var}/ (started by " \
        "propmubi dev)\n"

    # `users grant` needs a registered user: sign up through the API, as a user would.
    assert unknown.code != 0 and "Traceback" not in unknown.err, unknown
    await sign_up(dev.port, dev.output, PHONE)
    granted = await asyncio.to_thread(cli, folder, "users", "grant", PHONE, "builder")
    assert_ok(granted)
    assert PHONE in granted.out and "builder" in granted.out, granted
    assert granted.err == using

    written = dev_file.read_text()
    dev.signal(signal.SIGINT)
    assert await dev.wait() == 0, dev.output()
    await assert_all_gone(tree, [])
    assert not dev_file.exists(), "dev left its file behind"

    # After dev: the old error, naming the key and `make dev`. A file left by a dev that
    # could not remove it (SIGKILL) is recognised as stale.
    dev_file.write_text(written)
    stopped, catalog_after = await cli_all(folder, ("staff", "list"), ("events", "catalog"))
    assert stopped.code == 2, stopped
    [line] = stopped.err.splitlines()
    assert line.startswith("propmubi: configuration error: database.url: required"), line
    assert "make dev" in line and f"not using {var}/{DEV_FILE}" in line, line
    assert stopped.out == ""
    assert_ok(catalog_after)
    assert json.loads(catalog_after.out) == listed
    assert "Traceback" not in dev.output()


def test_events_catalog_needs_no_server(tmp_path: Path) -> None:
    """No dev, no URL, no var dir: the catalog lists what the plugins declare."""
    result = cli(tmp_path, "events", "catalog")
    assert_ok(result)
    assert isinstance(json.loads(result.out), list)
    assert result.err == ""
    needs_db = cli(tmp_path, "events", "dlq", "list")
    assert needs_db.code == 2 and "redis.url: required" not in needs_db.err
    assert "database.url: required" in needs_db.err and "make dev" in needs_db.err
    assert not (tmp_path / "var").exists()
