"""Issue 14 item 9: the ``exec`` envelope pair against a real ``cfgate serve`` process.

``POST /v2/nvcf/exec/functions/{fid}[/versions/{vid}]`` wraps pexec: the worker (scripted, over
real gRPC) sees ``requestBody`` as a JSON pexec body, and the client gets NVCF's
``InvokeFunctionResponse`` (``reqId``, ``status``, ``responseReference``, ``percentComplete``,
``errorCode``, ``response``) with pexec's status code, 302 becoming 200.
``GET /v2/nvcf/exec/status/{reqId}`` polls in the same form. Errors before an invocation exists
are problem+json, as pexec's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
import pytest_asyncio

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_worker_input_assets import uploaded_asset
from tests.gateway.helpers import assert_problem
from tests.support.serve_process import (
    ServeProcess,
    client,
    deployed_function,
    invoke_key,
    serve_process,
    wait_active,
)


class Container:
    """What the scripted worker answers, chosen by the body's ``do`` (and what it received)."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    async def __call__(self, worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        body = orjson.loads(invocation.body) if invocation.body else None
        do = body.get("do") if isinstance(body, dict) else None
        rid = invocation.request_id
        if do == "hold":
            assert isinstance(body, dict)
            gate = self.gates.setdefault(body["gate"], asyncio.Event())
            worker.send(pb.WorkerMessage(progress=[pb.Progress(request_id=rid, percent=40)]))
            await gate.wait()
            worker.answer(rid, 200, b'{"held": true}')
        elif do == "large":
            start = pb.ResponseStart(request_id=rid, status=200, kind=pb.LARGE_RESULT)
            chunk = pb.ResponseChunk(request_id=rid, data=b"PK\x03\x04large")
            worker.send(
                pb.WorkerMessage(credits=1, starts=[start], chunks=[chunk], ends=[pb.ResponseEnd(request_id=rid)])
            )
        elif do == "fail":
            worker.answer(rid, 500, b'{"error": "boom"}')
        elif do == "text":
            worker.answer(rid, 200, b"plain words", {"content-type": "text/plain"})
        else:
            seen = {
                "path": invocation.path,
                "method": invocation.method,
                "poll": invocation.poll_seconds,
                "compat": invocation.compat,
                "headers": sorted(h.key.lower() for h in invocation.headers),
                "contentType": next((h.value for h in invocation.headers if h.key.lower() == "content-type"), None),
                "body": body,
                "assets": [a.asset_id for a in invocation.assets],
            }
            worker.answer(rid, 200, orjson.dumps(seen))


class Site:
    def __init__(self, gateway: ServeProcess, fid: str, vid: str, key: str, worker: ScriptedWorker, box: Container):
        self.gateway, self.fid, self.vid, self.key, self.worker, self.container = gateway, fid, vid, key, worker, box

    def http(self) -> httpx.AsyncClient:
        return client(self.gateway, "invocation.localhost")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_process(tmp_path_factory.mktemp("exec")) as gateway:
        yield gateway


@pytest_asyncio.fixture
async def site(served: ServeProcess) -> AsyncIterator[Site]:
    token = served.admin_token()
    fid, vid = await deployed_function(served, token)
    box = Container()
    worker = ScriptedWorker(served.grpc_target, token, fid, box)
    await worker.start()
    try:
        await wait_active(served, token, fid, vid)
        yield Site(served, fid, vid, await invoke_key(served, token), worker, box)
    finally:
        for gate in box.gates.values():
            gate.set()
        await worker.stop()


def assert_envelope(answer: httpx.Response, code: int, /, **fields: object) -> dict[str, object]:
    """An envelope with status ``code``: exactly ``fields`` besides its ``reqId``."""
    assert answer.status_code == code, answer.text
    assert answer.headers["content-type"] == "application/json"
    document: dict[str, object] = answer.json()
    assert document["reqId"] == answer.headers["nvcf-reqid"]
    uuid.UUID(str(document["reqId"]))
    assert answer.headers["nvcf-status"] == document["status"]
    assert {k: v for k, v in document.items() if k != "reqId"} == fields
    return document


def seen(body: object, *, poll: int = 60, assets: list[str] | None = None) -> dict[str, object]:
    """What the container saw of an envelope's pexec: only the JSON body, no client header."""
    return {
        "path": "/echo",
        "method": "POST",
        "poll": poll,
        "compat": True,
        "headers": ["content-type", "nvcf-invocation-region"],
        "contentType": "application/json",
        "body": body,
        "assets": assets or [],
    }


async def test_fulfilled_envelope_carries_the_container_json(site: Site) -> None:
    envelope = {"requestHeader": {"pollDurationSeconds": 30}, "requestBody": {"prompt": "hi", "n": [1, 2]}}
    async with site.http() as http:
        plain = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}", json=envelope, headers={**site.auth, "X-Client-Only": "1"}
        )
        pinned = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}/versions/{site.vid}",
            content=orjson.dumps({"requestBody": [1, "two"], "unknownField": True}),
            headers=site.auth,  # no Content-Type at all: the envelope is JSON anyway
        )
    assert_envelope(
        plain, 200, status="fulfilled", percentComplete=100, response=seen(envelope["requestBody"], poll=30)
    )
    assert_envelope(pinned, 200, status="fulfilled", percentComplete=100, response=seen([1, "two"]))


