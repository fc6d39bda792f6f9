"""Processes of a bench run: started pinned to a core set, waited for, measured, stopped.

Everything listens on 127.0.0.1 only. CPU time is read from ``/proc`` for a process and all of its
descendants (``cfgate serve --processes 2`` forks), so a phase's CPU share is the difference of
two readings divided by the wall time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A bench step could not be carried out (the scenario is reported as failed)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def cpu_layout() -> tuple[set[int], set[int]]:
    """(server cores, client cores): the first usable core, and the next one (the same on one core)."""
    usable = sorted(os.sched_getaffinity(0))
    server = {usable[0]}
    client = {usable[1]} if len(usable) > 1 else {usable[0]}
    return server, client


class Proc:
    """A child process pinned to ``cpus``, output kept in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        cpus: Iterable[int],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cpus = set(cpus)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        cpus_now = self.cpus
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environ,
            cwd=ROOT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus_now),
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 2000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-limit:]

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with _suppress_missing():
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with _suppress_missing():
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        else:
            # The leader is gone; its group (forked workers) may not be.
            with _suppress_missing():
                os.killpg(self.pid, signal.SIGKILL)
        self._log.close()


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, ProcessLookupError | PermissionError)


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_port(port: int, proc: Proc | None = None, timeout: float = 60.0) -> None:
    """Wait until something accepts on 127.0.0.1:``port`` (fail early if ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited ({proc.popen.returncode}): {proc.output()}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents[int(entry)], cpu[int(entry)] = stat
    total = 0.0
    for pid in cpu:
        walk = pid
        for _ in range(64):
            if walk == root:
                total += cpu[pid]
                break
            walk = parents.get(walk, 0)
            if walk <= 1:
                break
    return total


class CpuMeter:
    """CPU share (1.0 = one core) of some processes over a phase."""

    def __init__(self, procs: Iterable[Proc]) -> None:
        self.procs = list(procs)
        self._start = [p.cpu_seconds() for p in self.procs]
        self._wall = time.monotonic()

    def shares(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._wall, 1e-9)
        return {p.name: round((p.cpu_seconds() - s) / wall, 3) for p, s in zip(self.procs, self._start, strict=True)}
