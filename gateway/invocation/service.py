"""pexec, status and direct invocation: resolve the function, check access, queue, answer.

Decisions where hosted and self-hosted NVCF differ (DESIGN §5): when the poll window passes
without a final answer, pexec answers 202 + NVCF-REQID whether the request is still queued or
running, and it keeps its place; direct (TLB) invocation never answers 202: it streams or ends
with 504. A DEGRADED version (fewer live workers than minInstances) still takes invocations:
they wait in its queue for a worker.

With Redis, an invocation that answered 202 is *published* (``invoker.results``): its result is
kept in Redis, so a status poll reaching any gateway process is answered, exactly once. Polls of
an id this process does not hold read the stored record (checked every 50–500 ms within the
poll window). While Redis is unreachable, pexec and such polls answer 503.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cext.hotpath import KIND_JWT, Principal
from gateway.assets.service import AssetNotFound, AssetService
from gateway.assets.signing import UrlSigner, parse_expiry
from gateway.auth.authority import principal_may_use_function
from gateway.edge.budget import RETRY_AFTER_SECONDS, ByteBudget
from gateway.edge.exchange import Exchange
from gateway.invocation.answer import (
    STREAM_BACKLOG_BYTES,
    Answering,
    Outcome,
    answer,
    send_accepted,
    send_problem,
)
from gateway.invocation.envelope import EnvelopeExchange, inner_request, parse_envelope
from gateway.invocation.headers import DEFAULT_POLL_SECONDS, DEFAULT_SSE_POLL_SECONDS, forwarded_headers, poll_seconds
from gateway.invocation.rate_policy import RatePolicy
from gateway.invocation.ratelimit import LocalRateLimit, RateLimit
from gateway.objectstore.errors import ObjectStoreError
from gateway.objectstore.problems import object_store_problem
from gateway.objectstore.results import LocalResultFiles, ResultFiles
from gateway.problems import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)
from gateway.services.functions.routing import FunctionRoute, RoutingCache, VersionRoute
from invoker.dispatch import Dispatcher
from invoker.errors import BackendUnavailable, QueueFull
from invoker.invocations import Invocation, InvocationRequest, InvocationTable, ResultKind
from invoker.limits import WORKER_MESSAGE_BYTES, invocation_message_bytes
from invoker.logs import invocation_fields
from invoker.results import ResultStore

RESULTS_PREFIX = "/v2/nvcf/pexec/results/"

log = logging.getLogger("gateway.invocation")


class InvocationService:
    def __init__(
        self,
        routes: RoutingCache,
        dispatcher: Dispatcher,
        table: InvocationTable,
        *,
        max_body_bytes: int,
        queue_lifetime: float,
        results_dir: Path,
        result_ttl: float,
        signer: UrlSigner,
        assets: AssetService | None = None,
        region: str = "local",
        results: ResultStore | None = None,
        rate: RateLimit | None = None,
        public_url: str = "http://invocation.localhost",
        budget: ByteBudget | None = None,
        stream_backlog: int = STREAM_BACKLOG_BYTES,
        result_files: ResultFiles | None = None,
        trace: Callable[[Invocation], None] | None = None,
        annotate: Callable[[Exchange, InvocationRequest], None] | None = None,
    ) -> None:
        self.routes = routes
        self.dispatcher = dispatcher
        self.table = table
        self.max_body_bytes = max_body_bytes
        self.queue_lifetime = queue_lifetime
        self.results_dir = results_dir
        # Large results: this host's directory, or the object store every host shares.
        self.result_files: ResultFiles = result_files or LocalResultFiles(results_dir)
        self.result_ttl = result_ttl
        self.signer = signer
        # Base of the large-result download URLs (302 Location): configured, never the Host sent.
        self.public_url = public_url
        self.assets = assets
        self.region = region
        # Shared through Redis when there are many processes (per process while Redis is away).
        self.rate: RateLimit = rate or LocalRateLimit()
        self.results = results
        # Bytes of request bodies held by queued and running invocations (past it: 429).
        self.budget = budget or ByteBudget(0)
        self.stream_backlog = stream_backlog
        # With tracing on (gateway.invocation.tracing): sees each invocation before it is queued.
        self.trace = trace
        # With the access log on (gateway.access_log): the request's line learns the invocation's ids.
        self.annotate = annotate
        # Invocations refused with 429, for the metrics (the byte budget counts its own).
        self.rate_limited = 0
        self.queue_full = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._store = partial(self._store_result, self.public_url)

    # --- entry points -----------------------------------------------------------------------

    async def pexec(self, principal: Principal, function_id: str, version_id: str | None, exchange: Exchange) -> None:
        request = exchange.request
        sse = b"text/event-stream" in (request.header(b"accept") or b"")
        window = poll_seconds(
            request.header(b"nvcf-poll-seconds"), DEFAULT_SSE_POLL_SECONDS if sse else DEFAULT_POLL_SECONDS
        )
        route, version = self._target(principal, function_id, version_id)
        assets = await self._input_assets(principal, request.header(b"nvcf-input-asset-references"))
        invocation = await self._submit(
            principal, route, version, exchange, version.inference_url, compat=not sse, window=window, assets=assets
        )
        self._serve(invocation, exchange, window, polling=not sse)

    async def direct(self, principal: Principal, function_id: str, version_id: str | None, exchange: Exchange) -> None:
        request = exchange.request
        window = poll_seconds(request.header(b"nvcf-poll-seconds"), DEFAULT_POLL_SECONDS)
        route, version = self._target(principal, function_id, version_id)
        target = request.raw_path.decode("latin-1")
        if request.query:
            target += "?" + request.query.decode("latin-1")
        invocation = await self._submit(principal, route, version, exchange, target, compat=False, window=window)
        self._serve(invocation, exchange, window, polling=False)

    async def invoke_direct(
        self,
        principal: Principal,
        route: FunctionRoute,
        version: VersionRoute,
        exchange: Exchange,
        path: str,
        window: int,
    ) -> None:
        """Queue a direct invocation of ``path`` on a resolved target (the LLM gateway's); stream its answer."""
        invocation = await self._submit(principal, route, version, exchange, path, compat=False, window=window)
        self._serve(invocation, exchange, window, polling=False)

    async def exec(self, principal: Principal, function_id: str, version_id: str | None, exchange: Exchange) -> None:
        """The envelope form of pexec (``gateway.invocation.envelope``)."""
        body, headers = parse_envelope(await exchange.body(self.max_body_bytes))
        wrapped = EnvelopeExchange(exchange, inner_request(exchange.request, headers), body)
        await self.pexec(principal, function_id, version_id, wrapped)

    async def exec_status(self, principal: Principal, request_id: str, exchange: Exchange) -> None:
        poll = exchange.request.header(b"nvcf-poll-seconds")
        headers = [(b"nvcf-poll-seconds", poll)] if poll is not None else []
        await self.status(principal, request_id, EnvelopeExchange(exchange, inner_request(exchange.request, headers)))

    async def status(self, principal: Principal, request_id: str, exchange: Exchange) -> None:
        request = exchange.request
        window = poll_seconds(request.header(b"nvcf-poll-seconds"), DEFAULT_POLL_SECONDS)
        invocation = self.table.get(request_id)
        if invocation is None and self.results is not None:
            await self._status_stored(principal, request_id, exchange, window)
            return
        if invocation is None or invocation.delivered or invocation.request.nca_id != principal.nca_id:
            raise NotFound(f"Request '{request_id}' not found")
        if not self._may_poll(principal, invocation.request.function_id, invocation.request.version_id):
            raise NotFound(f"Request '{request_id}' not found")
        if invocation.published:
            await self._status_published(invocation, exchange, window)
            return

        def done(outcome: str) -> None:
            if outcome == Outcome.ACCEPTED:
                invocation.reported_seq = invocation.progress_seq
            if outcome == Outcome.REJECTED:
                self._spawn(self.dispatcher.cancel(invocation, "malformed answer from the worker"))
            self._forget_if_done(invocation)

        Answering(
            invocation,
            exchange,
            request.path,
            window,
            polling=True,
            store_result=partial(self._store_result, self.public_url),
            done=done,
            seen_progress=invocation.reported_seq,
        ).begin()

    def _may_poll(self, principal: Principal, function_id: str, version_id: str) -> bool:
        """A request id is the creating account's (checked first) and, for an API key, only a key
        allowed on its function may read it (``gateway.auth.authority``)."""
        if principal.kind == KIND_JWT:
            return True
        return principal_may_use_function(principal, self.routes.get(function_id), function_id, version_id)

    def _forget_if_done(self, invocation: Invocation) -> None:
        """A delivered final answer is not kept for the sweep: at thousands of invocations a
        second, 30 s of them (bodies, headers, chunks) made every full GC pass a 100+ ms stall."""
        if invocation.delivered and invocation.final:
            self.table.forget(invocation.request_id)

    async def _status_published(self, invocation: Invocation, exchange: Exchange, window: int) -> None:
        """Ours, but its result is shared through Redis: deliver only if we claim it there."""
        assert self.results is not None
        deadline = time.monotonic() + window
        seen = invocation.reported_seq
        while not _deliverable(invocation) and invocation.progress_seq <= seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await invocation.changed(remaining):
                break
        if not _deliverable(invocation):
            send_accepted(exchange, invocation)
            invocation.reported_seq = invocation.progress_seq
            with suppress(BackendUnavailable):
                await self.results.publish(invocation, create=False)
            return
        if not await self._claim(invocation.request_id):
            raise NotFound(f"Request '{invocation.request_id}' not found")
        store = partial(self._store_result, self.public_url)
        instance = exchange.request.path
        await answer(invocation, exchange, instance, 0, polling=True, store_result=store, seen_progress=seen)

    async def _status_stored(self, principal: Principal, request_id: str, exchange: Exchange, window: int) -> None:
        """Another process accepted it (or its origin died): answer from the record in Redis."""
        assert self.results is not None
        deadline = time.monotonic() + window
        delay = 0.05
        while True:
            try:
                record = await self.results.load(request_id)
            except BackendUnavailable:
                raise ServiceUnavailable("Invocation results are unavailable: Redis cannot be reached") from None
            if record is None or record.nca_id != principal.nca_id:
                raise NotFound(f"Request '{request_id}' not found")
            if record.function_id and not self._may_poll(principal, record.function_id, record.version_id):
                raise NotFound(f"Request '{request_id}' not found")
            remaining = deadline - time.monotonic()
            if record.final or record.progress_seq > record.reported_seq or remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        stored = record.invocation()
        if not record.final:
            send_accepted(exchange, stored)
            with suppress(BackendUnavailable):
                await self.results.reported(request_id, record.progress_seq)
            return
        if not await self._claim(request_id):
            raise NotFound(f"Request '{request_id}' not found")
        store = partial(self._store_result, self.public_url)
        await answer(stored, exchange, exchange.request.path, 0, polling=True, store_result=store)

    async def _claim(self, request_id: str) -> bool:
        assert self.results is not None
        try:
            return await self.results.claim(request_id)
        except BackendUnavailable:
            raise ServiceUnavailable("Invocation results are unavailable: Redis cannot be reached") from None

    def _publishing(self, invocation: Invocation) -> Callable[[Exchange, Invocation], None]:
        """How the answer loop answers 202: with Redis, first making the invocation known to every process."""
        results = self.results
        if results is None:
            return send_accepted

        def publishing_accept(exchange: Exchange, accepted: Invocation) -> None:
            if invocation.published:
                send_accepted(exchange, accepted)
                return
            self._spawn(self._publish_then_accept(invocation, exchange))

        return publishing_accept

    async def _publish_then_accept(self, invocation: Invocation, exchange: Exchange) -> None:
        assert self.results is not None
        try:
            await self.results.publish(invocation)
            invocation.published = True
        except BackendUnavailable as exc:  # then polls reaching this process still work
            fields = invocation_fields(invocation.request)
            log.warning("invocation %s not published: %s", invocation.request_id, exc, extra=fields)
        if invocation.published:
            self._spawn(self._keep_published(invocation))
        if not exchange.closed:
            send_accepted(exchange, invocation)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_published(self, invocation: Invocation) -> None:
        """Mirror progress, then the final answer, into the published record."""
        assert self.results is not None
        seq = invocation.progress_seq
        while not invocation.final:
            await invocation.changed(30.0)
            if invocation.progress_seq != seq and not invocation.final:
                seq = invocation.progress_seq
                with suppress(BackendUnavailable):  # progress is a hint; the next one may pass
                    await self.results.publish(invocation, create=False)
        delay = 0.1
        deadline = time.monotonic() + self.result_ttl
        while not invocation.delivered and time.monotonic() < deadline:
            try:
                await self.results.store_final(invocation, b"".join(invocation.chunks), only_if_exists=True)
                return
            except BackendUnavailable as exc:  # keep trying until Redis is back: pollers wait for it
                fields = invocation_fields(invocation.request)
                log.warning("result of %s not stored in Redis yet: %s", invocation.request_id, exc, extra=fields)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- steps ------------------------------------------------------------------------------

    def target(
        self, principal: Principal, function_id: str, version_id: str | None
    ) -> tuple[FunctionRoute, VersionRoute]:
        """The version to invoke, as pexec picks it (the gRPC proxy asks the same question)."""
        return self._target(principal, function_id, version_id)

    def _target(
        self, principal: Principal, function_id: str, version_id: str | None
    ) -> tuple[FunctionRoute, VersionRoute]:
        route = self.routes.get(function_id)
        caller = principal.nca_id
        if route is None or not caller:
            raise NotFound(f"Function '{function_id}' not found")
        owner = route.nca_id == caller
        shared = route.public or route.shared_with_account(caller, version_id)
        if not (owner or shared):
            raise NotFound(f"Function '{function_id}' not found")
        if not principal.allows_function(function_id, version_id, route.nca_id, shared):
            raise Forbidden("Missing resource entry in ApiKey for the function")
        if version_id is not None:
            version = route.versions.get(version_id)
            if version is None:
                raise NotFound(f"Function '{function_id}' version '{version_id}' not found")
            if not version.invocable:
                raise NotFound(f"Function '{function_id}' version '{version_id}' is {version.status}, not ACTIVE")
            return route, version
        candidates = [
            v
            for v in route.invocable_versions()
            if (owner or route.public or caller in route.shared_with or caller in v.shared_with)
            and principal.allows_function(function_id, v.version_id, route.nca_id, shared)
        ]
        if not candidates:
            raise NotFound(f"Function '{function_id}' has no ACTIVE version")
        with_workers = [v for v in candidates if self.dispatcher.sessions(v.version_id)]
        return route, (with_workers or candidates)[0]

    async def _submit(
        self,
        principal: Principal,
        route: FunctionRoute,
        version: VersionRoute,
        exchange: Exchange,
        path: str,
        *,
        compat: bool,
        window: int,
        assets: list[tuple[str, str, str]] | None = None,
    ) -> Invocation:
        if version.rate_limit is not None:
            await self._within_rate(principal, route, version, version.rate_limit)
        http = exchange.request
        body = await exchange.body(self.max_body_bytes)
        now = time.time()
        request = InvocationRequest(
            request_id=new_request_id(),
            function_id=route.function_id,
            version_id=version.version_id,
            method=http.method,
            path=path,
            headers=forwarded_headers(http.headers) + [("NVCF-INVOCATION-REGION", self.region)],
            body=body,
            compat=compat,
            deadline_ms=int((now + self.queue_lifetime) * 1000),
            subject=principal.subject,
            nca_id=principal.nca_id,
            poll_seconds=window,
            enqueued_at_ms=int(now * 1000),
            assets=assets or [],
        )
        if compat and not any(k.lower() == "content-type" for k, _ in request.headers):
            request.headers.append(("Content-Type", "application/json"))
        invocation = Invocation(request)
        if self.trace is not None:
            self.trace(invocation)
        if self.annotate is not None:
            self.annotate(exchange, request)
        if invocation_message_bytes(request) > WORKER_MESSAGE_BYTES:
            raise PayloadTooLarge(f"The invocation exceeds the worker's message limit of {WORKER_MESSAGE_BYTES} bytes")
        held = self.budget.take_over(http, len(body))
        try:
            await self.dispatcher.submit(invocation)
        except QueueFull:
            self.queue_full += 1
            self.budget.release(held)
            raise TooManyRequests(
                f"Queue of function '{route.function_id}' is full", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        except BackendUnavailable:
            self.budget.release(held)
            raise ServiceUnavailable("The invocation queue is unavailable: Redis cannot be reached") from None
        except BaseException:
            self.budget.release(held)
            raise
        if held:
            self.budget.hold_until_final(invocation, held)
        return invocation

    async def _within_rate(
        self, principal: Principal, route: FunctionRoute, version: VersionRoute, policy: RatePolicy
    ) -> None:
        refusal = await self.over_rate(principal, route, version, policy)
        if refusal is not None:
            retry, detail = refusal
            raise TooManyRequests(detail, headers={"Retry-After": str(retry)})

    async def over_rate(
        self, principal: Principal, route: FunctionRoute, version: VersionRoute, policy: RatePolicy
    ) -> tuple[int, str] | None:
        """(seconds to wait, detail) when this call exceeds the version's rate policy; else it counts."""
        checks = policy.checks(version.version_id, principal.nca_id, principal.subject)
        if checks and (retry := await self.rate.check(checks)):
            self.rate_limited += 1
            return retry, f"Rate limit exceeded for function '{route.function_id}' ({policy.describe(checks)})"
        return None

    def _serve(self, invocation: Invocation, exchange: Exchange, window: int, *, polling: bool) -> None:
        """Answer by callbacks; cancel the invocation if the client leaves while it waits for it."""
        instance = exchange.request.path

        def done(outcome: str) -> None:
            if outcome == Outcome.ACCEPTED:
                invocation.reported_seq = invocation.progress_seq
            elif outcome == Outcome.REJECTED:
                self._spawn(self.dispatcher.cancel(invocation, "malformed answer from the worker"))
            elif outcome == Outcome.GONE:
                if not invocation.final:
                    self._spawn(self.dispatcher.cancel(invocation, "client disconnected"))
            elif outcome == Outcome.TIMED_OUT:
                self._spawn(self.dispatcher.cancel(invocation, "no answer within the poll window"))
                error = GatewayError("No response from the function within NVCF-POLL-SECONDS")
                error.status, error.name = 504, "gateway-timeout"
                send_problem(exchange, invocation.request_id, error, instance)
                invocation.delivered = True
            self._forget_if_done(invocation)

        Answering(
            invocation,
            exchange,
            instance,
            window,
            polling=polling,
            store_result=self._store,
            done=done,
            accept=self._publishing(invocation) if polling else send_accepted,
            backlog_limit=self.stream_backlog,
        ).begin()

    async def _input_assets(self, principal: Principal, raw: bytes | None) -> list[tuple[str, str, str]]:
        """``NVCF-INPUT-ASSET-REFERENCES``: the caller's uploaded assets, as worker download URLs
        (relative to the gateway's HTTP address, which the worker learns at Register)."""
        if not raw or self.assets is None:
            return []
        found = []
        for part in raw.decode("latin-1").split(","):
            asset_id = part.strip().lower()
            if not _is_uuid(asset_id):
                raise BadRequest(f"NVCF-INPUT-ASSET-REFERENCES: '{asset_id[:64]}' is not an asset id")
            try:
                record = await self.assets.get(principal.nca_id, asset_id)
            except AssetNotFound:
                raise NotFound(f"Asset '{asset_id}' not found") from None
            found.append((asset_id, self.assets.download_url("", record), record.content_type))
        return found

    async def _store_result(self, base_url: str, invocation: Invocation, data: bytes) -> str:
        """Keep a large result (zip) for download; its signed, expiring URL (any gateway host serves it
        when the result files are in the shared object store)."""
        try:
            await self.result_files.put(invocation.request_id, data)
        except ObjectStoreError as exc:
            raise object_store_problem(exc) from None
        expires = int(time.time() + self.result_ttl)
        signature = self.signer.sign("result", invocation.request_id, str(expires))
        return f"{base_url}{RESULTS_PREFIX}{invocation.request_id}?expires={expires}&signature={signature}"

    async def download(self, exchange: Exchange) -> None:
        """``GET /v2/nvcf/pexec/results/<requestId>?expires=…&signature=…``: the signature is the credential."""
        request_id = exchange.request.path[len(RESULTS_PREFIX) :]
        query = parse_qs(exchange.request.query.decode("latin-1"))
        expires = (query.get("expires") or [""])[0]
        signature = (query.get("signature") or [""])[0]
        stamp = parse_expiry(expires)
        valid = (
            _is_uuid(request_id)
            and stamp is not None
            and stamp >= time.time()
            and self.signer.verify(signature, "result", request_id, expires)
        )
        if not valid:
            raise Forbidden("Invalid or expired result URL")
        try:
            data = await self.result_files.get(request_id)
        except ObjectStoreError as exc:
            raise object_store_problem(exc) from None
        if data is None:
            raise NotFound(f"Result '{request_id}' not found")
        headers = [
            (b"content-type", b"application/zip"),
            (b"content-length", str(len(data)).encode()),
            (b"content-disposition", f'attachment; filename="{request_id}.zip"'.encode()),
        ]
        exchange.respond(200, headers, data)

    async def sweep_results(self) -> int:
        """Delete stored large results older than their lifetime."""
        return await self.result_files.sweep(time.time() - self.result_ttl)


def new_request_id() -> str:
    """A random (version 4) UUID in its canonical text form: ``str(uuid.uuid4())`` without the
    ``UUID`` object (a third of the cost)."""
    value = (int.from_bytes(os.urandom(16)) & _V4_CLEAR) | _V4_SET
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version nibble, variant bits
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def _deliverable(invocation: Invocation) -> bool:
    """The answer loop would deliver now (rather than wait or answer 202)."""
    answered = invocation.answer is not None and invocation.answer.kind != ResultKind.LARGE_RESULT
    return invocation.final or answered


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
