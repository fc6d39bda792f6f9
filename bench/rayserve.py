"""Ray Serve as the peer: the same echo function behind Ray Serve's HTTP proxy, kept on loopback.

Ray binds some internal ports to the machine's network address even when told 127.0.0.1; with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and a 127.0.0.1 head it stays on loopback. That is
verified with ``ss -tlnp`` before anything is measured: if any socket that appeared while Ray
started (or any socket of Ray's processes) listens on a non-loopback address, the scenario is
aborted. Nothing here ever targets anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from bench.procs import BenchError, Proc, free_port, python, wait_port
from bench.stack import Skipped

ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


def listeners() -> set[tuple[str, int | None]]:
    """(local address:port, pid) of every listening TCP socket."""
    out = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True, check=True).stdout
    found: set[tuple[str, int | None]] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        pid = None
        if "pid=" in line:
            pid = int(line.split("pid=", 1)[1].split(",", 1)[0])
        found.add((parts[3], pid))
    return found


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host.startswith("::ffff:"):
        host = host[7:]
    if host in ("*", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def exposed(before: set[tuple[str, int | None]], ray_pids: set[int]) -> list[str]:
    """Non-loopback listeners that Ray added (new since ``before``, or owned by a Ray process)."""
    return sorted(
        f"{address} (pid {pid})"
        for address, pid in listeners() - before | {entry for entry in listeners() if entry[1] in ray_pids}
        if not is_loopback(address)
    )


def _tree(root: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = (int(x) for x in line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


@contextlib.contextmanager
def start(cpus: set[int], work_dir: Path) -> Iterator[tuple[Proc, int, str]]:
    if importlib.util.find_spec("ray") is None:
        raise Skipped("Ray is not installed: `pip install -e '.[bench-peers]'` adds ray[serve]")
    before = listeners()
    port = free_port()
    proc = Proc("rayserve", python("bench.servers.ray_echo", "--port", str(port)), cpus, work_dir, env=ENV)
    try:
        wait_port(port, proc, timeout=180)
        time.sleep(2)  # let Ray finish binding what it binds
        pids = _tree(proc.pid)
        leaks = exposed(before, pids)
        if leaks:
            raise BenchError(f"Ray listens beyond loopback, scenario aborted before any load: {', '.join(leaks)}")
        own = sum(1 for _, pid in listeners() if pid in pids)
        yield proc, port, f"ss -tlnp: Ray's {own} listening sockets all on loopback"
    finally:
        proc.stop(timeout=30)
