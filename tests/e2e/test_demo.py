"""``cfgate demo --once``: the one-command tour works from a checkout (real processes, loopback)."""

from __future__ import annotations

import subprocess
import sys


def test_demo_invokes_the_sample_function_and_prints_the_curl() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--once", "--port", "0", "--grpc-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "invocation answered 200" in result.stdout
    assert '"message": "hello from cfgate"' in result.stdout
    assert "curl -sS -X POST http://127.0.0.1:" in result.stdout
    assert "-H 'Host: invocation.localhost'" in result.stdout
