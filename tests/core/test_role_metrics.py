"""The roles that serve no HTTP of their own expose /metrics on a loopback port."""

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def scrape(port: int, wanted: str, deadline: float = 60.0) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
                    if resp.status == 200 and wanted in text:
                        return text
            except aiohttp.ClientError:
                pass
            if loop.time() > end:
                raise AssertionError(f"{wanted} never appeared on :{port}/metrics")
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(("role", "wanted"), [
    ("scheduler", 'propmubi_scheduler_job_runs_total{job="reference.count_notes",outcome="ok"}'),
    ("worker", "propmubi_events_relay_active 1.0"),
])
async def test_role_serves_its_metrics(migrated, tmp_path, role, wanted):
    port = free_port()
    env = {**os.environ,
           "PROPMUBI_DATABASE__URL": migrated.database.url,
           "PROPMUBI_REDIS__URL": migrated.redis.url,
           "PROPMUBI_REDIS__KEY_PREFIX": migrated.redis.key_prefix,
           "PROPMUBI_PLUGINS__MODULES": "tests.refplugin",
           "PROPMUBI_SCHEDULER__TICK": "0.1",
           "PYTHONPATH": os.getcwd()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "propmubi", role, "--metrics-port", str(port), env=env,
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await scrape(port, wanted)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
