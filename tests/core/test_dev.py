"""`propmubi dev` as a real process tree: embedded PostgreSQL and Redis under the configured
var dir, serve and scheduler as children; Ctrl-C (SIGINT) or SIGTERM stops everything, data
survives to the next run, and even a SIGKILLed dev leaves nothing running.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pytest
import redis

from propmubi.dev import DEV_DATABASE
from propmubi.embedded import PG_PORT, short_socket_dir
from tests.core.test_server import ROOT, Proc, clean_environ, free_port, get

pytestmark = pytest.mark.slow

GONE_TIMEOUT = 15.0  # generous; the servers normally go within a second


class DevTree:
    """One var dir and the `propmubi dev` runs made on it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.var = folder / "var"
        self.pg_socket_dir = short_socket_dir(self.var / "postgres")
        self.redis_socket = short_socket_dir(self.var / "redis") / "redis.sock"
        self.runs: list[Proc] = []
        (folder / "propmubi.toml").write_text(
            "[app]\n"
            f'var_dir = "{self.var}"\n'
            "[plugins]\n"
            'modules = ["tests.refplugin"]\n'
            "[logging]\n"
            "json = false\n")

    def start(self) -> Proc:
        """`propmubi dev --no-seed` in the folder (its ./propmubi.toml is the config)."""
        env = clean_environ()
        env.update(PYTHONPATH=str(ROOT), PROPMUBI_HTTP__PORT=str(free_port()))
        proc = Proc(["dev", "--no-seed", "--port", env["PROPMUBI_HTTP__PORT"]], env,
                    self.folder, self.folder / f"dev-{len(self.runs)}.log")
        self.runs.append(proc)
        return proc

    def related(self) -> list[psutil.Process]:
        """Live processes that belong to this var dir: by command line (postgres, redis,
        whose sockets may live outside it) or by working directory (the servers chdir to
        their data; serve and scheduler run in the folder)."""
        markers = (str(self.var), str(self.pg_socket_dir), str(self.redis_socket))
        found = []
        for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
            if any(m in cmdline for m in markers) or cwd.startswith(str(self.folder)):
                found.append(proc)
        return found

    def pg_connect(self) -> Any:
        return psycopg2.connect(host=str(self.pg_socket_dir), port=PG_PORT, user="postgres",
                                dbname=DEV_DATABASE, connect_timeout=10)

    def redis_client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=10)


    def cleanup(self) -> None:
        """Teardown: stop every run and whatever of the var dir still runs."""
        for proc in self.runs:
            proc.kill()
        # A failed test must not leave servers behind for the rest of the session.
        for proc in self.related():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        # Socket folders moved to /tmp because tmp_path is too long for sun_path.
        for folder in (self.pg_socket_dir, self.redis_socket.parent):
            if not folder.is_relative_to(self.folder):
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[DevTree]:
    dev = DevTree(tmp_path)
    yield dev
    dev.cleanup()


async def wait_ready(dev: Proc) -> None:
    await dev.wait_http("/ready")
    status, body = await get(dev.port, "/ready")
    assert status == 200, body
    assert body["checks"]["database"]["ok"], body
    assert body["checks"]["redis"]["ok"], body


def descendants(dev: Proc) -> list[psutil.Process]:
    """dev's process tree now, with the roles it must contain."""
    children, commands = [], []
    for child in psutil.Process(dev.pid).children(recursive=True):
        try:
            commands.append(" ".join(child.cmdline()))
        except psutil.NoSuchProcess:
            continue  # a short-lived helper (a PostgreSQL backend, say) finished meanwhile
        children.append(child)
    for role in ("postgres -D", "redis-server", "propmubi serve", "propmubi worker",
                 "propmubi scheduler"):
        assert any(role in c for c in commands), (role, commands)
    return children


async def assert_all_gone(tree: DevTree, processes: list[psutil.Process]) -> None:
    """Wait (up to a generous limit) until none of ``processes`` nor anything else of the var
    dir runs; fail naming the survivors."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        alive = [p for p in processes if _alive(p)] + tree.related()
        if not alive:
            return
        if time.monotonic() > deadline:
            names = []
            for p in alive:
                try:
                    names.append(f"{p.pid} {' '.join(p.cmdline())}")
                except psutil.Error:
                    pass
            raise AssertionError("left running:\n" + "\n".join(names))
        await asyncio.sleep(0.1)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_ctrl_c_stops_everything_and_data_survives_to_the_next_run(
        tree: DevTree) -> None:
    first = tree.start()
    await wait_ready(first)
    assert "initialising PostgreSQL cluster" in first.output()
    processes = descendants(first)
    with tree.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept_between_runs (x int)")
        cur.execute("INSERT INTO kept_between_runs VALUES (42)")
    conn.close()
    # initdb would make a new file (the inode tells; pg_control_system() would need the
    # server to read an absolute path, which concurrent pytest sessions can make unreadable
    # to its unprivileged user by resetting /tmp/pytest-of-<user> to 0700).
    cluster_id = (tree.var / "postgres" / "data" / "PG_VERSION").stat().st_ino
    with tree.redis_client() as client:
        client.set("dev-test:kept", "yes")

    first.signal(signal.SIGINT)  # what Ctrl-C sends
    assert await first.wait() == 0, first.output()
    await assert_all_gone(tree, processes)

    second = tree.start()
    await wait_ready(second)
    assert "initialising PostgreSQL cluster" not in second.output()
    with tree.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT x FROM kept_between_runs")
        assert cur.fetchall() == [(42,)]
    conn.close()
    pg_version = tree.var / "postgres" / "data" / "PG_VERSION"
    assert pg_version.stat().st_ino == cluster_id, "the cluster was re-initialised"
    with tree.redis_client() as client:
        assert client.get("dev-test:kept") == b"yes"  # the append-only file was replayed
    processes = descendants(second)

    second.signal(signal.SIGTERM)
    assert await second.wait() == 0, second.output()
    await assert_all_gone(tree, processes)
    assert "Traceback" not in first.output() + second.output()


async def test_a_sigkilled_dev_leaves_no_server_behind(tree: DevTree) -> None:
    dev = tree.start()
    await wait_ready(dev)
    processes = descendants(dev)
    dev.signal(signal.SIGKILL)
    assert await dev.wait() == -signal.SIGKILL
    # The children were told by the kernel (PR_SET_PDEATHSIG), not by dev.
    await assert_all_gone(tree, processes)

    # And the next run starts on the same data as if nothing happened.
    again = tree.start()
    await wait_ready(again)
    again.signal(signal.SIGINT)
    assert await again.wait() == 0, again.output()
    await assert_all_gone(tree, [])
