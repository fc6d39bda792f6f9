"""Serving invocations: one task per invocation, from the container call to the ResponseEnd.

Per invocation: create ``<work>/response/<reqId>`` (not with ``--no-large-outputs``) and
``<work>/inputAssets/<reqId>`` when there are assets (downloaded first), call the container, relay
its answer to the outbox, and end with one ``ResponseEnd`` that returns the invocation's credit
(unless the worker is draining). Both directories are removed afterwards. The deadline is a loop
timer that cancels the invocation's task (``deadline exceeded``).

How an answer goes back:

- Not compat, or the container answers ``text/event-stream``: straight through — ResponseStart with
  the container's status and headers (Content-Length kept: the body is relayed unchanged), then a
  ResponseChunk for whatever arrived each time data arrives, then ResponseEnd.
- Compat (pexec polling mode), status >= 400: a problem+json
  ``urn:inference-service:problem-details:<reason>`` with the container's status and, as detail,
  its ``{"error": "..."}`` message (``Inference error`` otherwise).
- Compat, body up to ``max_direct_response_bytes`` and no file other than ``progress`` in the
  large-output directory: the body (buffered up to that limit to decide) with its exact
  Content-Length.
- Compat otherwise: ``kind: LARGE_RESULT`` — the zip (see ``large_output.py``) as chunks, with
  ``Content-Type: application/zip`` and its Content-Length; the status is the container's.
- In compat mode the progress file is watched while the container works; each newer write is a
  ``Progress`` message (always before the ResponseStart of that request).

Failures: the container cannot be reached, or closes or garbles the answer before its headers
(or, in compat mode, before its body is complete) → 502
``urn:inference-connection:problem-details:bad-gateway``; an asset download fails → 500
``urn:nvcf-worker-service:problem-details:internal-server-error``; the stream breaks after the
ResponseStart → ResponseEnd with an error. ``Cancel`` → the container connection is closed and the
ResponseEnd says ``cancelled``; the deadline passes → the same with ``deadline exceeded``. When a
session breaks its invocations are abandoned: connections closed, nothing more sent (the gateway
redelivers them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from invoker import tracing
from invoker.worker.assets import AssetError, AssetFetcher, safe_name
from invoker.worker.container import (
    SOURCE_CONNECTION,
    SOURCE_INFERENCE,
    SOURCE_WORKER,
    container_headers,
    error_detail,
    problem,
    relay_headers,
)
from invoker.worker.grpc_container import GrpcContainer
from invoker.worker.http_client import HttpClient, HttpClientError, Response
from invoker.worker.large_output import build_large_result, scan_artifacts
from invoker.worker.metrics import WorkerMetrics
from invoker.worker.outbox import MAX_CHUNK, Outbox
from invoker.worker.progress import ProgressCallback, ProgressWatcher
from invoker.worker.tracing import ContainerCallSpan
from invoker.worker.workdirs import WorkDirs, is_empty, remove_tree
from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = ["Flight", "InvocationRunner", "SessionInfo"]

log = logging.getLogger("invoker.worker.invocation")

_ERROR_BODY_LIMIT = 1 << 20
_CONNECTION_DETAIL = "Inference connection error while making inference request"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a registered session fixes for all of its invocations."""

    session_id: str
    nca_id: str
    default_path: str
    max_direct_bytes: int
    heartbeat_interval: float
    static_headers: list[tuple[str, str]]
    # Base for relative input-asset URLs (RegisterResponse.metadata["gatewayUrl"]) and the Host
    # sent with them (metadata["gatewayHost"]; "" from older gateways: the URL's own host).
    gateway_url: str = ""
    gateway_host: str = ""


@dataclass(slots=True)
class _Output:
    """An invocation's large-output directory ("" when the worker offers none)."""

    path: str
    # Whether it was empty when last listed, with nothing awaited since (None: not known).
    empty: bool | None = None

    def has_artifacts(self) -> bool:
        """Whether the container left files that make the answer a large result (lists it once)."""
        if not self.path:
            return False
        self.empty = is_empty(self.path)
        return not self.empty and bool(scan_artifacts(self.path))


