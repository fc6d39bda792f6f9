"""A tiny OpenAI-compatible inference server: the sample LLM "container" (no weights).

Answers are deterministic: the completion repeats the words of the prompt (``echo`` when there
are none) up to ``max_tokens`` (default 16) tokens, one word a token; usage counts prompt words
and generated tokens. Streams send one chunk per token, ``delay`` seconds apart (the first after
``first_delay``, a stand-in for prefill; whole answers wait both), OpenAI's SSE
framing and ``data: [DONE]`` (chat/completions; with ``stream_options.include_usage`` a last
usage-only chunk), or the Responses API events. Only the served model names are accepted (404
``model_not_found`` otherwise), so a caller sees whether a gateway rewrote ``model``.

Test hooks, not OpenAI: a request field ``hold`` (any name) makes a stream stop after its first
chunk until ``POST /release/<name>``; ``GET /stats`` tells how many streams are running and done.

    python -m gateway.llm.container --port P [--model NAME ...] [--delay S] [--first-delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MODEL = "cfgate-sample"
DEFAULT_MAX_TOKENS = 16
EMBEDDING_DIMENSIONS = 8
_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass
class Stats:
    requests: int = 0
    streams_running: int = 0
    streams_done: int = 0
    models: list[str] = field(default_factory=list)


class SampleLlm:
    """The ASGI app (raw: no framework, as the other sample containers)."""

    def __init__(
        self, models: tuple[str, ...] = (DEFAULT_MODEL,), delay: float = 0.0, first_delay: float = 0.0
    ) -> None:
        self.models = models
        self.delay = delay
        self.first_delay = first_delay
        self.stats = Stats()
        self._gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path, method = scope["path"], scope["method"]
        if path == "/health":
            await _respond(send, 200, {"status": "ok"})
        elif path == "/stats":
            await _respond(send, 200, self.stats.__dict__)
        elif path.startswith("/release/") and method == "POST":
            self.gate(path.removeprefix("/release/")).set()
            await _respond(send, 200, {"released": path.removeprefix("/release/")})
        elif path == "/v1/models" and method == "GET":
            await _respond(send, 200, {"object": "list", "data": [_model_card(m) for m in self.models]})
        elif path in _HANDLERS and method == "POST":
            self.stats.requests += 1
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                await _respond(send, 400, _error(400, "invalid JSON body", "invalid_request_error", None))
                return
            if not isinstance(request, dict):
                await _respond(send, 400, _error(400, "body must be an object", "invalid_request_error", None))
                return
            self.stats.models.append(str(request.get("model")))
            if request.get("model") not in self.models:
                detail = f"The model `{request.get('model')}` does not exist"
                await _respond(send, 404, _error(404, detail, "invalid_request_error", "model_not_found"))
                return
            if self.first_delay:
                await asyncio.sleep(self.first_delay)
            await _HANDLERS[path](self, request, send)
        else:
            await _respond(send, 404, _error(404, f"Invalid URL ({method} {path})", "invalid_request_error", None))

    # --- endpoints ------------------------------------------------------------------------

    async def chat(self, request: dict[str, Any], send: Send) -> None:
        prompt = " ".join(_text(m.get("content")) for m in request.get("messages") or [] if isinstance(m, dict))
        await self._complete(request, send, prompt, chat=True)

    async def completions(self, request: dict[str, Any], send: Send) -> None:
        await self._complete(request, send, _text(request.get("prompt")), chat=False)

    async def embeddings(self, request: dict[str, Any], send: Send) -> None:
        raw = request.get("input")
        inputs = [raw] if isinstance(raw, str) else [_text(i) for i in raw] if isinstance(raw, list) else []
        data = [{"object": "embedding", "index": i, "embedding": _vector(text)} for i, text in enumerate(inputs)]
        tokens = sum(len(text.split()) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        await _respond(send, 200, {"object": "list", "data": data, "model": request["model"], "usage": usage})

    async def responses(self, request: dict[str, Any], send: Send) -> None:
        raw = request.get("input")
        if isinstance(raw, list):
            prompt = " ".join(_text(item.get("content")) for item in raw if isinstance(item, dict))
        else:
            prompt = _text(raw)
        words = _words(prompt, request.get("max_output_tokens"))
        rid, created = f"resp_{_digest(prompt)}", int(time.time())
        usage = {"input_tokens": len(prompt.split()), "output_tokens": len(words)}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]

        def response(status: str, text: str, with_usage: bool) -> dict[str, Any]:
            content = [{"type": "output_text", "text": text, "annotations": []}]
            item = {"id": f"msg_{rid}", "type": "message", "role": "assistant", "status": status, "content": content}
            return {
                "id": rid, "object": "response", "created_at": created, "status": status, "model": request["model"],
                "output": [item] if text else [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "usage": usage if with_usage else None,
            }  # fmt: skip

        text = " ".join(words)
        if request.get("stream") is not True:
            await _respond(send, 200, response("completed", text, True))
            return

        async def events() -> AsyncIterator[bytes]:
            yield _event(
                {"type": "response.created", "response": response("in_progress", "", False)}, "response.created"
            )
            for i, word in enumerate(words):
                delta = {"type": "response.output_text.delta", "item_id": f"msg_{rid}", "output_index": 0}
                delta.update(content_index=0, delta=(" " if i else "") + word)
                yield _event(delta, "response.output_text.delta")
            done = {"type": "response.completed", "response": response("completed", text, True)}
            yield _event(done, "response.completed")

        await self._stream(send, events(), request.get("hold"))

    async def _complete(self, request: dict[str, Any], send: Send, prompt: str, *, chat: bool) -> None:
        words = _words(prompt, request.get("max_tokens") or request.get("max_completion_tokens"))
        prompt_tokens = len(prompt.split())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words)}
        usage["total_tokens"] = prompt_tokens + len(words)
        rid, created = ("chatcmpl-" if chat else "cmpl-") + _digest(prompt), int(time.time())
        kind = "chat.completion" if chat else "text_completion"
        text = " ".join(words)
        if request.get("stream") is not True:
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            answer = {"id": rid, "object": kind, "created": created, "model": request["model"], "choices": [choice]}
            await _respond(send, 200, {**answer, "usage": usage})
            return
        options = request.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        chunk_kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], usage_value: object = None) -> bytes:
            document = {
                "id": rid,
                "object": chunk_kind,
                "created": created,
                "model": request["model"],
                "choices": choices,
            }
            if with_usage:
                document["usage"] = usage_value
            return _event(document)

        async def events() -> AsyncIterator[bytes]:
            for i, word in enumerate(words):
                piece = (" " if i else "") + word
                if chat:
                    delta: dict[str, Any] = {"content": piece} if i else {"role": "assistant", "content": piece}
                    yield chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])
                else:
                    yield chunk([{"index": 0, "text": piece, "finish_reason": None, "logprobs": None}])
            last: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
            if chat:
                last["delta"] = {}
            else:
                last["text"] = ""
            yield chunk([last])
            if with_usage:
                yield chunk([], usage)
            yield b"data: [DONE]\n\n"

        await self._stream(send, events(), request.get("hold"))

    async def _stream(self, send: Send, events: AsyncIterator[bytes], hold: object) -> None:
        stats = self.stats
        stats.streams_running += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
            first = True
            async for event in events:
                if not first and self.delay:
                    await asyncio.sleep(self.delay)
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if first and isinstance(hold, str):
                    await self.gate(hold).wait()
                first = False
            await send({"type": "http.response.body", "body": b""})
        finally:
            stats.streams_running -= 1
            stats.streams_done += 1


_HANDLERS: dict[str, Callable[[SampleLlm, dict[str, Any], Send], Awaitable[None]]] = {
    "/v1/chat/completions": SampleLlm.chat,
    "/v1/completions": SampleLlm.completions,
    "/v1/embeddings": SampleLlm.embeddings,
    "/v1/responses": SampleLlm.responses,
}


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts / prompt lists
        return " ".join(_text(v.get("text") if isinstance(v, dict) else v) for v in value)
    return ""


def _words(prompt: str, limit: object) -> list[str]:
    count = limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_TOKENS
    source = prompt.split() or ["echo"]
    return [source[i % len(source)] for i in range(count)]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:EMBEDDING_DIMENSIONS]]


def _model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "cfgate"}


def _error(status: int, message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _event(document: dict[str, Any], name: str | None = None) -> bytes:
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + orjson.dumps(document) + b"\n\n"


async def _respond(send: Send, status: int, payload: object) -> None:
    body = orjson.dumps(payload)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description="A tiny OpenAI-compatible server (deterministic, no weights).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", help=f"a model name served (repeatable; {DEFAULT_MODEL})")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--first-delay", type=float, default=0.0, help="seconds before the first chunk (prefill)")
    args = parser.parse_args()
    uvicorn.run(
        SampleLlm(tuple(args.model or [DEFAULT_MODEL]), args.delay, args.first_delay),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
