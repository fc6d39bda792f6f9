"""``cfgate demo --llm``: the sample LLM function answers a chat completion on llm.invocation, and
the ``openai`` snippet it prints, run as a user would paste it, gets the same answer while the
demo runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def test_demo_llm_answers_and_its_openai_snippet_repeats_the_call(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--llm", "--port", "0", "--grpc-port", "0", "--worker-port", "0"],
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
        assert "cfgate demo: chat completion answered 200:" in out, out
        part = out.split("chat completion answered 200:\n", 1)[1]
        answer = json.loads(part.split("cfgate demo: repeat it with the openai package:", 1)[0])
        assert answer["choices"][0]["message"]["content"] == "hello cfgate hello cfgate"
        snippet = part.split("repeat it with the openai package:\n", 1)[1].split("cfgate demo:", 1)[0]
        assert snippet.startswith("from openai import OpenAI\n") and '"Host": "llm.invocation.localhost"' in snippet
        ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.startswith("hello cfgate hello cfgate")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert list(tmp_path.glob("cfgate-demo-*")) == []
