"""Pure parts of the worker: container headers, relayed headers, problems, progress files, artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from invoker.worker.container import (
    container_headers,
    error_detail,
    metadata_value,
    problem,
    relay_headers,
    static_headers,
)
from invoker.worker.large_output import scan_artifacts
from invoker.worker.progress import parse_progress
from invoker.worker.workdirs import WorkDirs
from protos.cfgate.worker.v1 import worker_pb2 as pb


def make(headers: list[tuple[str, str]] | None = None, **fields: Any) -> pb.Invocation:
    return pb.Invocation(headers=[pb.Header(key=k, value=v) for k, v in headers or []], **fields)


def build(invocation: pb.Invocation) -> list[tuple[str, str]]:
    return container_headers(
        invocation,
        host="127.0.0.1:8000",
        static=[("NVCF-FUNCTION-ID", "f")],
        nca_id="owner",
        asset_dir="/a",
        output_dir="/o",
    )


def test_metadata_keys_match_in_any_spelling() -> None:
    metadata = {"NVCF-NSPECTID": "n", "instanceType": "t", "nvcf_env": "e", "Invocation_Region": "r"}
    assert metadata_value(metadata, "NVCF-NSPECTID") == "n"
    assert metadata_value(metadata, "NVCF-INSTANCETYPE") == "t"
    assert metadata_value(metadata, "NVCF-ENV") == "e"
    assert metadata_value(metadata, "NVCF-INVOCATION-REGION") == "r"
    assert metadata_value(metadata, "NVCF-REGION") == ""


def test_static_headers_fall_back_to_the_workers_own_description() -> None:
    register = pb.RegisterResponse(function_id="f", version_id="v", function_name="n", max_direct_response_bytes=10)
    assert static_headers(register, backend="b", instance_type="t", location="l") == [
        ("NVCF-FUNCTION-NAME", "n"),
        ("NVCF-FUNCTION-ID", "f"),
        ("NVCF-FUNCTION-VERSION-ID", "v"),
        ("NVCF-MAX-RESPONSE-SIZE-BYTES", "10"),
        ("NVCF-BACKEND", "b"),
        ("NVCF-INSTANCETYPE", "t"),
        ("NVCF-REGION", "l"),
    ]
    # What cfgate's gateway announces: its region serves as the invocation region too.
    register.metadata.update({"instanceType": "gpu.x", "backend": "cfgate", "region": "r1", "env": "cfgate"})
    assert static_headers(register)[4:] == [
        ("NVCF-BACKEND", "cfgate"),
        ("NVCF-INSTANCETYPE", "gpu.x"),
        ("NVCF-REGION", "r1"),
        ("NVCF-ENV", "cfgate"),
        ("NVCF-INVOCATION-REGION", "r1"),
    ]


def test_request_headers_for_a_get_without_body() -> None:
    headers = build(make(request_id="r", method="GET", subject="s", headers=[("X-A", "1"), ("x-a", "2")]))
    assert headers == [
        ("Host", "127.0.0.1:8000"),
        ("X-A", "1"),
        ("x-a", "2"),
        ("NVCF-REQID", "r"),
        ("NVCF-SUB", "s"),
        ("NVCF-NCAID", "owner"),
        ("NVCF-ASSET-DIR", "/a"),
        ("NVCF-LARGE-OUTPUT-DIR", "/o"),
        ("NVCF-FUNCTION-ID", "f"),
    ]


def test_request_headers_with_assets_deadline_and_body() -> None:
    invocation = make(
        request_id="r",
        method="POST",
        body=b"abc",
        compat=True,
        deadline_ms=10_000_000_000_000,
        assets=[pb.InputAsset(asset_id="x"), pb.InputAsset(asset_id="y")],
        headers=[("Content-Length", "1"), ("NVCF-FUNCTION-ASSET-IDS", "forged"), ("Cookie", "c")],
    )
    headers = dict(build(invocation))
    assert headers["NVCF-FUNCTION-ASSET-IDS"] == "x,y"
    assert headers["Content-Length"] == "3"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["nvcf-poll-seconds"]) > 1_000_000
    assert headers["Cookie"] == "c"
    assert len([k for k, _ in build(invocation) if k.lower() == "content-length"]) == 1


def test_relayed_headers_lose_hop_by_hop_and_maybe_the_length() -> None:
    raw = [
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"5"),
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"X-Bytes", "caf\xe9".encode("latin-1")),
    ]
    kept = relay_headers(raw, keep_length=True)
    assert kept == [
        ("Content-Type", "text/plain"),
        ("Content-Length", "5"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Bytes", "caf\xe9"),
    ]
    assert ("Content-Length", "5") not in relay_headers(raw, keep_length=False)


@pytest.mark.parametrize(
    ("status", "kebab", "title"),
    [
        (400, "bad-request", "Bad Request"),
        (413, "request-entity-too-large", "Request Entity Too Large"),
        (422, "unprocessable-entity", "Unprocessable Entity"),
        (500, "internal-server-error", "Internal Server Error"),
        (599, "unknown-status", "Unknown Status"),
    ],
)
def test_problem_documents(status: int, kebab: str, title: str) -> None:
    document = json.loads(problem("inference-service", status, "why"))
    assert document == {
        "type": f"urn:inference-service:problem-details:{kebab}",
        "title": title,
        "status": status,
        "detail": "why",
    }


def test_error_detail_reads_triton_style_bodies() -> None:
    assert error_detail(b'{"error": "out of memory"}') == "out of memory"
    assert error_detail(b'{"error": ""}') == "Inference error"
    assert error_detail(b'{"message": "x"}') == "Inference error"
    assert error_detail(b"<html>") == "Inference error"
    assert error_detail(b"[1]") == "Inference error"


def test_progress_documents() -> None:
    assert parse_progress(b'{"id": "r", "progress": 42, "partialResponse": {"a": [1]}}', "r") == (42, b'{"a":[1]}')
    assert parse_progress(b'{"progress": 150.7}', "r") == (100, b"")
    assert parse_progress(b'{"progress": "x", "partialResponse": null}', "r") == (0, b"")
    assert parse_progress(b'{"id": "other", "progress": 5}', "r") is None
    for broken in (b"", b'{"id": "r", "progr', b"[]"):
        with pytest.raises(ValueError):
            parse_progress(broken, "r")


def test_artifacts_are_every_file_but_progress(tmp_path: Path) -> None:
    assert scan_artifacts(str(tmp_path)) == []
    assert scan_artifacts(str(tmp_path / "missing")) == []
    (tmp_path / "progress").write_text("{}")
    assert scan_artifacts(str(tmp_path)) == []
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.bin").write_bytes(b"x")
    (tmp_path / "deep" / "progress").write_text("{}")
    (tmp_path / "a.txt").write_text("a")
    assert scan_artifacts(str(tmp_path)) == ["a.txt", os.path.join("deep", "er", "x.bin")]


def test_output_directories_are_recycled_only_when_empty(tmp_path: Path) -> None:
    (tmp_path / "response" / "stale-request").mkdir(parents=True)
    (tmp_path / "response" / "stale-request" / "file").write_bytes(b"x")
    (tmp_path / "response" / "stray-file").write_bytes(b"x")
    dirs = WorkDirs(str(tmp_path), spares=1)
    assert os.listdir(tmp_path / "response") == []
    first = dirs.output_dir("req-1")
    assert first == str(tmp_path / "response" / "req-1")
    assert os.stat(first).st_mode & 0o777 == 0o777
    inode = os.stat(first).st_ino
    dirs.release_output_dir(first)
    assert not os.path.exists(first)
    second = dirs.output_dir("req-2")
    assert os.stat(second).st_ino == inode  # the same directory, renamed
    Path(second, "result.bin").write_bytes(b"x")
    dirs.release_output_dir(second)
    assert os.listdir(tmp_path / "response") == []  # it held a file: removed, not kept
    third = dirs.output_dir("req-3")
    assert os.listdir(third) == []
    dirs.release_output_dir(third)
    dirs.close()
    assert os.listdir(tmp_path / "response") == []
