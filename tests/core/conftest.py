"""Fixtures shared by the core tests."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_server import Proc


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """``spawn(args, env)`` starts `propmubi <args>` in ``tmp_path``; all are stopped at the
    end of the test, whatever happened."""
    procs: list[Proc] = []

    def start(args: list[str], env: dict[str, str], **popen: Any) -> Proc:
        proc = Proc(args, env, tmp_path, tmp_path / f"{args[0]}-{len(procs)}.log", **popen)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