async def test_in_progress_then_status_poll_then_gone(site: Site) -> None:
    envelope = {"requestHeader": {"pollDurationSeconds": 1}, "requestBody": {"do": "hold", "gate": "a"}}
    async with site.http() as http:
        accepted = await http.post(f"/v2/nvcf/exec/functions/{site.fid}", json=envelope, headers=site.auth)
        document = assert_envelope(accepted, 202, status="in-progress", percentComplete=40)
        status = f"/v2/nvcf/exec/status/{document['reqId']}"
        still = await http.get(status, headers={**site.auth, "NVCF-POLL-SECONDS": "1"})
        assert_envelope(still, 202, status="in-progress", percentComplete=40)
        assert still.json()["reqId"] == document["reqId"]
        site.container.gates["a"].set()
        done = await http.get(status, headers=site.auth)
        assert_envelope(done, 200, status="fulfilled", percentComplete=100, response={"held": True})
        gone = await http.get(status, headers=site.auth)
    assert_problem(gone, 404, "not-found")
    assert gone.json()["detail"] == f"Request '{document['reqId']}' not found"


async def test_a_pexec_request_id_polls_through_exec_status(site: Site) -> None:
    async with site.http() as http:
        accepted = await http.post(
            f"/v2/nvcf/pexec/functions/{site.fid}",
            json={"do": "hold", "gate": "b"},
            headers={**site.auth, "NVCF-POLL-SECONDS": "1"},
        )
        assert accepted.status_code == 202, accepted.text
        site.container.gates["b"].set()
        done = await http.get(f"/v2/nvcf/exec/status/{accepted.headers['nvcf-reqid']}", headers=site.auth)
    assert_envelope(done, 200, status="fulfilled", percentComplete=100, response={"held": True})


async def test_large_result_is_a_response_reference(site: Site) -> None:
    async with site.http() as http:
        answer = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}", json={"requestBody": {"do": "large"}}, headers=site.auth
        )
        reference = str(answer.json()["responseReference"])
        document = assert_envelope(answer, 200, status="fulfilled", percentComplete=100, responseReference=reference)
        assert reference.startswith(f"http://invocation.localhost:{site.gateway.port}/v2/nvcf/pexec/results/")
        url = httpx.URL(reference)
        assert url.path == f"/v2/nvcf/pexec/results/{document['reqId']}"
        download = await http.get(url.raw_path.decode())
    assert download.status_code == 200 and download.content == b"PK\x03\x04large"


async def test_container_error_is_errored_with_its_code(site: Site) -> None:
    async with site.http() as http:
        failed = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}", json={"requestBody": {"do": "fail"}}, headers=site.auth
        )
        text = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}", json={"requestBody": {"do": "text"}}, headers=site.auth
        )
    assert_envelope(failed, 500, status="errored", errorCode=500)
    problem = assert_problem(text, 502, "bad-gateway")
    assert "not JSON" in problem["detail"]
    assert text.headers["nvcf-status"] == "errored"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "Malformed JSON request body"),
        (b"[1, 2]", "The exec request must be a JSON object"),
        (b'{"requestHeader": {}}', "missing field `requestBody`"),
        (b'{"requestHeader": 5, "requestBody": {}}', "requestHeader must be an object"),
        (
            b'{"requestHeader": {"pollDurationSeconds": "soon"}, "requestBody": {}}',
            "requestHeader.pollDurationSeconds must be a whole number of seconds",
        ),
        (b'{"requestHeader": {"pollDurationSeconds": 3601}, "requestBody": {}}', "NVCF-POLL-SECONDS must be <= 3600"),
        (
            b'{"requestHeader": {"inputAssetReferences": ["not-a-uuid"]}, "requestBody": {}}',
            "requestHeader.inputAssetReferences must be a list of asset ids (UUIDs)",
        ),
    ],
)
async def test_a_bad_envelope_is_a_400_problem_and_reaches_no_worker(site: Site, body: bytes, detail: str) -> None:
    before = len(site.worker.received)
    async with site.http() as http:
        response = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}",
            content=body,
            headers={**site.auth, "Content-Type": "application/json"},
        )
    problem = assert_problem(response, 400, "bad-request")
    assert problem["detail"] == detail
    assert response.headers["nvcf-status"] == "errored"
    assert len(site.worker.received) == before


async def test_input_asset_references_reach_the_worker(site: Site) -> None:
    asset_id = await uploaded_asset(site.gateway, site.key, b"input bytes")
    envelope = {"requestHeader": {"inputAssetReferences": [asset_id.upper()]}, "requestBody": {"use": "asset"}}
    async with site.http() as http:
        answer = await http.post(f"/v2/nvcf/exec/functions/{site.fid}", json=envelope, headers=site.auth)
    expected = seen({"use": "asset"}, assets=[asset_id])
    assert_envelope(answer, 200, status="fulfilled", percentComplete=100, response=expected)


async def test_an_unknown_asset_and_an_unknown_function_are_404_problems(site: Site) -> None:
    missing = str(uuid.uuid4())
    async with site.http() as http:
        asset = await http.post(
            f"/v2/nvcf/exec/functions/{site.fid}",
            json={"requestHeader": {"inputAssetReferences": [missing]}, "requestBody": {}},
            headers=site.auth,
        )
        function = await http.post(f"/v2/nvcf/exec/functions/{missing}", json={"requestBody": {}}, headers=site.auth)
        status = await http.get(f"/v2/nvcf/exec/status/{missing}", headers=site.auth)
    assert assert_problem(asset, 404, "not-found")["detail"] == f"Asset '{missing}' not found"
    assert assert_problem(function, 404, "not-found")["detail"] == f"Function '{missing}' not found"
    assert assert_problem(status, 404, "not-found")["detail"] == f"Request '{missing}' not found"
