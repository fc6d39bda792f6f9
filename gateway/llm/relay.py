"""The container's answer on its way to an OpenAI client: usage read, errors reshaped.

``LlmExchange`` stands between the invocation answer loop (``gateway.invocation.answer``) and
the client's exchange. It hands the answer loop the rewritten request body, reads the usage the
container reports (a JSON body's ``usage``; in a stream the chunk carrying it, or a Responses
stream's ``response.completed``) and reports the total once the answer is complete, and turns
any problem+json (the gateway's 504, a worker's 502 for an unreachable container) into OpenAI's
error body. Server-sent events are relayed event by event as they complete, unchanged, except
the usage-only chunk the gateway asked for (``stream_options.include_usage``) when the client
did not ask for it itself.

The answer's ``model`` is the id the client sent and ``/v1/models`` lists,
``<function-id>/<model-name>``, not the container's ``<model-name>`` (``renamed``): a client can
send back what it got. JSON answers are held whole (up to ``MAX_METERED_BODY``, beyond it relayed
as they come, unrenamed); stream events are renamed one by one.

Whatever way the answer ends, ``on_tokens`` is told once what to charge: the reported usage;
for a stream that ended without one (client gone, container failure, cancel) the prompt's
estimate plus the content relayed (``gateway.llm.estimate``); ``None`` for a whole answer
without usage (the admission's reservation stands); 0 when nothing was relayed or the answer
is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from gateway.edge.exchange import Exchange, Headers, HotRequest
from gateway.llm.errors import from_problem_json
from gateway.llm.estimate import chunk_tokens

# A JSON answer is kept (for its usage) up to this size; a larger one is relayed uncounted.
MAX_METERED_BODY = 4 << 20
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n")


def _content_type(headers: Headers) -> bytes:
    for key, value in headers:
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""


def tokens_of(usage: object) -> int:
    """Total tokens of an OpenAI ``usage`` object (chat/completions/embeddings or Responses)."""
    if not isinstance(usage, dict):
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int) and total >= 0:
        return total
    parts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")]
    return sum(p for p in parts if isinstance(p, int) and p >= 0)


def _usage_of(document: object) -> tuple[object, bool]:
    """(usage, whether the document is a usage-only chat/completions chunk)."""
    if not isinstance(document, dict):
        return None, False
    usage = document.get("usage")
    if usage is not None:
        return usage, document.get("choices") == []
    response = document.get("response")  # Responses API: response.completed carries the usage
    if isinstance(response, dict):
        return response.get("usage"), False
    return None, False


def renamer(served: str, sent: str) -> Callable[[bytes], bytes]:
    """Rewrites ``"model": "<served>"`` to ``"model": "<sent>"`` in JSON text (any nesting: a
    Responses event carries it in ``response``). Content strings cannot match: their quotes are escaped."""
    pattern = re.compile(rb'("model"\s*:\s*)' + re.escape(orjson.dumps(served)))
    replacement = orjson.dumps(sent)
    compact, compact_sent = b'"model":' + orjson.dumps(served), b'"model":' + replacement

    def rename(data: bytes) -> bytes:
        if compact in data:  # the common, compact spelling: a plain replace, cheaper than the regex
            return data.replace(compact, compact_sent)
        if b'"model"' in data:
            return pattern.sub(lambda m: m.group(1) + replacement, data)
        return data

    return rename


def _unchanged(data: bytes) -> bytes:
    return data


def _with_length(headers: Headers, body: bytes) -> Headers:
    out = [h for h in headers if h[0] != b"content-length"]
    out.append((b"content-length", str(len(body)).encode()))
    return out


def _event_data(event: bytes) -> bytes:
    lines = [line for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(line[5:].lstrip(b" ") for line in lines)


class LlmExchange(Exchange):
    def __init__(
        self,
        inner: Exchange,
        body: bytes,
        on_tokens: Callable[[int | None], None],
        *,
        strip_usage_chunk: bool,
        prompt_tokens: int = 0,
        metered: bool = True,
        renamed: Callable[[bytes], bytes] = _unchanged,
    ) -> None:
        self.inner = inner
        self._body = body
        self._on_tokens = on_tokens
        self._strip = strip_usage_chunk
        self._tokens = 0
        self._usage_seen = False
        self._prompt_tokens = prompt_tokens
        self._metered = metered  # count relayed content (a model with a tokenRateLimit)
        self._relayed_tokens = 0
        self._relayed = False
        self._reported = False
        self._close_callback: Callable[[], None] | None = None
        self._rename = renamed
        inner.on_close(self._client_gone)
        self._problem: bytearray | None = None  # a streamed problem+json, converted at its end
        self._problem_status = 0
        self._relayed_headers: Headers = []
        self._events: bytearray | None = None  # SSE bytes of an incomplete event
        self._kept: bytearray | None = None  # a JSON answer's bytes, for its usage
        self._status = 0

    @property
    def request(self) -> HotRequest:  # type: ignore[override]
        return self.inner.request

    async def body(self, limit: int) -> bytes:
        return self._body

    # --- the answer -----------------------------------------------------------------------

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        if _content_type(headers) == b"application/problem+json":
            self._respond_error(status, headers, body)
            return
        self._status = status
        kind = _content_type(headers)
        if kind == b"text/event-stream":  # a whole stream (it ended before the relay began)
            self._events = bytearray()
            out = self._feed_events(body)
            if self._events:
                out += self._last_event()
            body, headers = out, _with_length(headers, out)
        elif kind == b"application/json":
            if status < 400:
                self._count_json(body)
            body = self._rename(body)
            headers = _with_length(headers, body)
        self._relayed = True
        self.inner.respond(status, headers, body)
        self._report()

    def start(self, status: int, headers: Headers) -> None:
        self._status = status
        kind = _content_type(headers)
        if kind == b"application/problem+json":
            self._problem, self._problem_status = bytearray(), status
            self._relayed_headers = headers
            return
        if kind in (b"text/event-stream", b"application/json"):
            # Events may be dropped, ``model`` renamed: the container's length would be wrong.
            headers = [h for h in headers if h[0] != b"content-length"]
        if kind == b"text/event-stream":
            self._events = bytearray()
        elif kind == b"application/json":
            self._kept = bytearray()
        self.inner.start(status, headers)

    def write(self, data: bytes) -> None:
        if self._problem is not None:
            self._problem += data
        elif self._events is not None:
            out = self._feed_events(data)
            if out:
                self.inner.write(out)
        else:
            self._relayed = True
            kept = self._kept
            if kept is None:
                self.inner.write(data)
            elif len(kept) + len(data) > MAX_METERED_BODY:  # too large to hold: relayed as it comes
                self._kept = None
                self.inner.write(bytes(kept) + data)
            else:
                kept += data

    def end(self) -> None:
        if self._problem is not None:
            self._respond_error(self._problem_status, self._relayed_headers, bytes(self._problem))
            return
        if self._events:  # an unterminated last event: relayed as it came
            rest = self._last_event()
            if rest:
                self.inner.write(rest)
        if self._kept is not None:
            body = bytes(self._kept)
            if self._status < 400:
                self._count_json(body)
            self._kept = None
            self.inner.write(self._rename(body))
        self.inner.end()
        self._report()

    def abort(self) -> None:
        self.inner.abort()
        self._report()

    @property
    def started(self) -> bool:
        return self._problem is not None or self.inner.started

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def backlog(self) -> int:
        return self.inner.backlog

    def on_close(self, callback: Callable[[], None] | None) -> None:
        # The inner exchange keeps calling ours: a client gone is charged whoever listens.
        self._close_callback = callback

    def on_writable(self, callback: Callable[[], None]) -> None:
        self.inner.on_writable(callback)

    # --- helpers --------------------------------------------------------------------------

    def _client_gone(self) -> None:
        callback = self._close_callback
        if callback is not None:
            callback()
        self._report()

    def _respond_error(self, status: int, headers: Headers, body: bytes) -> None:
        error = from_problem_json(status, body)
        status, out, payload = error.response()
        out += [h for h in headers if h[0].startswith(b"nvcf-") or h[0] in (b"retry-after", b"www-authenticate")]
        self.inner.respond(status, out, payload)
        self._report()

    def _feed_events(self, data: bytes) -> bytes:
        """Complete events of the stream so far, minus a usage-only chunk the client did not ask for."""
        events = self._events
        assert events is not None
        events += data
        out = bytearray()
        while True:
            cut = min((i + len(sep) for sep in _EVENT_ENDS if (i := events.find(sep)) >= 0), default=-1)
            if cut < 0:
                break
            event = bytes(events[:cut])
            del events[:cut]
            if not self._count_event(event):
                self._count_relayed(event)
                out += self._rename(event)
        return bytes(out)

    def _last_event(self) -> bytes:
        events = self._events
        assert events is not None
        rest = bytes(events)
        events.clear()
        if self._count_event(rest):
            return b""
        self._count_relayed(rest)
        return self._rename(rest)

    def _count_relayed(self, event: bytes) -> None:
        """The completion tokens of a relayed event, for a stream that ends without usage."""
        self._relayed = True
        if not self._metered or self._usage_seen:
            return
        data = _event_data(event)
        if not data or data == b"[DONE]":
            return
        try:
            self._relayed_tokens += chunk_tokens(orjson.loads(data))
        except orjson.JSONDecodeError:
            self._relayed_tokens += 1

    def _count_event(self, event: bytes) -> bool:
        """Count an event's usage; True when it is a usage-only chunk to drop."""
        if b'"usage"' not in event and b'"response.completed"' not in event:
            return False
        data = _event_data(event)
        try:
            document = orjson.loads(data) if data and data != b"[DONE]" else None
        except orjson.JSONDecodeError:
            return False
        usage, usage_only = _usage_of(document)
        if usage is not None:
            self._usage_seen = True
        self._tokens = max(self._tokens, tokens_of(usage))  # some servers repeat a running total
        return usage_only and self._strip

    def _count_json(self, body: bytes) -> None:
        if b'"usage"' not in body:
            return
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        usage = _usage_of(document)[0]
        if usage is not None:
            self._usage_seen = True
            self._tokens = tokens_of(usage)

    def settle(self) -> None:
        """The answer is over, however it ended: charge it (once)."""
        self._report()

    def _report(self) -> None:
        if self._reported:
            return
        self._reported = True
        if self._usage_seen:
            self._on_tokens(self._tokens)
        elif not self._relayed or self._status >= 400:
            self._on_tokens(0)
        elif self._events is not None:  # a stream cut before its usage: what reached the client
            self._on_tokens(self._prompt_tokens + self._relayed_tokens)
        else:
            self._on_tokens(None)
