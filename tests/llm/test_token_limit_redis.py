"""``tokenRateLimit`` with ``cfgate serve --redis``: the windows live in a real Redis, and the
admission's reservation (one Lua script) holds concurrent requests to one reservation past the
limit, as in process (``test_openai_client``); streams cut early are charged there too."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import openai
from redis.asyncio import Redis

from gateway import sample
from tests.llm.support import create_llm_function, llm_function_body, sample_container, worker_process
from tests.support.serve_process import serve_process

MODEL = "cfgate-redis-limited"


async def test_reservations_and_cut_streams_are_counted_in_redis(tmp_path: Path, redis_url: str) -> None:
    models = [{"name": MODEL, "llmConfig": {"uris": ["/v1/chat/completions"], "tokenRateLimit": "30-H"}}]
    with serve_process(tmp_path, "--redis", redis_url) as gateway:
        async with sample_container((MODEL,), delay=0.02) as (app, port):
            async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as http:
                token = await sample.admin_token(http)
                function = await create_llm_function(http, token, llm_function_body(port, models))
                with worker_process(gateway.grpc_target, function, port):
                    await sample.wait_active(http, function)
                    key = await sample.invoke_key(http, token)
                    headers = {"Host": "llm.invocation.localhost"}
                    client = openai.AsyncOpenAI(
                        base_url=f"{gateway.base}/v1", api_key=key, default_headers=headers, max_retries=0
                    )
                    model = f"{function.function_id}/{MODEL}"
                    gate = f"hold-{uuid.uuid4().hex}"

                    async def one() -> object:
                        try:
                            return await client.chat.completions.create(
                                model=model,
                                messages=[{"role": "user", "content": "x"}],
                                max_tokens=10,
                                stream=True,
                                extra_body={"hold": gate},
                            )
                        except openai.RateLimitError as refused:
                            return refused

                    async with client:
                        results = await asyncio.gather(*(one() for _ in range(6)))
                        streams = [r for r in results if isinstance(r, openai.AsyncStream)]
                        # 12 reserved each (2 prompt + 10): admitted at 0, 12 and 24 of 30.
                        assert len(streams) == 3
                        async with Redis.from_url(redis_url) as redis:
                            keys = [k async for k in redis.scan_iter(f"cfgate:tokens:{{{model}}}:*")]
                            assert len(keys) == 1 and int(await redis.get(keys[0]) or 0) == 36
                            # Two hang up after their first chunk, one is read to its end.
                            for stream in streams[:2]:
                                await stream.close()
                            app.gate(gate).set()
                            assert len([chunk async for chunk in streams[2]]) == 11
                            await asyncio.sleep(0.5)  # the gateway settles
                            used = int(await redis.get(keys[0]) or 0)
    # The whole one: its usage (1 + 10); each cut one: ~2 prompt + the chunk or two relayed.
    assert 11 + 2 * 3 <= used <= 11 + 2 * 6, used
