"""A worker's malformed answer reaches the client as a 502 problem, never a dropped connection or a
500 (issue 12 item 9). Real HTTP sockets (uvicorn) and a scripted worker over real gRPC; the
worker's session is kept, so its next answer is relayed as usual."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import start_worker, wait_active
from tests.e2e.test_real_worker import wait_active_slowly, worker_process
from tests.support.echo_server import EchoServer

MALFORMED: dict[str, tuple[int, dict[str, str]]] = {
    "status-0": (0, {}),
    "status-99": (99, {}),
    "status-100": (100, {}),
    "status-999": (999, {}),
    "status-99999": (99999, {}),
    "crlf-in-value": (200, {"x-split": "a\r\nSet-Cookie: stolen=1"}),
    "lf-in-value": (200, {"x-split": "a\nb"}),
    "nul-in-value": (200, {"x-nul": "a\x00b"}),
    "crlf-in-name": (200, {"x-a\r\nx-b": "1"}),
    "space-in-name": (200, {"bad name": "1"}),
    "colon-in-name": (200, {"bad:name": "1"}),
    "empty-name": (200, {"": "1"}),
    "non-latin-1-value": (200, {"x-euro": "5 \u20ac"}),
    "non-ascii-name": (200, {"x-caf\u00e9": "1"}),
}


def answer_with(kind: str) -> object:
    async def reply(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        if invocation.body == b'{"ok":true}':
            worker.answer(invocation.request_id, 200, b'{"fine":1}')
            return
        status, headers = MALFORMED[kind]
        worker.answer(invocation.request_id, status, b'{"x":1}', {"content-type": "application/json", **headers})

    return reply


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_malformed_answer_is_a_502_problem(live_gateway: LiveGateway, kind: str) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid, answer_with(kind))
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with live_gateway.client("invocation.localhost") as client:
        response = await client.post(f"/v2/nvcf/pexec/functions/{fid}", json={"bad": True}, headers=auth)
        assert response.status_code == 502, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["nvcf-status"] == "errored"
        problem = response.json()
        assert problem["status"] == 502 and problem["title"] == "Bad Gateway"
        assert "set-cookie" not in response.headers and "x-split" not in response.headers
        # Direct (TLB) invocation relays the same way.
        direct = await client.post("/generate", json={"bad": True}, headers={**auth, "function-id": fid})
        assert direct.status_code == 502, direct.text
        # The worker's session is kept: its next, well-formed answer goes through.
        fine = await client.post(f"/v2/nvcf/pexec/functions/{fid}", content=b'{"ok":true}', headers=auth)
        assert fine.status_code == 200 and fine.json() == {"fine": 1}
    await worker.stop()


async def test_latin_1_header_values_are_relayed_byte_exact(live_gateway: LiveGateway) -> None:
    """obs-text is not malformed: a container's latin-1 bytes reach the client unchanged."""
    fid, vid = await live_gateway.create_deployed_function()

    async def reply(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        worker.answer(invocation.request_id, 200, b"{}", {"content-type": "application/json", "x-name": "caf\u00e9"})

    worker = await start_worker(live_gateway, fid, reply)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        response = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200
    assert response.headers.raw[[k.lower() for k, _ in response.headers.raw].index(b"x-name")][1] == b"caf\xe9"
    await worker.stop()


def test_the_check_itself() -> None:
    from gateway.invocation.answer_check import AnswerFault, answer_fault

    assert answer_fault(200, [("content-type", "text/plain"), ("x-tab", "a\tb")]) is None
    assert answer_fault(599, []) is None
    assert answer_fault(600, []) == AnswerFault.STATUS
    assert answer_fault(204, [("x", "\x7f")]) == AnswerFault.HEADER_VALUE
    assert answer_fault(200, [("x y", "1")]) == AnswerFault.HEADER_NAME


async def test_real_container_status_999_through_the_real_agent_is_a_502(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    """``HTTP/1.1 999`` from a real HTTP server, relayed by the worker agent process."""
    fid, vid = await live_gateway.create_deployed_function(inferenceUrl="/error?status=999&message=odd")
    key = await live_gateway.api_key()
    async with EchoServer() as echo, worker_process(live_gateway, fid, echo, tmp_path / "w", 2):
        await wait_active_slowly(live_gateway, fid, vid)
        async with live_gateway.client("invocation.localhost") as client:
            response = await client.post(
                f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
            )
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 502
