"""``llmInvocationConfig.priority`` orders one function's queue between accounts, on the memory
and the Redis queue: with the only worker busy, requests of the account with the lower number
are served first whatever order they came in, FIFO within an account; queue depth counts all."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import wait_active

OTHER = "priority-partner"
MODEL = "m"


def _completion(tag: str) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": tag}, "finish_reason": "stop"}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return orjson.dumps(
        {"id": tag, "object": "chat.completion", "created": 0, "model": MODEL, "choices": [choice], "usage": usage}
    )


async def test_lower_priority_number_is_served_first_between_accounts(live_gateway: LiveGateway) -> None:
    runtime = live_gateway.gateway.runtime
    await runtime.accounts.ensure(OTHER, OTHER, f"{OTHER}-client")
    fid, vid = await live_gateway.create_deployed_function(
        inferenceUrl="/v1/chat/completions",
        functionType="LLM",
        models=[{"name": MODEL, "llmConfig": {"uris": ["/v1/chat/completions"]}}],
        llmInvocationConfig={"priority": {"defaultPriority": 9, "perAccountPriority": {OTHER: 1}}},
    )
    sharer = runtime.issuer.mint(live_gateway.gateway.settings.admin_client_id, ["authorize_clients"])
    async with live_gateway.client("api.localhost") as api:
        shared = await api.post(
            f"/v2/nvcf/authorizations/functions/{fid}",
            json={"authorizedParties": [{"ncaId": OTHER}]},
            headers={"Authorization": f"Bearer {sharer.value}"},
        )
        assert shared.status_code == 200, shared.text
    client_id = live_gateway.gateway.settings.admin_client_id  # the default account's admin
    owner = {"Authorization": f"Bearer {runtime.issuer.mint(client_id, ['invoke_function']).value}"}
    other = {"Authorization": f"Bearer {runtime.issuer.mint(f'{OTHER}-client', ['invoke_function']).value}"}
    busy = asyncio.Event()

    async def reply(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        tag = orjson.loads(invocation.body)["messages"][0]["content"]
        if tag == "blocker":
            await busy.wait()
        worker.answer(invocation.request_id, 200, _completion(tag))

    worker = ScriptedWorker(live_gateway.grpc_target, live_gateway.admin_token, fid, reply, concurrency=1)
    await worker.start()
    try:
        await wait_active(live_gateway, fid, vid)
        async with live_gateway.client("llm.invocation.localhost") as llm:

            def ask(tag: str, headers: dict[str, str]) -> asyncio.Task[httpx.Response]:
                body = {"model": f"{fid}/{MODEL}", "messages": [{"role": "user", "content": tag}]}
                return asyncio.create_task(llm.post("/v1/chat/completions", json=body, headers=headers))

            calls = [ask("blocker", owner)]
            async with asyncio.timeout(10):
                while len(worker.received) < 1:
                    assert not calls[0].done(), calls[0].result().text
                    await asyncio.sleep(0.01)
            for i, (tag, headers) in enumerate([("a1", owner), ("b1", other), ("a2", owner), ("b2", other)]):
                calls.append(ask(tag, headers))
                async with asyncio.timeout(10):  # each one queued before the next is sent
                    while await runtime.queues.depth(vid) < i + 1:
                        assert not calls[-1].done(), calls[-1].result().text
                        await asyncio.sleep(0.01)
            assert await runtime.queues.depth(vid) == 4
            busy.set()
            answers = await asyncio.gather(*calls)
    finally:
        await worker.stop()
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    served = [orjson.loads(i.body)["messages"][0]["content"] for i in worker.received]
    assert served == ["blocker", "b1", "b2", "a1", "a2"]
    assert await runtime.queues.depth(vid) == 0
