"""The container's ``Date`` and ``Server`` stay behind: an answer carries the gateway's one Date."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import start_worker, wait_active

CONTAINER_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


async def _with_own_headers(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    headers = {"content-type": "application/json", "date": CONTAINER_DATE, "server": "tritonserver/2.41", "x-kept": "1"}
    worker.answer(invocation.request_id, 200, b'{"ok":true}', headers)


async def test_answers_carry_one_gateway_date_and_no_container_server(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid, _with_own_headers)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        pexec = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        direct = await client.post(
            "/anything", json={}, headers={"Authorization": f"Bearer {key}", "Host": f"{fid}.invocation.localhost"}
        )
    for answer in (pexec, direct):
        assert answer.status_code == 200 and answer.json() == {"ok": True}
        dates = answer.headers.get_list("date")
        assert len(dates) == 1 and dates[0] != CONTAINER_DATE
        assert parsedate_to_datetime(dates[0]).year >= 2024
        assert "server" not in answer.headers
        assert answer.headers["x-kept"] == "1"
    await worker.stop()
