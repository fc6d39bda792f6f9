"""``cfgate demo --once``: the one-command tour works from a checkout (real processes, loopback);
``--nico`` adds one NICo REST call whose printed curl repeats it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def test_demo_invokes_the_sample_function_and_prints_the_curl(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--once", "--port", "0", "--grpc-port", "0", "--worker-port", "0"],
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


def test_demo_nico_reads_the_service_account_and_its_curl_repeats_the_call(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--nico", "--port", "0", "--grpc-port", "0", "--worker-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "running until Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "invocation answered 200" in out, out
        assert "cfgate demo: NICo service account (org demo) answered 200:" in out, out
        nico_part = out.split("NICo service account (org demo) answered 200:\n", 1)[1]
        answer = json.loads(nico_part.split("cfgate demo: repeat it with:", 1)[0])
        assert answer["enabled"] is True
        assert set(answer) == {"enabled", "infrastructureProviderId", "tenantId"}
        curl = shlex.split(nico_part.split("cfgate demo: repeat it with:\n", 1)[1].splitlines()[0])
        assert curl[:2] == ["curl", "-sS"]
        assert curl[2].startswith("http://127.0.0.1:")
        assert curl[2].endswith("/v2/org/demo/nico/service-account/current")
        assert "-H" in curl and "Host: nico.localhost" in curl
        headers = dict(h.split(": ", 1) for flag, h in zip(curl[3::2], curl[4::2], strict=True) if flag == "-H")
        assert headers["Authorization"].startswith("Bearer eyJ")
        # The printed command repeats the call while the demo runs: same answer.
        repeated = httpx.get(curl[2], headers=headers, timeout=30)
        assert repeated.status_code == 200
        assert repeated.json() == answer
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert list(tmp_path.glob("cfgate-demo-*")) == []


def test_default_demo_makes_no_nico_call(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--once", "--port", "0", "--grpc-port", "0", "--worker-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NICo" not in result.stdout
    assert "nico.localhost" not in result.stdout
