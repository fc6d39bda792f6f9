"""The official ``openai`` client against a real ``cfgate serve`` on ``llm.invocation.localhost``.

Everything is real: the gateway process, the worker agent process, the sample OpenAI container,
and the client a user would write (``base_url`` plus a default ``Host`` header, as without DNS).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import pytest_asyncio

from gateway import sample
from gateway.llm.container import SampleLlm
from tests.gateway.helpers import create_key, key_body
from tests.llm.support import (
    LIMITED_MODEL,
    MODEL,
    STREAM_LIMITED_MODEL,
    create_llm_function,
    llm_function_body,
    sample_container,
    worker_process,
)
from tests.support.serve_process import serve_process

pytestmark = pytest.mark.asyncio(loop_scope="module")
LLM_HOST = "llm.invocation.localhost"
ABANDONED_MODEL = "cfgate-abandoned"  # streams cut by their client before the usage chunk
CONCURRENT_MODEL = "cfgate-concurrent"  # requests admitted at the same time
MODELS = (MODEL, LIMITED_MODEL, STREAM_LIMITED_MODEL, ABANDONED_MODEL, CONCURRENT_MODEL)


@dataclass
class Site:
    base: str
    container: SampleLlm
    function_id: str
    key: str  # invoke_function on the account's functions
    bound_key: str  # invoke_function on another function only
    admin_token: str

    def client(self, key: str | None = None, host: str = LLM_HOST) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{self.base}/v1", api_key=key or self.key, default_headers={"Host": host}, max_retries=0
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("llm")
    models = [
        {"name": MODEL, "llmConfig": {"uris": ["/v1"]}},
        {"name": LIMITED_MODEL, "llmConfig": {"uris": ["/v1/chat/completions"], "tokenRateLimit": "20-H"}},
        {"name": STREAM_LIMITED_MODEL, "llmConfig": {"uris": ["/v1/chat/completions"], "tokenRateLimit": "12-H"}},
        {"name": ABANDONED_MODEL, "llmConfig": {"uris": ["/v1/chat/completions"], "tokenRateLimit": "40-H"}},
        {"name": CONCURRENT_MODEL, "llmConfig": {"uris": ["/v1/chat/completions"], "tokenRateLimit": "30-H"}},
    ]
    with serve_process(tmp) as gateway:
        async with sample_container(MODELS, delay=0.02) as (app, port):
            async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as http:
                token = await sample.admin_token(http)
                function = await create_llm_function(http, token, llm_function_body(port, models))
                with worker_process(gateway.grpc_target, function, port):
                    await sample.wait_active(http, function)
                    key = await sample.invoke_key(http, token)
                    keys = httpx.AsyncClient(base_url=gateway.base, headers={"Host": "api-keys.localhost"})
                    async with keys:
                        bound = key_body(resources=[{"type": "function", "id": f"{uuid.uuid4()}/*"}])
                        bound_key = (await create_key(keys, token, bound))["value"]
                    yield Site(gateway.base, app, function.function_id, key, bound_key, token)


def model_id(site: Site, name: str = MODEL) -> str:
    return f"{site.function_id}/{name}"


async def test_chat_completion_reaches_the_container_with_the_model_name_rewritten(site: Site) -> None:
    async with site.client() as client:
        answer = await client.chat.completions.create(
            model=model_id(site), messages=[{"role": "user", "content": "hello gateway"}], max_tokens=4
        )
    assert answer.choices[0].message.content == "hello gateway hello gateway"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (2, 4, 6)
    assert site.container.stats.models[-1] == MODEL  # the container got <model-name>, not <fid>/<model-name>
    assert answer.model == model_id(site)  # and the client sees back the id it sent


async def test_streaming_chat_chunks_arrive_while_the_container_is_still_generating(site: Site) -> None:
    gate = f"hold-{uuid.uuid4().hex}"
    done_before = site.container.stats.streams_done
    pieces: list[str] = []
    async with site.client() as client:
        stream = await client.chat.completions.create(
            model=model_id(site),
            messages=[{"role": "user", "content": "one two three"}],
            max_tokens=6,
            stream=True,
            extra_body={"hold": gate},  # the sample container stops after its first chunk until released
        )
        async with stream:
            first = await stream.__anext__()
            # The first chunk is here while the container is still inside its stream, held at the gate.
            assert site.container.stats.streams_running == 1
            assert site.container.stats.streams_done == done_before
            pieces.append(first.choices[0].delta.content or "")
            site.container.gate(gate).set()
            async for chunk in stream:
                assert chunk.choices, "the usage-only chunk the gateway asked for must not reach this client"
                pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == "one two three one two three"
    assert site.container.stats.streams_done == done_before + 1


async def test_streaming_with_include_usage_keeps_the_usage_chunk(site: Site) -> None:
    async with site.client() as client:
        stream = await client.chat.completions.create(
            model=model_id(site),
            messages=[{"role": "user", "content": "a b"}],
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 5
    assert {chunk.model for chunk in chunks} == {model_id(site)}


async def test_embeddings_and_completions(site: Site) -> None:
    async with site.client() as client:
        embedded = await client.embeddings.create(model=model_id(site), input=["first text", "second"])
        completed = await client.completions.create(model=model_id(site), prompt="say this", max_tokens=3)
    assert [e.index for e in embedded.data] == [0, 1]
    assert all(len(e.embedding) == 8 for e in embedded.data)
    assert embedded.usage.total_tokens == 3
    assert completed.choices[0].text == "say this say"
    assert (embedded.model, completed.model) == (model_id(site), model_id(site))


async def test_models_list_names_the_callers_llm_functions(site: Site) -> None:
    async with site.client() as client:
        listed = [m.id async for m in client.models.list()]
    async with site.client(site.bound_key) as client:
        hidden = [m.id async for m in client.models.list()]
    assert sorted(listed) == sorted([model_id(site, m) for m in MODELS])
    assert hidden == []
    async with site.client() as client:
        card = await client.models.retrieve(model_id(site))
        assert (card.id, card.object) == (model_id(site), "model")
    async with site.client(site.bound_key) as client:
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve(model_id(site))


async def test_unknown_model_is_404_model_not_found(site: Site) -> None:
    async with site.client() as client:
        for model in (f"{site.function_id}/no-such-model", f"{uuid.uuid4()}/{MODEL}", "not-a-function-id"):
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
            assert caught.value.status_code == 404
            assert caught.value.body == {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }


async def test_a_key_without_the_function_is_403_as_on_pexec(site: Site) -> None:
    async with site.client(site.bound_key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(model=model_id(site), messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 403
    assert caught.value.body == {
        "message": "Missing resource entry in ApiKey for the function",
        "type": "invalid_request_error",
        "param": None,
        "code": "permission_denied",
    }


async def test_bad_credentials_are_401_in_openais_shape(site: Site) -> None:
    async with site.client("nvapi-not-a-real-key") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.models.list()
    assert caught.value.status_code == 401
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "invalid_api_key"


async def test_token_rate_limit_answers_429_with_openais_body(site: Site) -> None:
    async with site.client() as client:
        # 2 prompt + 16 completion + ... the first request spends the model's 20 tokens an hour.
        first = await client.chat.completions.create(
            model=model_id(site, LIMITED_MODEL), messages=[{"role": "user", "content": "w " * 10}], max_tokens=10
        )
        assert first.usage is not None and first.usage.total_tokens == 20
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(50):  # the charge lands when the answer has ended: at most a moment later
                await client.chat.completions.create(
                    model=model_id(site, LIMITED_MODEL), messages=[{"role": "user", "content": "x"}], max_tokens=1
                )
                await asyncio.sleep(0.05)
    assert caught.value.status_code == 429
    body = caught.value.body
    assert isinstance(body, dict) and (body["type"], body["code"]) == ("tokens", "rate_limit_exceeded")
    assert int(caught.value.response.headers["retry-after"]) >= 1
    # The unlimited model of the same function is not affected.
    async with site.client() as client:
        other = await client.chat.completions.create(
            model=model_id(site), messages=[{"role": "user", "content": "x"}], max_tokens=1
        )
    assert other.choices[0].message.content == "x"


async def test_streamed_usage_counts_against_the_token_rate_limit(site: Site) -> None:
    """The client does not ask for usage; the gateway does, counts it, and drops the usage chunk."""
    model = model_id(site, STREAM_LIMITED_MODEL)
    async with site.client() as client:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "two words"}], max_tokens=10, stream=True
        )
        chunks = [chunk async for chunk in stream]  # 2 prompt + 10 completion tokens: the 12 of the hour
        assert all(chunk.choices for chunk in chunks) and all(chunk.usage is None for chunk in chunks)
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(50):
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "x"}], max_tokens=1, stream=True
                )
                await asyncio.sleep(0.05)
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "tokens"


async def test_streams_abandoned_before_their_usage_are_charged_what_was_relayed(site: Site) -> None:
    """A client that hangs up after a few chunks (no usage chunk ever relayed) is still charged:
    the prompt's estimate plus the chunks relayed, so repeating it ends in 429. Each abandoned
    stream gives back the rest of its reservation (200 tokens asked, 40 an hour allowed): without
    that the second request would already be refused."""
    model = model_id(site, ABANDONED_MODEL)
    abandoned = 0
    async with site.client() as client:
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(40):
                stream = await client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "one two three four"}],
                    max_tokens=200,  # 4 s of chunks at the container's pace, if it were read
                    stream=True,
                )
                async with stream:
                    for _ in range(2):
                        chunk = await stream.__anext__()
                        assert chunk.choices
                abandoned += 1
                await asyncio.sleep(0.3)  # the gateway sees the hang-up and settles
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "tokens"
    # ~6 prompt + a few relayed tokens each against 40: refused after a handful, not at once.
    assert 3 <= abandoned <= 10, abandoned


async def test_concurrent_requests_cannot_overshoot_the_window_by_more_than_one_reservation(site: Site) -> None:
    """Six requests at once on a 30-token hour, each reserving 2 (prompt) + 10 (max_tokens) at
    admission: three fit (0, 12, 24 used before each), three are refused while the first are
    still generating."""
    model = model_id(site, CONCURRENT_MODEL)
    gate = f"hold-{uuid.uuid4().hex}"
    async with site.client() as client:

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

        results = await asyncio.gather(*(one() for _ in range(6)))
        site.container.gate(gate).set()
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        streams = [r for r in results if isinstance(r, openai.AsyncStream)]
        for stream in streams:
            assert len([chunk async for chunk in stream]) == 11  # 10 tokens and the finish chunk
    assert (len(streams), len(refused)) == (3, 3)
    assert all(isinstance(r.body, dict) and r.body["type"] == "tokens" for r in refused)


async def test_responses_api_whole_and_streamed(site: Site) -> None:
    async with site.client() as client:
        whole = await client.responses.create(model=model_id(site), input="alpha beta", max_output_tokens=3)
        streamed = [
            event
            async for event in await client.responses.create(
                model=model_id(site), input="alpha", max_output_tokens=2, stream=True
            )
        ]
    events = [event.type for event in streamed]
    assert whole.model == model_id(site)
    assert streamed[-1].type == "response.completed" and streamed[-1].response.model == model_id(site)
    assert whole.output_text == "alpha beta alpha"
    assert whole.usage is not None and whole.usage.total_tokens == 5
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert events.count("response.output_text.delta") == 2


async def test_the_llm_host_serves_its_openapi_document_without_a_credential(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.base) as http:
        answers = [
            await http.get("/v3/openapi", headers={"Host": host, **auth})
            for host in (LLM_HOST, "llm.localhost")
            for auth in ({}, {"Authorization": "Bearer not-a-credential"}, {"Authorization": f"Bearer {site.key}"})
        ]
        posted = await http.post("/v3/openapi", headers={"Host": LLM_HOST})
    assert [a.status_code for a in answers] == [200] * 6
    document = answers[0].json()
    assert document["openapi"] == "3.1.0"
    assert sorted(document["paths"]) == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/models/{model}",
        "/v1/responses",
    ]
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "messages"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET")


async def test_bad_body_and_paths_are_openai_errors(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.base, headers={"Host": "llm.localhost"}) as http:
        auth = {"Authorization": f"Bearer {site.key}"}
        not_json = await http.post("/v1/chat/completions", content=b"{nope", headers=auth)
        no_model = await http.post("/v1/chat/completions", json={"messages": []}, headers=auth)
        unknown = await http.post("/v1/fine_tuning/jobs", json={}, headers=auth)
        wrong_method = await http.get("/v1/chat/completions", headers=auth)
        unserved = await http.post("/v1/embeddings", json={"model": model_id(site, LIMITED_MODEL)}, headers=auth)
    assert (not_json.status_code, not_json.json()["error"]["type"]) == (400, "invalid_request_error")
    assert (no_model.status_code, no_model.json()["error"]["param"]) == (400, "model")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_url")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert (unserved.status_code, unserved.json()["error"]["code"]) == (404, "unsupported_endpoint")
