"""``cfgate demo --llm``: the sample OpenAI container (``gateway.llm.container``) as an LLM
function with its worker, one chat completion on ``llm.invocation.<domain>``, and the ``openai``
snippet that repeats it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn

from gateway import sample
from gateway.llm.container import SampleLlm
from gateway.settings import Settings

OPENAI_SNIPPET = """\
from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key="{key}", default_headers={{"Host": "{host}"}})
answer = client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": "hello cfgate"}}])
print(answer.choices[0].message.content)"""


class _Quiet(uvicorn.Server):
    """Ctrl-C is the demo's, not this server's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _say(text: str) -> None:
    print(f"cfgate demo: {text}", flush=True)


@contextlib.asynccontextmanager
async def llm_demo(
    http: httpx.AsyncClient, settings: Settings, token: str, worker_target: str, port: int
) -> AsyncIterator[bool]:
    """Start the container (on ``port``) and its worker, make the call, print it; stop both on exit."""
    server = _Quiet(uvicorn.Config(SampleLlm(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    worker: subprocess.Popen[bytes] | None = None
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the sample LLM container did not start")
            await asyncio.sleep(0.02)
        _say(f"sample OpenAI container on http://127.0.0.1:{port}")
        function = await sample.create_function(
            http, token, port, name="sample-llm", inference_url="/v1/chat/completions", extra_fields=sample.LLM_FIELDS
        )
        worker = subprocess.Popen(sample.worker_command(worker_target, function, port), env=sample.worker_env(function))
        await sample.wait_active(http, function)
        model = f"{function.function_id}/{sample.LLM_MODEL}"
        _say(f"LLM function registered, deployed and ACTIVE: model {model}")
        key = await sample.invoke_key(http, token)
        host = settings.public_urls.host_header("llm.invocation")
        body = {"model": model, "messages": [{"role": "user", "content": "hello cfgate"}], "max_tokens": 4}
        answer = await http.post(
            "/v1/chat/completions", json=body, headers={"Host": host, "Authorization": f"Bearer {key}"}
        )
        _say(f"chat completion answered {answer.status_code}:")
        print(json.dumps(answer.json(), indent=2), flush=True)
        _say("repeat it with the openai package:")
        print(OPENAI_SNIPPET.format(base=settings.http_url, key=key, host=host, model=model), flush=True)
        yield answer.status_code == 200
    finally:
        if worker is not None:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