@dataclass(slots=True, eq=False)
class Flight:
    request_id: str
    task: asyncio.Task[None] | None = None
    # Set before the task is cancelled on purpose ("cancelled", "deadline exceeded"); None means abandoned.
    abort_reason: str | None = None
    # The deadline as a loop timer that cancels the task (an ``asyncio.timeout`` block per
    # invocation cost ~2 µs more: a Timeout object, its reschedule, current_task lookups).
    deadline: asyncio.TimerHandle | None = None
    # With tracing on: the invocation's ``container call`` span.
    span: ContainerCallSpan | None = None


def _is_event_stream(response: Response) -> bool:
    content_type = response.header(b"content-type")
    return content_type is not None and content_type.split(b";", 1)[0].strip().lower() == b"text/event-stream"


class InvocationRunner:
    """The invocations in flight on one session."""

    def __init__(
        self,
        *,
        client: HttpClient,
        session: SessionInfo,
        outbox: Outbox,
        dirs: WorkDirs,
        progress: ProgressWatcher,
        assets: AssetFetcher,
        host_header: str,
        large_outputs: bool = True,
        grpc: GrpcContainer | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.client = client
        # The container's own gRPC server, for gRPC invocations (same host and inference port).
        self.grpc = grpc
        self.metrics = metrics
        self.session = session
        self.outbox = outbox
        self.progress = progress
        self.assets = assets
        self.host_header = host_header
        self.dirs = dirs
        # False: the container writes no large outputs or progress files (no per-invocation directory).
        self.large_outputs = large_outputs
        self.flights: dict[str, Flight] = {}
        # Log lines about an invocation name its function and version (the session's).
        headers = {name.lower(): value for name, value in session.static_headers}
        self._function_id = headers.get("nvcf-function-id", "")
        self._version_id = headers.get("nvcf-function-version-id", "")
        self.tracer: Any = tracing.process_tracer("cfgate-worker")
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    # -- control, from the session's reader ------------------------------------------------------

    def start(self, invocation: pb.Invocation) -> None:
        request_id = invocation.request_id
        if request_id in self.flights:
            # A redelivery of what is already running here: keep the running one, give the credit back.
            log.warning(
                "invocation %s is already in flight; duplicate ignored", request_id, extra=self._about(invocation)
            )
            if not self.draining:
                self.outbox.grant(1)
            return
        flight = Flight(request_id)
        self.flights[request_id] = flight
        self._idle.clear()
        loop = asyncio.get_running_loop()
        flight.task = loop.create_task(self._run(invocation, flight))
        if invocation.deadline_ms:
            remaining = invocation.deadline_ms / 1000 - time.time()
            flight.deadline = loop.call_at(loop.time() + remaining, self._deadline_passed, flight)

    def cancel(self, request_id: str, reason: str = "cancelled") -> bool:
        flight = self.flights.get(request_id)
        if flight is None or flight.task is None or flight.abort_reason is not None:
            return False
        flight.abort_reason = reason
        flight.task.cancel()
        return True

    def grpc_requests(self, frames: pb.GrpcRequestFrames) -> None:
        if frames.request_id in self.flights and self.grpc is not None:
            self.grpc.more_requests(frames)

    def _deadline_passed(self, flight: Flight) -> None:
        flight.deadline = None
        if self.flights.get(flight.request_id) is flight:
            self.cancel(flight.request_id, "deadline exceeded")

    async def abandon(self) -> None:
        """Stop everything in flight without answering (the gateway redelivers it)."""
        tasks = [flight.task for flight in self.flights.values() if flight.task is not None]
        for flight in self.flights.values():
            if flight.deadline is not None:
                flight.deadline.cancel()
                flight.deadline = None
            flight.abort_reason = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # -- one invocation --------------------------------------------------------------------------

    def _about(self, invocation: pb.Invocation) -> dict[str, str]:
        return self._fields(invocation.request_id, invocation.nca_id)

    def _fields(self, request_id: str, nca_id: str = "") -> dict[str, str]:
        """The ``extra=`` of a log line about an invocation."""
        return {
            "request_id": request_id,
            "function_id": self._function_id,
            "version_id": self._version_id,
            "account": nca_id or self.session.nca_id,
        }

    async def _run(self, invocation: pb.Invocation, flight: Flight) -> None:
        request_id = invocation.request_id
        if self.tracer is not None:
            flight.span = ContainerCallSpan(self.tracer, invocation, self._about(invocation))
        error = "abandoned"
        try:
            error = await self._outcome(invocation, flight)
            if self.metrics is not None:
                self.metrics.ended(error)
            self.outbox.end(request_id, error, credit=not self.draining)
        finally:
            if flight.span is not None:
                flight.span.end(error)
            if flight.deadline is not None:
                flight.deadline.cancel()
                flight.deadline = None
            if self.flights.get(request_id) is flight:
                del self.flights[request_id]
                if not self.flights:
                    self._idle.set()

    async def _outcome(self, invocation: pb.Invocation, flight: Flight) -> str:
        """Serve the invocation; the error its end reports ("" for none). Abandoned: re-raised."""
        try:
            return await self._serve(invocation)
        except asyncio.CancelledError:
            if flight.abort_reason is None:
                if self.metrics is not None:
                    self.metrics.outcomes["abandoned"] += 1
                raise  # abandoned: no answer
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return flight.abort_reason
        except TimeoutError:
            return "deadline exceeded"
        except Exception:
            log.exception("invocation %s failed in the worker", invocation.request_id, extra=self._about(invocation))
            if self.metrics is not None:
                self.metrics.errors["worker"] += 1
            return "worker error"

    async def _serve(self, invocation: pb.Invocation) -> str:
        request_id = invocation.request_id
        if not safe_name(request_id):
            self._problem(request_id, SOURCE_WORKER, 500, "Internal error while preparing for inference")
            return ""
        if invocation.HasField("grpc"):
            return await self._grpc(invocation)
        output = _Output(self.dirs.output_dir(request_id) if self.large_outputs else "")
        asset_dir = self.dirs.asset_dir(request_id)
        has_assets = bool(invocation.assets)
        watching = invocation.compat and self.large_outputs
        try:
            if has_assets and not await self._fetch_assets(invocation, asset_dir):
                return ""
            if watching:
                self.progress.watch(request_id, output.path, self._progress_callback(request_id))
            began = time.monotonic()
            response = await self._call(invocation, asset_dir, output.path)
            if response is None:
                return ""
            async with response:
                if invocation.compat and not _is_event_stream(response):
                    error = await self._compat(invocation, response, output)
                else:
                    if watching:
                        self.progress.unwatch(request_id)
                    error = await self._relay(request_id, response)
            if self.metrics is not None:
                self.metrics.answered(response.status, time.monotonic() - began)
            return error
        finally:
            if watching:
                self.progress.unwatch(request_id)
            if output.path:
                self.dirs.release_output_dir(output.path, empty=output.empty)
            if has_assets:
                remove_tree(asset_dir)

    async def _fetch_assets(self, invocation: pb.Invocation, asset_dir: str) -> bool:
        """Download the input assets; on failure answer the invocation with a 500 problem."""
        request_id = invocation.request_id
        try:
            self.dirs.make_asset_dir(request_id)
            await self.assets.fetch_all(
                list(invocation.assets), asset_dir, self.session.gateway_url, self.session.gateway_host
            )
        except AssetError as exc:
            log.error("invocation %s: %s", request_id, exc, extra=self._about(invocation))
            if self.metrics is not None:
                self.metrics.errors["asset_download"] += 1
            self._problem(request_id, SOURCE_WORKER, 500, "Internal error while downloading assets")
            return False
        return True

    async def _grpc(self, invocation: pb.Invocation) -> str:
        if self.grpc is None:
            return "this worker serves no gRPC invocations"
        metadata = [(h.key, h.value) for h in invocation.headers]
        metadata += [(k.lower(), v) for k, v in self.session.static_headers]
        metadata += [("nvcf-ncaid", self.session.nca_id), ("nvcf-sub", invocation.subject)]
        return await self.grpc.call(invocation, metadata, self.outbox)

    async def _call(self, invocation: pb.Invocation, asset_dir: str, output_dir: str) -> Response | None:
        request_id = invocation.request_id
        body = invocation.body  # upb copies the bytes out on every read of the field: once
        headers = container_headers(
            invocation,
            host=self.host_header,
            static=self.session.static_headers,
            nca_id=self.session.nca_id,
            asset_dir=asset_dir,
            output_dir=output_dir,
            body=body,
        )
        flight = self.flights.get(request_id) if self.tracer is not None else None
        if flight is not None and flight.span is not None:
            flight.span.replace_in(headers)
        try:
            response = await self.client.request(
                invocation.method or "POST", invocation.path or self.session.default_path, headers, body
            )
            if flight is not None and flight.span is not None:
                flight.span.answered(response.status)
            return response
        except ValueError as exc:
            log.error(
                "invocation %s: cannot build the container request: %s", request_id, exc, extra=self._about(invocation)
            )
            self._problem(request_id, SOURCE_WORKER, 500, "Internal error while making inference request")
        except (HttpClientError, OSError) as exc:
            log.warning("invocation %s: container call failed: %s", request_id, exc, extra=self._about(invocation))
            if self.metrics is not None:
                self.metrics.errors["container_unreachable"] += 1
            self._problem(request_id, SOURCE_CONNECTION, 502, _CONNECTION_DETAIL)
        return None

    async def _relay(self, request_id: str, response: Response) -> str:
        outbox = self.outbox
        outbox.start(request_id, response.status, relay_headers(response.headers, keep_length=True))
        try:
            async for data in response:
                outbox.chunk(request_id, data)
                if outbox.congested:
                    await outbox.wait_space()
        except HttpClientError as exc:
            log.warning(
                "invocation %s: the container broke its answer: %s", request_id, exc, extra=self._fields(request_id)
            )
            if self.metrics is not None:
                self.metrics.errors["container_broke_answer"] += 1
            return f"the inference container broke the response: {exc}"
        return ""

    async def _compat(self, invocation: pb.Invocation, response: Response, output: _Output) -> str:
        request_id = invocation.request_id
        status = response.status
        if status >= 400:
            try:
                body = await response.read(limit=_ERROR_BODY_LIMIT)
            except HttpClientError:
                body = b""
            self.progress.unwatch(request_id)
            self._problem(request_id, SOURCE_INFERENCE, status, error_detail(body))
            return ""
        limit = self.session.max_direct_bytes
        head: list[bytes] = []
        total = 0
        try:
            async for data in response:
                head.append(data)
                total += len(data)
                if total > limit:
                    break
            over = total > limit
            if not over and not output.has_artifacts():
                self.progress.unwatch(request_id)
                self._direct(request_id, invocation, response, head, total)
                return ""
            self.progress.unwatch(request_id)
            rest = response if over else None
            result = await build_large_result(request_id, head, rest, output.path, self.dirs.root)
            output.empty = None  # listed before the awaits above: look again when releasing
        except HttpClientError as exc:
            fields = self._fields(request_id, invocation.nca_id)
            log.warning("invocation %s: the container broke its answer: %s", request_id, exc, extra=fields)
            if self.metrics is not None:
                self.metrics.errors["container_broke_answer"] += 1
            self._problem(request_id, SOURCE_CONNECTION, 502, _CONNECTION_DETAIL)
            return ""
        try:
            headers = [("Content-Type", "application/zip"), ("Content-Length", str(result.size))]
            self.outbox.start(request_id, status, headers, pb.ResultKind.LARGE_RESULT)
            while data := result.file.read(MAX_CHUNK):
                self.outbox.chunk(request_id, data)
                if self.outbox.congested:
                    await self.outbox.wait_space()
        finally:
            result.close()
        return ""

    def _direct(
        self, request_id: str, invocation: pb.Invocation, response: Response, body: list[bytes], total: int
    ) -> None:
        if invocation.method == "HEAD":
            headers = relay_headers(response.headers, keep_length=True)
        else:
            headers = relay_headers(response.headers, keep_length=False)
            headers.append(("Content-Length", str(total)))
        self.outbox.start(request_id, response.status, headers)
        for data in body:
            self.outbox.chunk(request_id, data)

    def _problem(self, request_id: str, source: str, status: int, detail: str) -> None:
        body = problem(source, status, detail)
        headers = [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))]
        self.outbox.start(request_id, status, headers)
        self.outbox.chunk(request_id, body)

    def _progress_callback(self, request_id: str) -> ProgressCallback:
        outbox = self.outbox

        def report(percent: int, partial: bytes) -> None:
            outbox.progress(request_id, percent, partial)

        return report
