"""Small Python programs that play NVCT task containers for the end-to-end tests (exec launcher)."""

from __future__ import annotations

import textwrap
from pathlib import Path

_PRELUDE = """
import json, os, sys, time
from datetime import datetime, timezone

def progress(percent):
    path = os.environ["NVCT_PROGRESS_FILE_PATH"]
    document = {"taskId": os.environ["NVCT_TASK_ID"], "percentComplete": percent,
                "lastUpdatedAt": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
    with open(path + ".tmp", "w") as handle:
        json.dump(document, handle)
    os.replace(path + ".tmp", path)

with open("pid", "w") as handle:
    handle.write(str(os.getpid()))
"""

# Reports progress, writes two results (one says what the task saw), reaches 100 and exits 0.
COMPLETE = """
progress(10)
results = os.environ["NVCT_RESULTS_DIR"]
with open(os.environ["NVCT_SECRETS_PATH"]) as handle:
    secrets = json.load(handle)
seen = {k: os.environ.get(k) for k in ("NVCT_TASK_ID", "NVCT_TASK_NAME", "NVCT_NCA_ID", "MODE", "CFGATE_WORKER_TOKEN")}
seen["secretNames"] = sorted(secrets)
seen["secretOk"] = secrets.get("HF_TOKEN") == "hf-e2e-secret-value"
time.sleep(0.6)
progress(50)
with open(os.path.join(results, "summary.json"), "w") as handle:
    json.dump(seen, handle)
os.makedirs(os.path.join(results, "ckpt"), exist_ok=True)
with open(os.path.join(results, "ckpt", "model.bin"), "wb") as handle:
    handle.write(b"\\x00" * 1024)
time.sleep(0.6)
progress(100)
"""

# Keeps its progress fresh until it is stopped.
FOREVER = """
percent = 1
while True:
    progress(percent)
    percent = min(99, percent + 1)
    time.sleep(0.2)
"""

# Reports once, then goes silent.
STALLS = """
progress(10)
time.sleep(120)
"""


def write(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(_PRELUDE) + textwrap.dedent(body))
    return path
