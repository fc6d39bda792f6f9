"""``cfgate demo --once``: the one-command tour works from a checkout (real processes, loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_invokes_the_sample_function_and_prints_the_curl(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--once", "--port", "0", "--grpc-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "invocation answered 200" in result.stdout
    assert '"message": "hello from cfgate"' in result.stdout
    assert "curl -sS -X POST http://127.0.0.1:" in result.stdout
    assert "-H 'Host: invocation.localhost'" in result.stdout
    # Its data directory was its own: gone (every run used to leave one, two per ./scripts/test).
    assert list(tmp_path.glob("cfgate-demo-*")) == []
