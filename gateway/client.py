"""A small Python client for cfgate's (and NVCF's) invocation API: ``invoke()`` with 202 polling.

    async with AsyncInvoker("http://127.0.0.1:8080", api_key) as nvcf:
        result = await nvcf.invoke(function_id, {"prompt": "hi"})
        result.json()

    with Invoker("http://127.0.0.1:8080", api_key) as nvcf:
        nvcf.invoke(function_id, {"prompt": "hi"}).json()

The polling loop is NVCF's (reference §6.5): ``POST /v2/nvcf/pexec/functions/{fid}[/versions/{vid}]``;
on 202 repeat ``GET /v2/nvcf/pexec/status/{NVCF-REQID}`` until a reply is not 202. A 302 is a large
result: the client downloads ``Location`` (without the bearer: the URL is signed). Any other 4xx/5xx
raises ``InvocationError`` carrying the problem+json. ``on_progress`` sees each 202 (request id,
``NVCF-PERCENT-COMPLETE`` if the function reports it). Only ``httpx`` is needed, so this module can be
used from any process that has cfgate installed without starting anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

__all__ = ["AsyncInvoker", "InvocationError", "InvocationResult", "Invoker"]

ProgressCallback = Callable[[str, int | None], None]


class InvocationError(Exception):
    """The invocation ended with a non-2xx answer (the problem+json body, when there is one)."""

    def __init__(self, status: int, request_id: str | None, problem: dict[str, Any] | None, text: str) -> None:
        detail = (problem or {}).get("detail") or text[:200]
        super().__init__(f"invocation failed with {status}: {detail}")
        self.status = status
        self.request_id = request_id
        self.problem = problem


@dataclass(frozen=True, slots=True)
class InvocationResult:
    status: int
    request_id: str | None
    headers: dict[str, str]
    content: bytes
    # True when the answer was a large result fetched from the 302's Location (a zip).
    downloaded: bool = False
    polls: int = field(default=0, compare=False)

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.content)


def _pexec_path(function_id: str, version_id: str | None) -> str:
    path = f"/v2/nvcf/pexec/functions/{function_id}"
    return f"{path}/versions/{version_id}" if version_id else path


def _request_headers(api_key: str, host: str | None, poll_seconds: int | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    if host:
        headers["Host"] = host
    if poll_seconds is not None:
        headers["NVCF-POLL-SECONDS"] = str(poll_seconds)
    return headers


def _percent(response: httpx.Response) -> int | None:
    raw = response.headers.get("nvcf-percent-complete")
    return int(raw) if raw and raw.isdigit() else None


def _failure(response: httpx.Response) -> InvocationError:
    problem: dict[str, Any] | None = None
    if response.headers.get("content-type", "").startswith(("application/problem+json", "application/json")):
        try:
            parsed = response.json()
            problem = parsed if isinstance(parsed, dict) else None
        except ValueError:
            problem = None
    return InvocationError(response.status_code, response.headers.get("nvcf-reqid"), problem, response.text)


def _result(response: httpx.Response, polls: int, downloaded: bool = False) -> InvocationResult:
    return InvocationResult(
        response.status_code,
        response.headers.get("nvcf-reqid"),
        dict(response.headers),
        response.content,
        downloaded,
        polls,
    )


class _Options:
    """What both clients share: where to send, how to authenticate, how long to keep polling."""

    def __init__(
        self, base_url: str, api_key: str, host: str | None, poll_seconds: int | None, max_wait_seconds: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # Without DNS the invocation service is chosen by the Host header (README "Hosts").
        self.host = host
        self.poll_seconds = poll_seconds
        self.max_wait_seconds = max_wait_seconds

    def headers(self) -> dict[str, str]:
        return _request_headers(self.api_key, self.host, self.poll_seconds)

    def check_deadline(self, started: float, request_id: str) -> None:
        if time.monotonic() - started > self.max_wait_seconds:
            raise TimeoutError(f"invocation {request_id} still in progress after {self.max_wait_seconds:.0f} s")


@dataclass(frozen=True, slots=True)
class _Call:
    """One HTTP request the polling loop wants sent."""

    method: str
    url: str
    headers: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None


def _download_call(options: _Options, location: str) -> _Call:
    """The Location is on the gateway's public invocation URL (``--public-url``, by default
    ``http://invocation.<domain>:<port>``); when that is the Host override (ports aside: routing
    ignores them) and has no DNS, the download goes to ``base_url`` with that same Host header."""
    url = httpx.URL(location)
    if options.host and url.host.lower() == options.host.lower().rsplit(":", 1)[0]:
        return _Call("GET", options.base_url + url.raw_path.decode("latin-1"), {"Host": options.host})
    return _Call("GET", location)


# The polling loop without I/O: it yields the requests to send and is sent their responses, so the
# async and sync clients drive the same logic. Its return value is the result.
_Steps = Generator[_Call, httpx.Response, InvocationResult]


def _invoke_steps(
    options: _Options,
    function_id: str,
    payload: Any,
    version_id: str | None,
    content: bytes | None,
    headers: dict[str, str] | None,
    on_progress: ProgressCallback | None,
) -> _Steps:
    sent = {**options.headers(), **(headers or {})}
    url = options.base_url + _pexec_path(function_id, version_id)
    response = yield _Call("POST", url, sent, None if content is not None else payload, content)
    started, polls = time.monotonic(), 0
    while response.status_code == 202:
        request_id = response.headers["nvcf-reqid"]
        if on_progress is not None:
            on_progress(request_id, _percent(response))
        options.check_deadline(started, request_id)
        polls += 1
        response = yield _Call("GET", f"{options.base_url}/v2/nvcf/pexec/status/{request_id}", sent)
    if response.status_code == 302:
        # The Location is signed: it is fetched without the bearer.
        download = yield _download_call(options, response.headers["location"])
        if download.status_code != 200:
            raise _failure(download)
        return _result(download, polls, downloaded=True)
    if response.status_code >= 300:
        raise _failure(response)
    return _result(response, polls)


class AsyncInvoker:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        host: str | None = "invocation.localhost",
        poll_seconds: int | None = None,
        max_wait_seconds: float = 3600.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._options = _Options(base_url, api_key, host, poll_seconds, max_wait_seconds)
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        self._owns_client = client is None

    async def invoke(
        self,
        function_id: str,
        payload: Any = None,
        *,
        version_id: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> InvocationResult:
        steps = _invoke_steps(self._options, function_id, payload, version_id, content, headers, on_progress)
        try:
            call = next(steps)
            while True:
                response = await self._client.request(
                    call.method, call.url, headers=call.headers, json=call.json, content=call.content
                )
                call = steps.send(response)
        except StopIteration as done:
            result: InvocationResult = done.value
            return result

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncInvoker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Invoker:
    """The synchronous twin of ``AsyncInvoker`` (same arguments, same polling)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        host: str | None = "invocation.localhost",
        poll_seconds: int | None = None,
        max_wait_seconds: float = 3600.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._options = _Options(base_url, api_key, host, poll_seconds, max_wait_seconds)
        self._client = client or httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        self._owns_client = client is None

    def invoke(
        self,
        function_id: str,
        payload: Any = None,
        *,
        version_id: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> InvocationResult:
        steps = _invoke_steps(self._options, function_id, payload, version_id, content, headers, on_progress)
        try:
            call = next(steps)
            while True:
                response = self._client.request(
                    call.method, call.url, headers=call.headers, json=call.json, content=call.content
                )
                call = steps.send(response)
        except StopIteration as done:
            result: InvocationResult = done.value
            return result

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Invoker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
