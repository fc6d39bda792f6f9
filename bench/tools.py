"""The bench's own setup step: the binaries pip cannot install (wrk, nginx).

When one is missing and the bench runs as root, ``apt-get install -y`` installs it (after an
``apt-get update``) and says so; otherwise the message says what to install. wrk is required;
nginx only for the ``proxy`` scenario's peer.
"""

from __future__ import annotations

import os
import shutil
import subprocess

PACKAGES = {"wrk": "wrk", "nginx": "nginx-light"}
_SBIN = ("/usr/sbin", "/sbin")


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for folder in _SBIN:
        path = os.path.join(folder, tool)
        if os.access(path, os.X_OK):
            return path
    return None


def ensure(tools: list[str], say: object = print) -> dict[str, str]:
    """Install what is missing (root only); returns {tool: why it is unavailable} for the rest."""
    missing = [t for t in tools if which(t) is None]
    problems: dict[str, str] = {}
    if not missing:
        return problems
    packages = [PACKAGES[t] for t in missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        for tool in missing:
            problems[tool] = f"{tool} is not installed; install it with `sudo apt-get install -y {PACKAGES[tool]}`"
        return problems
    assert callable(say)
    say(f"bench setup: installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, capture_output=True, text=True)
    for tool in missing:
        if which(tool) is None:
            problems[tool] = f"`apt-get install -y {PACKAGES[tool]}` failed: {done.stderr.strip()[-300:]}"
    return problems
