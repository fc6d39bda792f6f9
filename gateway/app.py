"""The gateway's ASGI entry point: ``/health``, the hot path, then Host dispatch to services.

Every request is first classified by the compiled hot path (Host → service; for invocation
paths also the route, the bearer credential and its ``invoke_function`` scope). Invocation
requests are answered here without entering Starlette; everything else goes to the embedded
service app for its host. An unknown host is a 404 problem, never a fall-through.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson

from cext.hotpath import (
    DECIDE_BAD_BEARER,
    DECIDE_BAD_ID,
    DECIDE_CACHE_MISS,
    DECIDE_FORBIDDEN,
    DECIDE_NO_BEARER,
    DECIDE_NOT_HOT,
    DECIDE_OK,
    DECIDE_UNKNOWN_HOST,
    ROUTE_EXEC,
    ROUTE_EXEC_STATUS,
    ROUTE_EXEC_VERSION,
    ROUTE_PEXEC,
    ROUTE_PEXEC_STATUS,
    ROUTE_PEXEC_VERSION,
    SERVICE_API,
    SERVICE_API_KEYS,
    SERVICE_FUNCTION,
    SERVICE_INVOCATION,
    SERVICE_LLM,
    SERVICE_NICO,
    SERVICE_SIS,
    SERVICE_TASKS,
    SERVICE_UNKNOWN,
    Decision,
    HostClassifier,
    HotPath,
    Principal,
    extract_bearer,
)
from gateway.access_log import LoggedSend, logged_handler
from gateway.access_log import annotate as annotate_access_line
from gateway.asgi import ASGIApp, Receive, Scope, Send, send_response
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.auth.worker_authority import Operator
from gateway.edge.asgi_exchange import AsgiExchange, Handler
from gateway.edge.budget import ByteBudget
from gateway.edge.exchange import Exchange, HotRequest
from gateway.grpc_invocation.endpoint import GrpcInvocationEndpoint
from gateway.grpc_invocation.proxy import GrpcInvocations
from gateway.grpc_invocation.sessions import grpc_sessions
from gateway.invocation.service import RESULTS_PREFIX, InvocationService
from gateway.invocation.tracing import InvocationTracing
from gateway.invocation.workers import CLUSTER_ID_KEY, WorkerAuthorizer
from gateway.llm.budget import LocalTokenBudget, RedisTokenBudget
from gateway.llm.service import LlmService
from gateway.metrics.collector import GatewayMetrics, Sources
from gateway.metrics.database import count_database_errors
from gateway.metrics.http import HttpCounts
from gateway.objectstore.results import S3ResultFiles
from gateway.problems import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    Unauthorized,
    error_body,
    problem_headers,
)
from gateway.proxy import UpstreamProxy
from gateway.runtime import Runtime
from gateway.services.apikeys import build_apikeys_app
from gateway.services.clusters.app import build_sis_app
from gateway.services.functions.app import build_api_app
from gateway.services.nico.app import NicoApp
from gateway.services.tasks.app import build_tasks_app
from gateway.services.tasks.broker import TaskBroker
from gateway.services.tasks.scheduler import TaskScheduler
from gateway.services.tasks.service import TaskService
from gateway.services.tasks.workers import authorize_task_worker
from gateway.settings import Settings
from gateway.store.clusters import Cluster
from gateway.store.tasks import TaskRepository
from invoker import tracing
from invoker.dispatch import Dispatcher
from invoker.invocations import InvocationTable
from invoker.metrics.exposition import MetricsServer
from invoker.queues.redis import RedisQueue
from invoker.replies import ReplyBus
from invoker.results import ResultStore
from invoker.server import WorkerEndpoint, WorkerService

# Allocations between two young-generation collections once the start-up heap is frozen.
YOUNG_GC_THRESHOLD = 10_000

log = logging.getLogger("gateway")

# Service labels served by this build; hosts of services that do not exist yet are unknown.
SERVICE_LABELS: dict[str, int] = {
    "api": SERVICE_API,
    "invocation": SERVICE_INVOCATION,
    "api-keys": SERVICE_API_KEYS,
    "sis": SERVICE_SIS,
    "tasks": SERVICE_TASKS,
    "nico": SERVICE_NICO,
    # The OpenAI-compatible LLM gateway answers on both (reference §2).
    "llm": SERVICE_LLM,
    "llm.invocation": SERVICE_LLM,
}
# How the metrics name the services (SERVICE_FUNCTION: direct invocation by host or header).
SERVICE_NAMES: dict[int, str] = {
    **{number: label for label, number in SERVICE_LABELS.items()},
    SERVICE_FUNCTION: "function",
    SERVICE_UNKNOWN: "unknown",
}
# Services that exist here only when proxied to an upstream (settings.upstreams).
UPSTREAM_LABELS: dict[str, int] = {**SERVICE_LABELS, "nico": SERVICE_NICO}


def health_response(process_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """``/health``: UP, and which gateway process answered (a random id, so it tells nothing else)."""
    body = orjson.dumps({"status": "UP", "process": process_id})
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


class Gateway:
    def __init__(self, settings: Settings, *, owns_process: bool = False) -> None:
        self.settings = settings
        # Alone in its process (``cfgate serve``): it may freeze the heap after start-up. Never
        # when embedded (tests, the demo): freezing makes everything the host holds immortal.
        self.owns_process = owns_process
        self._runtime: Runtime | None = None
        self._services: dict[int, ASGIApp] = {}
        self._proxies: dict[int, UpstreamProxy] = {}
        self._hot: HotPath | None = None
        self._api_hosts: frozenset[bytes] = frozenset()
        self._api_host_header = b""
        self._invocations: InvocationService | None = None
        self._llm: LlmService | None = None
        self._workers: WorkerEndpoint | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._task_loop: asyncio.Task[None] | None = None
        self._scheduler: TaskScheduler | None = None
        self.tasks: TaskService | None = None
        self._replies: ReplyBus | None = None
        self._nico: NicoApp | None = None
        self._invoke_mask = 0
        self._eager = False
        self._health = health_response("")
        self.worker_port = 0
        # --access-log: one line per request (gateway.access_log); off, handlers are not wrapped.
        self._access_log = settings.access_log
        self.grpc_port = 0
        self._grpc: GrpcInvocationEndpoint | None = None
        # Request-body bytes this process holds for invocations (the server layer reserves from it).
        self.budget = ByteBudget(settings.max_queued_body_bytes)
        # Prometheus metrics (--metrics-port): None when off, and then nothing on the hot path counts.
        self.metrics: GatewayMetrics | None = None
        if settings.metrics_enabled:
            self.metrics = GatewayMetrics(SERVICE_NAMES, function_labels=settings.metrics_function_labels)
        # What the edge bumps per answer (gateway.edge reads it once per connection).
        self.http_counts: HttpCounts | None = self.metrics.http if self.metrics is not None else None
        self._metrics_server: MetricsServer | None = None
        self.metrics_port = 0

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("gateway not started")
        return self._runtime

    @property
    def invocations(self) -> InvocationService:
        if self._invocations is None:
            raise RuntimeError("gateway not started")
        return self._invocations

    async def startup(self) -> None:
        runtime = await Runtime.start(self.settings)
        self._runtime = runtime
        self._health = health_response(runtime.process_id)
        self._eager = runtime.redis is None
        settings = self.settings
        scheduler = TaskScheduler(
            TaskRepository(runtime.store.engine),
            runtime.secretbox,
            tick=settings.task_tick_ms / 1000,
            lost_after=settings.task_worker_lost_seconds,
        )
        self._scheduler = scheduler
        self.tasks = TaskService(scheduler.repository, scheduler)
        self._services = {
            SERVICE_API_KEYS: build_apikeys_app(runtime),
            SERVICE_API: build_api_app(runtime, self.tasks),
            SERVICE_SIS: build_sis_app(runtime),
            SERVICE_TASKS: build_tasks_app(runtime, self.tasks),
        }
        upstreams = self.settings.upstream_map()
        if "nico" not in upstreams:
            # Embedded NICo REST unless proxied; its site clock steps in this process.
            self._nico = NicoApp(runtime)
            self._services[SERVICE_NICO] = self._nico
            self._nico.start()
        timeout = self.settings.upstream_timeout_seconds
        self._proxies = {UPSTREAM_LABELS[s]: UpstreamProxy(url, timeout=timeout) for s, url in upstreams.items()}
        labels = {**SERVICE_LABELS, **{s: UPSTREAM_LABELS[s] for s in upstreams}}
        classifier = HostClassifier(self.settings.domain, labels)
        invoke = runtime.authorities.any_of("invoke_function", APIKEY_PREFIX + "invoke_function")
        self._invoke_mask = invoke
        self._hot = HotPath(classifier, runtime.credentials, invoke)
        # --api-host: these Host names reach the api service as api.<domain> does.
        self._api_hosts = frozenset(name.lower().encode() for name in self.settings.api_hosts)
        self._api_host_header = f"api.{classifier.domain}".encode()
        table = InvocationTable(settings.result_ttl_seconds)
        results = None
        if runtime.redis is not None and runtime.presence is not None:
            await runtime.presence.start()
            self._replies = ReplyBus(runtime.redis, runtime.presence)
            results = ResultStore(runtime.redis, settings.result_ttl_seconds)
        dispatcher = Dispatcher(
            runtime.queues,
            table,
            runtime.instances,
            max_attempts=settings.max_attempts,
            queue_lifetime=settings.queue_lifetime_seconds,
            max_queue_depth=settings.max_queue_depth,
            replies=self._replies,
            results=results,
            metrics=self.metrics.dispatch if self.metrics is not None else None,
        )
        if self._replies is not None:
            await self._replies.start()
        redis_queue = _redis_queue(runtime.queues)
        if redis_queue is not None:
            await redis_queue.start()
        runtime.catalog.undeploy_hooks.append(lambda _fid, vid, graceful: dispatcher.undeploy(vid, graceful))
        self._invocations = InvocationService(
            runtime.routes,
            dispatcher,
            table,
            max_body_bytes=settings.max_invocation_body_bytes,
            queue_lifetime=settings.queue_lifetime_seconds,
            results_dir=settings.data_dir / "results",
            result_ttl=settings.result_ttl_seconds,
            signer=runtime.url_signer,
            assets=runtime.assets,
            region=settings.region,
            results=results,
            rate=runtime.rate_limit,
            public_url=settings.public_urls.service("invocation"),
            budget=self.budget,
            stream_backlog=settings.max_stream_backlog_bytes,
            result_files=S3ResultFiles(runtime.object_store) if runtime.object_store is not None else None,
        )
        tokens = RedisTokenBudget(runtime.redis) if runtime.redis is not None else LocalTokenBudget()
        self._llm = LlmService(self._invocations, self._invoker, tokens)
        tracer = tracing.process_tracer("cfgate-gateway")
        if tracer is not None:
            self._invocations.trace = InvocationTracing(tracer)
        if self._access_log:
            self._invocations.annotate = annotate_access_line
        operator = Operator(settings.issuer, settings.admin_client_id)
        service = WorkerService(
            dispatcher,
            WorkerAuthorizer(
                runtime.authenticator,
                runtime.routes,
                settings.region,
                settings.http_url,
                runtime.cluster_registry,
                runtime.catalog.deployments,
                operator,
                gateway_host=settings.public_urls.host_header("api"),
            ),
            heartbeat_interval_ms=settings.worker_heartbeat_ms,
            tasks=TaskBroker(
                scheduler,
                runtime.authenticator,
                heartbeat_interval_ms=settings.worker_heartbeat_ms,
                authorize=partial(authorize_task_worker, clusters=runtime.cluster_registry, operator=operator),
            ),
            secrets=runtime.secret_delivery.document,
        )
        runtime.secret_delivery.push = service.push_secrets
        runtime.secret_delivery.connected_versions = service.connected_versions
        # Deleting a cluster, or changing where it may run work, ends its workers' sessions: in-flight
        # invocations are redelivered, the tasks its task workers ran end ERRORED.
        runtime.cluster_registry.revoke_hooks.append(
            lambda cluster, reason: service.disconnect(
                lambda grant: grant.metadata.get(CLUSTER_ID_KEY) == cluster.cluster_id, reason
            )
        )
        runtime.cluster_registry.revoke_hooks.append(_end_task_workers(scheduler))
        self._workers = WorkerEndpoint(service, settings.host, settings.worker_port)
        self.worker_port = await self._workers.start()
        self._grpc = GrpcInvocationEndpoint(
            GrpcInvocations(self._invocations, runtime.authenticator, invoke, grpc_sessions(runtime.redis)),
            settings.host,
            settings.grpc_port,
            worker_port=self.worker_port,
        )
        self.grpc_port = await self._grpc.start()
        if self.metrics is not None:
            self.metrics.sources = Sources(dispatcher, runtime.queues, runtime.routes, self._invocations, self.budget)
            await self._start_metrics(self.metrics)
        self._housekeeping = asyncio.create_task(self._sweep(table))
        self._task_loop = asyncio.create_task(scheduler.run())
        if self.owns_process:
            # Start-up objects (modules, ORM metadata, keys) out of every later full collection:
            # a full pass then scans only what invocations left behind (GC pauses were p99 stalls).
            gc.collect()
            gc.freeze()
            # Invocations in flight are thousands of young objects that die by reference count,
            # not in cycles: at the default 700, a young collection ran every ~30 invocations and
            # scanned them all (~4 us per invocation, bench.inproc).
            gc.set_threshold(YOUNG_GC_THRESHOLD, 10, 10)

    async def _start_metrics(self, metrics: GatewayMetrics) -> None:
        count_database_errors(self.runtime.store.engine)
        server = MetricsServer(metrics.render)
        if self.settings.metrics_socket is not None:
            await server.start_unix(self.settings.metrics_socket)
        else:
            assert self.settings.metrics_port is not None
            self.metrics_port = await server.start_tcp(self.settings.host, self.settings.metrics_port)
        self._metrics_server = server

    async def _sweep(self, table: InvocationTable) -> None:
        while True:
            await asyncio.sleep(30)
            table.sweep(time.time())
            if self._invocations is not None:
                await self._invocations.sweep_results()

    async def _stop_task_loop(self) -> None:
        if self._task_loop is not None and self._scheduler is not None:
            self._scheduler.close()
            try:
                await asyncio.wait_for(self._task_loop, 10)
            except TimeoutError:
                log.warning("task scheduler did not stop in time")
            self._task_loop = None

    async def shutdown(self) -> None:
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None
        for proxy in self._proxies.values():
            proxy.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._nico is not None:
            await self._nico.close()
            self._nico = None
        await self._stop_task_loop()
        if self._grpc is not None:
            await self._grpc.stop(grace=5)
            self._grpc = None
        if self._workers is not None:
            await self._workers.stop(grace=5)
            self._workers = None
        if self._runtime is not None:
            redis_queue = _redis_queue(self._runtime.queues)
            if redis_queue is not None:
                await redis_queue.stop()
            if self._replies is not None:
                await self._replies.stop()
            if self._runtime.presence is not None:
                await self._runtime.presence.stop()
            await self._runtime.close()
            self._runtime = None
        if self.owns_process:
            tracing.shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = AsgiExchange(scope, receive, send)
        handler = self.hot_handler(exchange.request)
        if handler is None:
            await self.control(scope, receive, send, exchange.request.decision)
            return
        await exchange.run(handler)

    def hot_handler(self, request: HotRequest) -> Handler | None:
        """The hot-path handler for a request, decided from its head; None: the control plane's."""
        handler = self._hot_route(request)
        if handler is None or not self._access_log:
            return handler
        return logged_handler(request, handler)

    def _hot_route(self, request: HotRequest) -> Handler | None:
        if request.path == "/health":
            return self._serve_health
        hot = self._hot
        assert hot is not None, "gateway not started"
        host = request.header(b"host") or b""
        if self._api_hosts and _bare_host(host) in self._api_hosts:
            host = self._api_host_header
        decision = hot.decide(host, request.method.encode(), request.raw_path, request.header(b"authorization"))
        request.decision = decision
        if decision.code != DECIDE_NOT_HOT:
            # In-memory mode a cached credential's invocation never needs a task of its own
            # before it waits (no Redis client, no store lookup for input assets).
            request.eager = (
                self._eager and decision.code == DECIDE_OK and request.header(b"nvcf-input-asset-references") is None
            )
            return self._invocation
        if decision.service not in (SERVICE_INVOCATION, SERVICE_API):
            if decision.service == SERVICE_LLM:
                return self._serve_llm
            return self._proxied(decision.service, request)
        if request.path.startswith(RESULTS_PREFIX) and request.method in ("GET", "HEAD"):
            return self._download
        if decision.service == SERVICE_INVOCATION and request.header(b"function-id") is not None:
            return self._header_routed
        return self._proxied(decision.service, request)

    def _proxied(self, service: int, request: HotRequest) -> Handler | None:
        """A proxied service's small request goes through the edge's exchange (no ASGI cycle);
        a streamed body, or an embedded service, through the control plane."""
        proxy = self._proxies.get(service)
        if proxy is None or not proxy.takes_whole(request):
            return None
        return proxy.serve

    async def control(self, scope: Scope, receive: Receive, send: Send, decision: object) -> None:
        """A request for a control-plane service (embedded Starlette app or upstream proxy)."""
        assert isinstance(decision, Decision)
        if not self._access_log:
            await self._control(scope, receive, send, decision)
            return
        logged = LoggedSend(scope, decision, send)
        try:
            await self._control(scope, receive, logged, decision)
        finally:
            logged.finish()

    async def _control(self, scope: Scope, receive: Receive, send: Send, decision: Decision) -> None:
        service = self._proxies.get(decision.service) or self._services.get(decision.service)
        if service is None:
            await _send_problem(send, NotFound("Unknown host"), scope["path"])
            return
        await service(scope, receive, send)

    @property
    def max_hot_body_bytes(self) -> int:
        return self.settings.max_invocation_body_bytes

    async def _serve_health(self, exchange: Exchange) -> None:
        exchange.respond(200, *self._health)

    async def _serve_llm(self, exchange: Exchange) -> None:
        llm = self._llm
        assert llm is not None, "gateway not started"
        await llm.handle(exchange)

    async def _download(self, exchange: Exchange) -> None:
        try:
            await self.invocations.download(exchange)
        except GatewayError as exc:
            _problem(exchange, exc, invocation=True)

    async def _header_routed(self, exchange: Exchange) -> None:
        """Direct invocation routed by the function-id / function-version-id headers."""
        request = exchange.request
        try:
            function_id = request.header(b"function-id")
            assert function_id is not None
            principal = await self._invoker(request.header(b"authorization"))
            version_id = request.header(b"function-version-id")
            await self.invocations.direct(
                principal, _uuid(function_id), _uuid(version_id) if version_id else None, exchange
            )
        except GatewayError as exc:
            _problem(exchange, exc, invocation=True)

    async def _invoker(self, authorization: bytes | None) -> Principal:
        status, token = extract_bearer(authorization)
        if token is None:
            raise Unauthorized("Header of type `authorization` was missing" if status == 0 else "Unauthorized access")
        principal = await self.runtime.authenticator.authenticate(token)
        if not principal.has_any(self._invoke_mask):
            raise Forbidden("Missing required scope 'invoke_function'")
        return principal

    async def _invocation(self, exchange: Exchange) -> None:
        decision = exchange.request.decision
        assert isinstance(decision, Decision)
        code = decision.code
        error: GatewayError
        if code == DECIDE_CACHE_MISS and decision.token is not None:
            try:
                principal = await self.runtime.authenticator.authenticate(decision.token)
            except GatewayError as exc:
                _problem(exchange, exc, invocation=True)
                return
            # Built here rather than decided again: the authenticator may not cache (see there).
            decision = Decision(
                DECIDE_OK if principal.has_any(self._invoke_mask) else DECIDE_FORBIDDEN,
                decision.service,
                decision.route,
                decision.function_id,
                decision.version_id,
                decision.request_id,
                principal,
                decision.token,
            )
            code = decision.code
        if code == DECIDE_OK:
            try:
                await self._serve_invocation(decision, exchange)
            except GatewayError as exc:
                _problem(exchange, exc, invocation=True)
            return
        if code == DECIDE_UNKNOWN_HOST:
            _problem(exchange, NotFound("Unknown host"))
            return
        elif code == DECIDE_NO_BEARER:
            error = Unauthorized("Header of type `authorization` was missing")
        elif code in (DECIDE_BAD_BEARER, DECIDE_CACHE_MISS):
            error = Unauthorized("Unauthorized access")
        elif code == DECIDE_FORBIDDEN:
            error = Forbidden("Missing required scope 'invoke_function'")
        elif code == DECIDE_BAD_ID:
            error = BadRequest("Invalid id in path: must be a UUID")
        else:
            error = GatewayError(f"unexpected hot-path decision {code}")
        _problem(exchange, error, invocation=True)

    async def _serve_invocation(self, decision: Decision, exchange: Exchange) -> None:
        service = self._invocations
        principal = decision.principal
        assert service is not None and principal is not None
        route = decision.route
        if decision.service == SERVICE_FUNCTION:
            # function-id / function-version-id headers win over the host name.
            request = exchange.request
            fid_header, vid_header = request.header(b"function-id"), request.header(b"function-version-id")
            function_id = _uuid(fid_header) if fid_header else decision.function_id
            version_id = _uuid(vid_header) if vid_header else decision.version_id
            assert function_id is not None
            await service.direct(principal, function_id, version_id, exchange)
        elif route in (ROUTE_PEXEC, ROUTE_PEXEC_VERSION):
            assert decision.function_id is not None
            await service.pexec(principal, decision.function_id, decision.version_id, exchange)
        elif route == ROUTE_PEXEC_STATUS:
            assert decision.request_id is not None
            await service.status(principal, decision.request_id, exchange)
        elif route in (ROUTE_EXEC, ROUTE_EXEC_VERSION):
            assert decision.function_id is not None
            await service.exec(principal, decision.function_id, decision.version_id, exchange)
        elif route == ROUTE_EXEC_STATUS:
            assert decision.request_id is not None
            await service.exec_status(principal, decision.request_id, exchange)
        else:
            raise NotFound(f"No invocation route {route}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _redis_queue(queue: object) -> RedisQueue | None:
    """The Redis Streams queue under the priority lanes (``invoker.queues.priority``), if that is the backend."""
    inner = getattr(queue, "inner", queue)
    return inner if isinstance(inner, RedisQueue) else None


def _end_task_workers(scheduler: TaskScheduler) -> Callable[[Cluster, str], Awaitable[None]]:
    async def end(cluster: Cluster, reason: str) -> None:
        scheduler.disconnect(lambda session: session.grant.cluster_id == cluster.cluster_id, reason)

    return end


def _problem(exchange: Exchange, exc: GatewayError, *, invocation: bool = False) -> None:
    if exchange.started or exchange.closed:
        return
    body = error_body(exc, exchange.request.path)
    extra: dict[str, Any] = dict(exc.headers)
    if invocation:
        extra.update({"NVCF-REQID": str(uuid.uuid4()), "NVCF-STATUS": "errored"})
    exchange.respond(exc.status, problem_headers(body, extra), body)


async def _send_problem(send: Send, exc: GatewayError, instance: str) -> None:
    body = error_body(exc, instance)
    await send_response(send, exc.status, problem_headers(body, exc.headers), body)


def _bare_host(host: bytes) -> bytes:
    """A Host header's name without its port, lowercase."""
    name = host.rsplit(b":", 1)[0] if host.count(b":") == 1 else host
    return name.strip().rstrip(b".").lower()


def _uuid(raw: bytes) -> str:
    try:
        return str(uuid.UUID(raw.decode("latin-1")))
    except ValueError:
        raise BadRequest("function-id and function-version-id must be UUIDs") from None


def build_app(settings: Settings, *, owns_process: bool = False) -> Gateway:
    return Gateway(settings, owns_process=owns_process)
