"""The worker agent in process, against a real grpc.aio gateway double and the real echo container."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import zipfile
from pathlib import Path

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.support.echo_server import EchoServer, file_content, pattern
from tests.worker.conftest import (
    FUNCTION_ID,
    NCA_ID,
    TOKEN,
    VERSION_ID,
    GatewayDouble,
    StartAgent,
    invocation,
)

REQ = "3f1c2b4a-0000-4000-8000-00000000000"  # + one digit


def seen_headers(body: bytes) -> dict[str, list[str]]:
    document = json.loads(body)
    headers: dict[str, list[str]] = {}
    for name, value in document["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


async def test_registers_opens_one_stream_and_grants_max_concurrency(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    await start_agent(max_concurrency=3, labels={"zone": "a"}, gpu="L40S")
    session = await gateway_double.session()
    await session.wait_for(lambda: session.credits > 0)

    request, metadata = gateway_double.registrations[0]
    assert request.credential == TOKEN
    assert metadata["authorization"] == f"Bearer {TOKEN}"
    assert request.function_id == FUNCTION_ID
    assert request.version_id == ""
    assert request.instance_id == "worker-under-test"
    assert request.max_concurrency == 3
    assert request.gpu == "L40S"
    assert dict(request.labels) == {"zone": "a"}
    assert session.metadata["cfgate-session-id"] == "session-1"
    assert session.messages[0].credits == 3
    assert len(gateway_double.sessions) == 1


async def test_container_sees_nvcf_headers_and_no_client_copies(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer, tmp_path: Path
) -> None:
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(
        invocation(
            rid,
            "/echo?json=1",
            body=b'{"x": 1}',
            nca_id="nca-caller",
            poll_seconds=42,
            headers=[
                ("Authorization", "Bearer client-secret"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "dropped because Connection names it"),
                ("Keep-Alive", "timeout=5"),
                ("Transfer-Encoding", "chunked"),
                ("Upgrade", "h2c"),
                ("TE", "trailers"),
                ("Proxy-Authorization", "Basic abc"),
                ("NVCF-REQID", "forged"),
                ("nvcf-function-id", "forged"),
                ("NVCF-ASSET-DIR", "/etc"),
                ("NVCF-INVOCATION-REGION", "forged"),
                ("nvcf-poll-seconds", "9999"),
                ("Host", "invocation.localhost"),
                ("Content-Length", "999"),
                ("X-Custom", "kept"),
                ("Accept", "application/json"),
            ],
        )
    )
    result = await session.wait_end(rid)
    assert result.status == 200
    assert result.error == ""
    headers = seen_headers(result.body)
    work = tmp_path / "work"
    assert headers["nvcf-reqid"] == [rid]
    assert headers["nvcf-sub"] == ["client-sub"]
    assert headers["nvcf-ncaid"] == ["nca-caller"]
    assert headers["nvcf-function-name"] == ["echo-function"]
    assert headers["nvcf-function-id"] == [FUNCTION_ID]
    assert headers["nvcf-function-version-id"] == [VERSION_ID]
    assert headers["nvcf-asset-dir"] == [str(work / "inputAssets" / rid)]
    assert headers["nvcf-large-output-dir"] == [str(work / "response" / rid)]
    assert headers["nvcf-max-response-size-bytes"] == [str(5 * 1024 * 1024)]
    assert headers["nvcf-nspectid"] == ["NSPECT-TEST"]
    assert headers["nvcf-backend"] == ["test-backend"]
    assert headers["nvcf-instancetype"] == ["gpu.test"]
    assert headers["nvcf-region"] == ["test-region-1"]
    assert headers["nvcf-env"] == ["test"]
    assert headers["nvcf-invocation-region"] == ["inv-region-1"]
    assert headers["nvcf-poll-seconds"] == ["42"]
    assert headers["host"] == [f"127.0.0.1:{echo.port}"]
    assert headers["content-length"] == ["8"]
    assert headers["x-custom"] == ["kept"]
    assert headers["accept"] == ["application/json"]
    assert "nvcf-function-asset-ids" not in headers
    for absent in ("authorization", "x-hop", "keep-alive", "transfer-encoding", "upgrade", "te", "proxy-authorization"):
        assert absent not in headers, absent
    # Not compat: no Content-Type is invented.
    assert "content-type" not in headers
    assert json.loads(result.body)["body"] == '{"x": 1}'


async def test_compat_sets_json_content_type_only_when_absent(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    await start_agent()
    session = await gateway_double.session()
    session.invoke(
        invocation(REQ + "1", "/echo?json=1", compat=True, body=b"{}"),
        invocation(REQ + "2", "/echo?json=1", compat=True, body=b"a", headers=[("Content-Type", "text/plain")]),
    )
    first = await session.wait_end(REQ + "1")
    second = await session.wait_end(REQ + "2")
    assert seen_headers(first.body)["content-type"] == ["application/json"]
    assert seen_headers(second.body)["content-type"] == ["text/plain"]
    # The caller's account falls back to the function's when the invocation names none.
    assert seen_headers(first.body)["nvcf-ncaid"] == [NCA_ID]


async def test_small_answer_travels_in_one_message_with_its_credit(
    gateway_double: GatewayDouble, start_agent: StartAgent, tmp_path: Path
) -> None:
    await start_agent(max_concurrency=2)
    session = await gateway_double.session()
    await session.wait_for(lambda: session.credits == 2)
    rid = REQ + "1"
    session.invoke(invocation(rid, "/echo", body=b"hello"))
    result = await session.wait_end(rid)
    assert (result.status, result.body, result.error) == (200, b"hello", "")
    assert result.header("content-length") == "5"
    assert result.header("x-seen-nvcf-reqid") == rid
    carrying = [m for m in session.messages if any(e.request_id == rid for e in m.ends)]
    assert len(carrying) == 1
    message = carrying[0]
    # start, chunk and end of the request are one batch, and the end returns the credit.
    assert [s.request_id for s in message.starts] == [rid]
    assert [c.request_id for c in message.chunks] == [rid]
    assert message.credits == 1
    assert session.credits == 3
    # The per-request directory is gone (kept, empty, as a spare for the next invocation).
    assert [name for name in os.listdir(tmp_path / "work" / "response") if not name.startswith(".spare-")] == []


async def test_credits_one_per_finished_invocation(gateway_double: GatewayDouble, start_agent: StartAgent) -> None:
    await start_agent(max_concurrency=4)
    session = await gateway_double.session()
    ids = [f"{REQ}{i}" for i in range(8)]
    session.invoke(*(invocation(rid, "/echo", body=rid.encode()) for rid in ids[:4]))
    for rid in ids[:4]:
        await session.wait_end(rid)
    session.invoke(*(invocation(rid, "/echo", body=rid.encode()) for rid in ids[4:]))
    for rid in ids:
        result = await session.wait_end(rid)
        assert result.body == rid.encode()
    assert session.credits == 4 + 8
    # Every end message carries exactly the credits of the ends it holds.
    for message in session.messages[1:]:
        assert message.credits == len(message.ends)


async def test_event_stream_reaches_the_gateway_before_the_container_finishes(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    # Compat is on, but an event stream is always relayed as it comes.
    session.invoke(invocation(rid, "/sse?events=3&gate=sse", compat=True, headers=[("Accept", "text/event-stream")]))
    await session.wait_for(lambda: b'data: {"i": 0}' in session.result(rid).body)
    early = session.result(rid)
    assert early.status == 200
    assert early.header("content-type") == "text/event-stream"
    assert early.header("transfer-encoding") is None
    assert not early.ended
    assert rid in echo.stats.active  # the container is still answering
    echo.release("sse")
    result = await session.wait_end(rid)
    assert result.error == ""
    assert result.body == b"".join(f'id: {i}\ndata: {{"i": {i}}}\n\n'.encode() for i in range(3))
    assert len([m for m in session.messages if any(c.request_id == rid for c in m.chunks)]) >= 2


async def test_progress_file_writes_become_progress_messages(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/progress?steps=3&gate=p", compat=True))

    def reported() -> list[int]:
        return [percent for percent, _ in session.result(rid).progress]

    for step, percent in ((1, 33), (2, 67), (3, 100)):
        await session.wait_for(lambda: percent in reported())  # noqa: B023 - awaited before the loop moves on
        echo.release(f"p-{step}")
    result = await session.wait_end(rid)
    assert result.progress == [(33, b'{"step":1}'), (67, b'{"step":2}'), (100, b'{"step":3}')]
    assert result.status == 200
    assert json.loads(result.body) == {"done": True, "steps": 3}
    # Progress always precedes the start of the answer.
    positions: dict[str, int] = {}
    for index, message in enumerate(session.messages):
        if any(p.request_id == rid for p in message.progress):
            positions.setdefault("progress", index)
        if any(s.request_id == rid for s in message.starts):
            positions["start"] = index
    assert positions["progress"] < positions["start"]


async def test_large_body_becomes_a_zip_result(gateway_double: GatewayDouble, start_agent: StartAgent) -> None:
    gateway_double.max_direct_response_bytes = 100_000
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/large?bytes=300000", compat=True))
    result = await session.wait_end(rid)
    assert result.error == ""
    assert result.kind == pb.ResultKind.LARGE_RESULT
    assert result.status == 200
    assert result.header("content-type") == "application/zip"
    assert result.header("content-length") == str(len(result.body))
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert archive.namelist() == [f"{rid}.response"]
        assert archive.read(f"{rid}.response") == pattern(300_000)


async def test_the_default_limit_is_5_mib(gateway_double: GatewayDouble, start_agent: StartAgent) -> None:
    limit = 5 * 1024 * 1024
    await start_agent()
    session = await gateway_double.session()
    session.invoke(
        invocation(REQ + "1", f"/large?bytes={limit}", compat=True),
        invocation(REQ + "2", f"/large?bytes={limit + 1}", compat=True),
    )
    direct = await session.wait_end(REQ + "1")
    assert direct.kind == pb.ResultKind.DIRECT
    assert direct.header("content-length") == str(limit)
    assert direct.body == pattern(limit)
    large = await session.wait_end(REQ + "2")
    assert large.kind == pb.ResultKind.LARGE_RESULT
    with zipfile.ZipFile(io.BytesIO(large.body)) as archive:
        assert archive.read(f"{REQ}2.response") == pattern(limit + 1)
    # No message went over the gateway's default 4 MiB receive limit.
    assert max(message.ByteSize() for message in session.messages) < 4 * 1024 * 1024


async def test_large_output_files_are_zipped_with_relative_paths(
    gateway_double: GatewayDouble, start_agent: StartAgent, tmp_path: Path
) -> None:
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/files?names=a.txt,sub/b.bin&bytes=64", compat=True))
    result = await session.wait_end(rid)
    assert result.kind == pb.ResultKind.LARGE_RESULT
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert sorted(archive.namelist()) == sorted([f"{rid}.response", "a.txt", "sub/b.bin"])
        assert json.loads(archive.read(f"{rid}.response")) == {"files": ["a.txt", "sub/b.bin"]}
        assert archive.read("a.txt") == file_content("a.txt", 64)
        assert archive.read("sub/b.bin") == file_content("sub/b.bin", 64)
    assert not (tmp_path / "work" / "response" / rid).exists()


async def test_without_large_outputs_no_directory_is_offered_and_big_bodies_still_zip(
    gateway_double: GatewayDouble, start_agent: StartAgent, tmp_path: Path
) -> None:
    gateway_double.max_direct_response_bytes = 100_000
    await start_agent(large_outputs=False)
    session = await gateway_double.session()
    session.invoke(
        invocation(REQ + "1", "/echo?json=1", body=b"{}", compat=True),
        invocation(REQ + "2", "/large?bytes=300000", compat=True),
    )
    small = await session.wait_end(REQ + "1")
    assert small.kind == pb.ResultKind.DIRECT and small.status == 200
    headers = seen_headers(small.body)
    assert "nvcf-large-output-dir" not in headers
    assert headers["nvcf-reqid"] == [REQ + "1"]
    large = await session.wait_end(REQ + "2")
    assert large.error == ""
    assert large.kind == pb.ResultKind.LARGE_RESULT
    with zipfile.ZipFile(io.BytesIO(large.body)) as archive:
        assert archive.namelist() == [f"{REQ}2.response"]
        assert archive.read(f"{REQ}2.response") == pattern(300_000)
    assert os.listdir(tmp_path / "work" / "response") == []  # no directory was ever made


async def test_output_directory_seen_empty_is_recycled_and_one_with_files_is_not(
    gateway_double: GatewayDouble, start_agent: StartAgent, tmp_path: Path
) -> None:
    await start_agent()
    session = await gateway_double.session()
    session.invoke(invocation(REQ + "1", "/echo?json=1", body=b"{}", compat=True))
    first = await session.wait_end(REQ + "1")
    assert first.kind == pb.ResultKind.DIRECT
    response_root = tmp_path / "work" / "response"
    assert [name for name in os.listdir(response_root) if not name.startswith(".spare-")] == []
    spares = os.listdir(response_root)
    assert len(spares) == 1  # kept for the next invocation, under a name no request has
    session.invoke(invocation(REQ + "2", "/files?names=a.txt&bytes=8", compat=True))
    second = await session.wait_end(REQ + "2")
    assert second.kind == pb.ResultKind.LARGE_RESULT
    with zipfile.ZipFile(io.BytesIO(second.body)) as archive:
        assert sorted(archive.namelist()) == sorted([f"{REQ}2.response", "a.txt"])
    assert os.listdir(response_root) == []  # it held a file: removed, never handed out again


async def test_without_compat_big_answers_and_files_are_relayed_directly(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    gateway_double.max_direct_response_bytes = 1000
    await start_agent()
    session = await gateway_double.session()
    session.invoke(invocation(REQ + "1", "/large?bytes=50000"), invocation(REQ + "2", "/files?names=x"))
    big = await session.wait_end(REQ + "1")
    files = await session.wait_end(REQ + "2")
    assert big.kind == files.kind == pb.ResultKind.DIRECT
    assert big.body == pattern(50000)
    assert big.header("content-length") == "50000"
    assert json.loads(files.body) == {"files": ["x"]}


async def test_container_errors_are_wrapped_in_compat_mode_only(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    await start_agent()
    session = await gateway_double.session()
    session.invoke(
        invocation(REQ + "1", "/error?status=422&message=bad%20prompt", compat=True),
        invocation(REQ + "2", "/error?status=503&raw=1", compat=True),
        invocation(REQ + "3", "/error?status=422&message=bad%20prompt"),
    )
    wrapped = await session.wait_end(REQ + "1")
    assert wrapped.status == 422
    assert wrapped.header("content-type") == "application/problem+json"
    assert json.loads(wrapped.body) == {
        "type": "urn:inference-service:problem-details:unprocessable-entity",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "bad prompt",
    }
    assert wrapped.header("content-length") == str(len(wrapped.body))
    raw = await session.wait_end(REQ + "2")
    assert raw.status == 503
    assert json.loads(raw.body) == {
        "type": "urn:inference-service:problem-details:service-unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Inference error",
    }
    passed = await session.wait_end(REQ + "3")
    assert passed.status == 422
    assert passed.header("content-type") == "application/json"
    assert json.loads(passed.body) == {"error": "bad prompt"}


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_container_is_a_502_problem(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent(inference_url=f"http://127.0.0.1:{_dead_port()}/", health_url=f"{echo.url}/health")
    session = await gateway_double.session()
    for rid, compat in ((REQ + "1", True), (REQ + "2", False)):
        session.invoke(invocation(rid, "/infer", compat=compat))
        result = await session.wait_end(rid)
        assert result.status == 502
        assert result.header("content-type") == "application/problem+json"
        assert json.loads(result.body) == {
            "type": "urn:inference-connection:problem-details:bad-gateway",
            "title": "Bad Gateway",
            "status": 502,
            "detail": "Inference connection error while making inference request",
        }
        assert result.error == ""
    assert session.credits == 4 + 2


async def test_container_breaking_the_stream_ends_with_an_error(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    await start_agent()
    session = await gateway_double.session()
    session.invoke(invocation(REQ + "1", "/broken?bytes=1000"))
    result = await session.wait_end(REQ + "1")
    assert result.status == 200
    assert result.body == pattern(1000)
    assert result.error.startswith("the inference container broke the response")


async def test_cancel_closes_the_container_connection(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent(max_concurrency=2)
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/slow?gate=never", compat=True))
    await echo.wait_for(lambda stats: rid in stats.active)
    session.send(cancels=[pb.Cancel(request_id=rid, reason="client left")])
    result = await session.wait_end(rid)
    assert result.error == "cancelled"
    assert result.status is None
    await echo.wait_for(lambda stats: rid in stats.disconnects)
    assert session.credits == 2 + 1


async def test_deadline_ends_the_container_call(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/slow?gate=never", deadline_ms=int(time.time() * 1000) + 300))
    result = await session.wait_end(rid)
    assert result.error == "deadline exceeded"
    await echo.wait_for(lambda stats: rid in stats.disconnects)


async def test_input_assets_are_downloaded_before_the_call(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer, tmp_path: Path
) -> None:
    import hashlib

    gateway_double.gateway_url = echo.url
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "1"
    assets = [
        pb.InputAsset(asset_id="a1b2c3d4-0000-4000-8000-000000000001", url=f"{echo.url}/blob?text=first"),
        # Relative: resolved against the gatewayUrl announced at Register.
        pb.InputAsset(asset_id="a1b2c3d4-0000-4000-8000-000000000002", url="/blob?text=second"),
    ]
    session.invoke(invocation(rid, "/assets", compat=True, assets=assets))
    result = await session.wait_end(rid)
    document = json.loads(result.body)
    assert document["ids"] == ",".join(asset.asset_id for asset in assets)
    assert document["dir"] == str(tmp_path / "work" / "inputAssets" / rid)
    assert document["files"] == {
        assets[0].asset_id: hashlib.sha256(b"first").hexdigest(),
        assets[1].asset_id: hashlib.sha256(b"second").hexdigest(),
    }
    assert not (tmp_path / "work" / "inputAssets" / rid).exists()

    bad = REQ + "2"
    session.invoke(invocation(bad, "/assets", assets=[pb.InputAsset(asset_id="x", url=f"{echo.url}/missing")]))
    failed = await session.wait_end(bad)
    assert failed.status == 500
    assert json.loads(failed.body)["type"] == "urn:nvcf-worker-service:problem-details:internal-server-error"


async def test_relative_asset_urls_carry_the_announced_gateway_host(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    # The gateway's address is a bare listen address; its services answer only the announced Host.
    gateway_double.gateway_url = echo.url
    gateway_double.gateway_host = "api.localhost"
    await start_agent()
    session = await gateway_double.session()
    rid = REQ + "3"
    own_host = echo.url.removeprefix("http://")
    assets = [
        pb.InputAsset(asset_id="relative", url="/blob?text=first&host=api.localhost"),
        # Absolute (an object store's presigned URL): fetched as it is, with its own Host.
        pb.InputAsset(asset_id="absolute", url=f"{echo.url}/blob?text=second&host={own_host}"),
    ]
    session.invoke(invocation(rid, "/assets?content=1", assets=assets))
    result = await session.wait_end(rid)
    assert result.status == 200, result.body
    contents = json.loads(result.body)["contents"]
    assert {name: base64.b64decode(data) for name, data in contents.items()} == {
        "absolute": b"second",
        "relative": b"first",
    }


async def test_ping_is_answered_and_idle_streams_heartbeat(
    gateway_double: GatewayDouble, start_agent: StartAgent
) -> None:
    gateway_double.heartbeat_interval_ms = 200
    await start_agent()
    session = await gateway_double.session()
    await session.wait_for(lambda: sum(m.heartbeat for m in session.messages) >= 2)
    before = len(session.messages)
    session.send(ping=True)
    await session.wait_for(lambda: any(m.heartbeat for m in session.messages[before:]))


async def test_drain_from_the_gateway_finishes_in_flight_work_then_exits(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    running = await start_agent(max_concurrency=2)
    session = await gateway_double.session()
    rid = REQ + "1"
    session.invoke(invocation(rid, "/slow?gate=drain"))
    await echo.wait_for(lambda stats: rid in stats.active)
    session.send(drain=True)
    await session.wait_for(lambda: any(m.draining for m in session.messages))
    assert not session.ended(rid)
    echo.release("drain")
    result = await session.wait_end(rid)
    assert result.status == 200 and result.error == ""
    # No credit comes back once the worker drains; then it closes the stream and stops.
    assert [m.credits for m in session.messages if any(e.request_id == rid for e in m.ends)] == [0]
    await session.wait_for(lambda: session.worker_closed)
    assert await running.stop() == 0
    assert len(gateway_double.registrations) == 1


async def test_reconnects_after_the_gateway_restarts(
    gateway_double: GatewayDouble, start_agent: StartAgent, echo: EchoServer
) -> None:
    await start_agent(max_concurrency=2)
    first = await gateway_double.session()
    rid = REQ + "1"
    first.invoke(invocation(rid, "/slow?gate=never"))
    await echo.wait_for(lambda stats: rid in stats.active)
    port = gateway_double.port
    await gateway_double.stop()
    # The broken session's container call is abandoned.
    await echo.wait_for(lambda stats: rid in stats.disconnects)
    await gateway_double.start()
    assert gateway_double.port == port
    second = await gateway_double.session(1)
    await second.wait_for(lambda: second.credits == 2)
    assert second.metadata["cfgate-session-id"] == "session-2"
    assert len(gateway_double.registrations) == 2
    assert not second.ended(rid)
    # The new session serves the redelivered invocation.
    second.invoke(invocation(rid, "/echo", body=b"again"))
    result = await second.wait_end(rid)
    assert result.body == b"again"


async def test_refused_registration_stops_the_worker(gateway_double: GatewayDouble, start_agent: StartAgent) -> None:
    running = await start_agent(token="wrong-token")
    assert await running.task == 3
    assert gateway_double.sessions == []
