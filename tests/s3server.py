"""A throwaway S3-compatible server for the tests: ``moto_server`` as its own process.

It listens on 127.0.0.1 on a free port with its working directory in a fresh temp dir and is
stopped (SIGTERM, then SIGKILL) when the context ends; it dies with the test process too. moto
comes with the ``test`` extra; on a machine without it, it is installed once with ``pip install
--target`` into the servers' cache directory (nothing goes into the virtualenv), so the tests
run on a bare machine. Under ``CI=true`` a failure to install is an error, never a skip.

moto keeps objects in memory and does not check SigV4 signatures (the signer is checked against
botocore's separately); it does speak the S3 REST protocol over real HTTP, which is what the
gateway's client must get right.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import ServerUnavailable, _preexec, cache_dir, find_free_port

MOTO_REQUIREMENT = "moto[server]>=5.0"
START_TIMEOUT_SECONDS = 60.0
ACCESS_KEY = "cfgate-test-access"
SECRET_KEY = "cfgate-test-secret-key"


@dataclass
class S3Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str) -> str:
        return f"s3://{bucket}?endpoint={self.endpoint}&region=us-east-1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _moto_path() -> str | None:
    """Extra ``PYTHONPATH`` for moto: None when this interpreter already has it."""
    if importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None:
        return None
    target = cache_dir() / "moto"
    if not (target / "moto").is_dir():
        sys.stderr.write(f"[tests.s3server] installing {MOTO_REQUIREMENT} into {target}\n")
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), MOTO_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise ServerUnavailable(f"`pip install {MOTO_REQUIREMENT}` failed: {done.stderr[-2000:]}")
    return str(target)


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    extra = _moto_path()
    env = dict(os.environ)
    if extra is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="cfgate-s3-") as workdir:
        port = find_free_port()
        log = Path(workdir) / "moto.log"
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env,
                preexec_fn=_preexec(),  # dies with the test process, as tests/servers.py
            )
        server = S3Server(proc, port, log)
        try:
            _wait_ready(server)
            yield server
        finally:
            server.stop()


def _wait_ready(server: S3Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise ServerUnavailable(f"moto_server exited: {server.log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(server.endpoint + "/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise ServerUnavailable(f"moto_server did not answer on {server.endpoint}")
