"""What ``LlmExchange`` charges however an answer ends (the relay alone, over a recording exchange):
the usage reported, else for a stream the prompt's estimate plus the content relayed, and nothing
for an error. The end-to-end versions (a real client hanging up) are in ``test_openai_client``."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from gateway.edge.exchange import Exchange, Headers
from gateway.llm.relay import LlmExchange, renamer

SSE: Headers = [(b"content-type", b"text/event-stream")]


class Recorder(Exchange):
    def __init__(self) -> None:
        self.status = 0
        self.sent = b""  # the bytes the client got
        self.gone: Callable[[], None] | None = None
        self.ended = False

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.status, self.sent, self.ended = status, body, True

    def start(self, status: int, headers: Headers) -> None:
        self.status = status

    def write(self, data: bytes) -> None:
        self.sent += data

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.ended = True

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self.gone = callback


def chunk(content: str, usage: dict[str, int] | None = None) -> bytes:
    choices = [{"index": 0, "delta": {"content": content}}] if content else []
    document: dict[str, object] = {"object": "chat.completion.chunk", "model": "m", "choices": choices}
    if usage is not None:
        document["usage"] = usage
    return b"data: " + orjson.dumps(document) + b"\n\n"


def relay(charged: list[int | None]) -> tuple[Recorder, LlmExchange]:
    inner = Recorder()
    exchange = LlmExchange(
        inner, b"{}", charged.append, strip_usage_chunk=True, prompt_tokens=5, renamed=renamer("m", "fid/m")
    )
    return inner, exchange


def test_a_stream_cut_by_a_container_failure_is_charged_prompt_and_relayed_content() -> None:
    charged: list[int | None] = []
    inner, exchange = relay(charged)
    exchange.start(200, SSE)
    exchange.write(chunk("one") + chunk("two three four five"))  # 1 + ceil(19 / 4) = 5 tokens
    exchange.end()  # the invocation failed: the body just ends, no usage chunk came
    assert charged == [5 + 6]
    assert inner.sent.count(b'"model":"fid/m"') == 2


def test_a_client_gone_mid_stream_is_charged_once() -> None:
    charged: list[int | None] = []
    inner, exchange = relay(charged)
    exchange.start(200, SSE)
    exchange.write(chunk("one"))
    assert inner.gone is not None
    inner.gone()  # the client hung up
    inner.gone()
    exchange.end()
    assert charged == [5 + 1]


def test_the_usage_reported_wins_and_its_chunk_is_dropped_even_from_a_whole_stream() -> None:
    charged: list[int | None] = []
    inner, exchange = relay(charged)
    body = chunk("one") + chunk("", {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3})
    exchange.respond(200, [*SSE, (b"content-length", str(len(body)).encode())], body + b"data: [DONE]\n\n")
    assert charged == [3]
    assert b'"usage"' not in inner.sent and inner.sent.endswith(b"data: [DONE]\n\n")


def test_errors_and_answers_never_started_charge_nothing() -> None:
    charged: list[int | None] = []
    _, exchange = relay(charged)
    exchange.respond(502, [(b"content-type", b"application/problem+json")], b'{"status": 502, "title": "x"}')
    _, unstarted = relay(charged)
    unstarted.settle()  # never queued
    assert charged == [0, 0]


def test_the_model_is_renamed_in_any_spelling_but_never_inside_content() -> None:
    rename = renamer("m", "fid/m")
    assert rename(b'{"model":"m","x":1}') == b'{"model":"fid/m","x":1}'
    assert rename(b'{"response": {"model" : "m"}}') == b'{"response": {"model" : "fid/m"}}'
    content = orjson.dumps({"choices": [{"text": '"model": "m"'}], "model": "other"})
    assert rename(content) == content
