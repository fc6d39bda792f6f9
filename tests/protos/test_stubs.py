"""The committed protobuf stubs are exactly what ``python -m protos.generate`` produces."""

from __future__ import annotations

import os
from pathlib import Path

from protos import generate


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(generate.ROOT)
    try:
        generate.generate(tmp_path)
    finally:
        os.chdir(cwd)
    fresh = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "generation produced nothing"
    for path in fresh:
        committed = generate.ROOT / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is not committed: run python -m protos.generate"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} differs: run python -m protos.generate"


def test_stubs_import_and_round_trip() -> None:
    from protos.cfgate.worker.v1 import worker_pb2

    message = worker_pb2.GatewayMessage(invocations=[worker_pb2.Invocation(request_id="r", body=b"x")])
    parsed = worker_pb2.GatewayMessage.FromString(message.SerializeToString())
    assert parsed.invocations[0].request_id == "r" and parsed.invocations[0].body == b"x"
