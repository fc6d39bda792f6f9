"""A small Python client for cfgate's (and NVCF's) API: ``invoke()`` with 202 polling, and
``ControlPlane`` for admin tokens, API keys, functions, deployments, queues, tasks and clusters.

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

Every failure is a ``ClientError``: ``ApiError`` for an error answer (``InvocationError`` on the
invocation path), ``GatewayUnreachable`` when no answer came at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "ApiError",
    "AsyncInvoker",
    "ClientError",
    "ControlPlane",
    "GatewayUnreachable",
    "InvocationError",
    "InvocationResult",
    "Invoker",
]

ProgressCallback = Callable[[str, int | None], None]


class ClientError(Exception):
    """The root of everything this client raises."""


class GatewayUnreachable(ClientError):
    """No answer at all: connection refused, DNS, TLS or a read timeout."""


class ApiError(ClientError):
    """An error answer; ``problem`` is its problem+json body when it has one."""

    def __init__(self, status: int, problem: dict[str, Any] | None, text: str, what: str = "request") -> None:
        self.status = status
        self.problem = problem
        self.detail = str((problem or {}).get("detail") or (problem or {}).get("error") or text[:200]).strip()
        self.title = str((problem or {}).get("title") or "")
        super().__init__(
            f"{what} failed with {status}: {self.detail}" if self.detail else f"{what} failed with {status}"
        )

    @property
    def kind(self) -> str:
        """The problem type's last part (``not-found``, ``forbidden`` …), or ``http-<status>``."""
        problem_type = str((self.problem or {}).get("type") or "")
        return problem_type.rsplit(":", 1)[-1] if ":" in problem_type else f"http-{self.status}"


class InvocationError(ApiError):
    """The invocation ended with a non-2xx answer (the problem+json body, when there is one)."""

    def __init__(self, status: int, request_id: str | None, problem: dict[str, Any] | None, text: str) -> None:
        super().__init__(status, problem, text, "invocation")
        self.request_id = request_id


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


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    if not response.headers.get("content-type", "").startswith(("application/problem+json", "application/json")):
        return None
    try:
        parsed = response.json()
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _failure(response: httpx.Response) -> InvocationError:
    return InvocationError(response.status_code, response.headers.get("nvcf-reqid"), _problem(response), response.text)


def _result(
    response: httpx.Response, polls: int, downloaded: bool = False, request_id: str | None = None
) -> InvocationResult:
    return InvocationResult(
        response.status_code,
        request_id or response.headers.get("nvcf-reqid"),
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
        # The download (a storage URL) has no NVCF-REQID of its own: keep the 302's.
        return _result(download, polls, downloaded=True, request_id=response.headers.get("nvcf-reqid"))
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
                try:
                    response = await self._client.request(
                        call.method, call.url, headers=call.headers, json=call.json, content=call.content
                    )
                except httpx.TransportError as exc:
                    raise GatewayUnreachable(f"{call.url}: {exc or type(exc).__name__}") from exc
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
                try:
                    response = self._client.request(
                        call.method, call.url, headers=call.headers, json=call.json, content=call.content
                    )
                except httpx.TransportError as exc:
                    raise GatewayUnreachable(f"{call.url}: {exc or type(exc).__name__}") from exc
                call = steps.send(response)
        except StopIteration as done:
            result: InvocationResult = done.value
            return result

    def stream(
        self,
        function_id: str,
        payload: Any = None,
        *,
        version_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[bytes]:
        """Invoke with ``Accept: text/event-stream`` and yield the answer's bytes as they arrive."""
        options = self._options
        sent = {**options.headers(), "Accept": "text/event-stream", **(headers or {})}
        url = options.base_url + _pexec_path(function_id, version_id)
        try:
            with self._client.stream("POST", url, headers=sent, json=payload) as response:
                if response.status_code >= 300:
                    response.read()
                    raise _failure(response)
                yield from response.iter_raw()
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"{url}: {exc or type(exc).__name__}") from exc

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Invoker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# The issuer services of self-hosted NVCF's API Keys service (reference §3.4).
FUNCTIONS_KEY_ISSUER = "nvidia-cloud-functions-ncp-service-id-aketm"
TASKS_KEY_ISSUER = "nvidia-cloud-tasks-ncp-service-id-nvcttasks"
DEFAULT_KEY_OWNER = "svc@nvcf-api.local"


class ControlPlane:
    """The control-plane services behind one gateway address, chosen by Host (``<service>.<domain>``).

    ``token`` is the bearer: the admin JWT for functions, deployments, keys and clusters, a task key
    for tasks. Answers are the decoded JSON (``None`` for an empty body); error answers raise ``ApiError``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        domain: str = "localhost",
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.domain = domain
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Any:
        sent = {"Host": f"{service}.{self.domain}", **(headers or {})}
        bearer = token or self.token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        url = self.base_url + path
        try:
            response = self._client.request(method, url, json=json, params=params, headers=sent)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"{self.base_url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise ApiError(response.status_code, _problem(response), response.text, f"{method} {path}")
        return response.json() if response.content else None

    # Admin tokens and API keys (api-keys.<domain>)

    def mint_admin_token(self, bootstrap_secret: str | None = None) -> dict[str, Any]:
        """A fresh admin JWT as a KeyDto (``value``, ``expires_at``) from the bootstrap door."""
        headers = {"Cfgate-Bootstrap-Secret": bootstrap_secret} if bootstrap_secret else None
        answer: dict[str, Any] = self.request("api-keys", "POST", "/v1/admin/keys", json={}, headers=headers)
        return answer

    @staticmethod
    def _key_headers(issuer: str, owner: str) -> dict[str, str]:
        return {"Key-Issuer-Id": issuer, "Key-Owner-Id": owner}

    def create_key(
        self, issuer: str, owner: str, description: str, expires_at: str, policies: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"description": description, "expires_at": expires_at, "authorizations": {"policies": policies}}
        answer: dict[str, Any] = self.request(
            "api-keys", "POST", "/v1/keys", json=body, headers=self._key_headers(issuer, owner)
        )
        return answer

    def list_keys(self, issuer: str, owner: str) -> list[dict[str, Any]]:
        answer = self.request("api-keys", "GET", "/v1/keys", headers=self._key_headers(issuer, owner))
        return list(answer.get("keys", []) if isinstance(answer, dict) else answer)

    def delete_key(self, key_id: str) -> None:
        self.request("api-keys", "DELETE", f"/v1/keys/{key_id}")

    # Functions (api.<domain>)

    def create_function(self, body: dict[str, Any], function_id: str | None = None) -> dict[str, Any]:
        """A new function, or with ``function_id`` a new version of it."""
        path = "/v2/nvcf/functions" + (f"/{function_id}/versions" if function_id else "")
        return dict(self.request("api", "POST", path, json=body)["function"])

    def list_functions(self, visibility: str | None = None) -> list[dict[str, Any]]:
        params = {"visibility": visibility} if visibility else None
        return list(self.request("api", "GET", "/v2/nvcf/functions", params=params)["functions"])

    def function_versions(self, function_id: str) -> list[dict[str, Any]]:
        return list(self.request("api", "GET", f"/v2/nvcf/functions/{function_id}/versions")["functions"])

    def get_function(self, function_id: str, version_id: str) -> dict[str, Any]:
        path = f"/v2/nvcf/functions/{function_id}/versions/{version_id}"
        return dict(self.request("api", "GET", path)["function"])

    def update_function(self, function_id: str, version_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/v2/nvcf/functions/{function_id}/versions/{version_id}"
        return dict(self.request("api", "PUT", path, json=body)["function"])

    def delete_function(self, function_id: str, version_id: str) -> None:
        self.request("api", "DELETE", f"/v2/nvcf/functions/{function_id}/versions/{version_id}")

    # Deployments

    @staticmethod
    def _deployment_path(function_id: str, version_id: str) -> str:
        return f"/v2/nvcf/deployments/functions/{function_id}/versions/{version_id}"

    def deploy(self, function_id: str, version_id: str, specifications: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"deploymentSpecifications": specifications}
        path = self._deployment_path(function_id, version_id)
        return dict(self.request("api", "POST", path, json=body)["deployment"])

    def update_deployment(
        self, function_id: str, version_id: str, specifications: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"deploymentSpecifications": specifications}
        path = self._deployment_path(function_id, version_id)
        return dict(self.request("api", "PUT", path, json=body)["deployment"])

    def get_deployment(self, function_id: str, version_id: str) -> dict[str, Any]:
        return dict(self.request("api", "GET", self._deployment_path(function_id, version_id))["deployment"])

    def remove_deployment(self, function_id: str, version_id: str, graceful: bool = False) -> dict[str, Any]:
        params = {"graceful": "true" if graceful else "false"}
        path = self._deployment_path(function_id, version_id)
        return dict(self.request("api", "DELETE", path, params=params)["function"])

    # Queues

    def queue_status(self, function_id: str, version_id: str | None = None) -> dict[str, Any]:
        path = f"/v2/nvcf/queues/functions/{function_id}" + (f"/versions/{version_id}" if version_id else "")
        return dict(self.request("api", "GET", path))

    def queue_position(self, request_id: str) -> dict[str, Any]:
        return dict(self.request("api", "GET", f"/v2/nvcf/queues/{request_id}/position"))

    # NVCT tasks (tasks.<domain>)

    def create_task(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("tasks", "POST", "/v1/nvct/tasks", json=body)["task"])

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("status", status), ("limit", limit)) if v is not None}
        return list(self.request("tasks", "GET", "/v1/nvct/tasks", params=params or None)["tasks"])

    def get_task(self, task_id: str) -> dict[str, Any]:
        return dict(self.request("tasks", "GET", f"/v1/nvct/tasks/{task_id}")["task"])

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        return dict(self.request("tasks", "POST", f"/v1/nvct/tasks/{task_id}/cancel")["task"])

    def delete_task(self, task_id: str) -> None:
        self.request("tasks", "DELETE", f"/v1/nvct/tasks/{task_id}")

    def task_events(self, task_id: str) -> list[dict[str, Any]]:
        return list(self.request("tasks", "GET", f"/v1/nvct/tasks/{task_id}/events")["events"])

    def task_results(self, task_id: str) -> list[dict[str, Any]]:
        return list(self.request("tasks", "GET", f"/v1/nvct/tasks/{task_id}/results")["results"])

    # SIS clusters (sis.<domain>)

    def register_cluster(self, nca_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("sis", "POST", f"/v1/accounts/{nca_id}/clusters", json=body))

    def list_clusters(self, nca_id: str) -> list[dict[str, Any]]:
        return list(self.request("sis", "GET", f"/v1/accounts/{nca_id}/clusters"))

    def get_cluster(self, nca_id: str, cluster_id: str) -> dict[str, Any]:
        return dict(self.request("sis", "GET", f"/v1/accounts/{nca_id}/clusters/{cluster_id}"))

    def delete_cluster(self, nca_id: str, cluster_id: str) -> None:
        self.request("sis", "DELETE", f"/v1/accounts/{nca_id}/clusters/{cluster_id}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
