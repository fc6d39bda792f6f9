"""The worker agent's session lifecycle: wait for the container, register, serve one Work stream,
reconnect when it breaks, drain on request.

A session is ``Register`` (credential in the request and as ``authorization: Bearer`` metadata)
followed by ONE bidirectional ``Work`` stream opened with ``cfgate-session-id`` (and the same
authorization) metadata. The first message the worker sends grants ``max_concurrency`` credits
(or fewer: the ``max_concurrency`` of the RegisterResponse, the deployment's bound, wins);
each finished invocation gives its credit back on the message that carries its end. One sender
task drains the outbox (``outbox.py``) in greedy batches and sends a heartbeat when nothing was sent
for the session's ``heartbeat_interval_ms`` (default 5 s) or the gateway sent ``ping``.

Draining (a ``drain`` message from the gateway, or SIGTERM/SIGINT through ``request_stop()``): the
next message says ``draining: true``, no credits are given back from then on, in-flight
invocations get up to ``grace_period`` seconds to finish (a second stop request ends the wait),
whatever is still running is abandoned, the worker half-closes the stream, waits briefly for the
gateway to end it, and ``run()`` returns 0.

A broken stream (or the gateway ending it without a drain) abandons the session's invocations —
their container connections are closed and nothing more is sent for them; the gateway redelivers
them — and the worker reconnects and registers again, with exponential backoff and jitter
(``backoff_initial`` doubling up to ``backoff_max``; each delay is drawn from [d/2, d]). The backoff
resets after a session that received a message from the gateway or lasted ``backoff_max``.
``Register`` refused with UNAUTHENTICATED (bad credential), INVALID_ARGUMENT or FAILED_PRECONDITION
(the address is the gateway's gRPC invocation port, not its worker port) is final (``run()``
returns 3); other refusals are retried with the same backoff — including PERMISSION_DENIED, which
cfgate's gateway also answers while the function has no deployed version yet.

Exit codes of ``run()``: 0 stopped or drained, 1 the container never became ready, 3 refused.

gRPC keepalive pings are off by default (``keepalive_ms``): a gRPC server that does not permit
them answers frequent pings with GOAWAY; the heartbeats keep the stream busy anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

from invoker.limits import WORKER_MESSAGE_BYTES
from invoker.metrics.exposition import MetricsServer
from invoker.worker.assets import AssetFetcher
from invoker.worker.config import WorkerConfig
from invoker.worker.container import metadata_value, static_headers
from invoker.worker.grpc_container import GrpcContainer
from invoker.worker.http_client import HttpClient
from invoker.worker.invocation import InvocationRunner, SessionInfo
from invoker.worker.metrics import WorkerMetrics
from invoker.worker.outbox import Outbox
from invoker.worker.progress import ProgressWatcher
from invoker.worker.readiness import Readiness, wait_until_ready
from invoker.worker.secrets_file import SecretsFile
from invoker.worker.workdirs import WorkDirs
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc as pb_grpc

__all__ = ["EXIT_NOT_READY", "EXIT_OK", "EXIT_REFUSED", "RegisterRefused", "SessionBroken", "WorkerAgent"]

log = logging.getLogger("invoker.worker")

EXIT_OK = 0
EXIT_NOT_READY = 1
EXIT_REFUSED = 3

DEFAULT_HEARTBEAT_MS = 5000
DEFAULT_MAX_DIRECT_BYTES = 5 * 1024 * 1024
_MESSAGE_LIMIT = WORKER_MESSAGE_BYTES  # what the gateway's body limit is sized for
_CLOSE_WAIT = 5.0
# FAILED_PRECONDITION: the address is a gateway's gRPC invocation port, not its worker port.
_FATAL_CODES = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
)


class SessionBroken(Exception):
    """The Work stream ended without a drain."""


class RegisterRefused(Exception):
    """The gateway refused the registration for good (bad credential or request)."""


class WorkerAgent:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.sessions = 0  # sessions registered so far
        # --metrics-port: the agent's own /metrics (None: off, nothing counted).
        self.metrics = WorkerMetrics() if config.metrics_port is not None else None
        self.metrics_port = 0
        self._stop = asyncio.Event()
        self._grpc: GrpcContainer | None = None
        self._force = asyncio.Event()
        self._received = False
        self.secrets = SecretsFile(config.secrets_file)

    def request_stop(self) -> None:
        """Drain and exit (SIGTERM/SIGINT); a second request ends the grace period at once."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> int:
        config = self.config
        temporary = config.work_dir is None
        work_dir = tempfile.mkdtemp(prefix="cfgate-worker-") if config.work_dir is None else str(config.work_dir)
        dirs = WorkDirs(work_dir, spares=config.max_concurrency)
        server: MetricsServer | None = None
        try:
            if self.metrics is not None and config.metrics_port is not None:
                server = MetricsServer(self.metrics.render)
                self.metrics_port = await server.start_tcp(config.metrics_host, config.metrics_port)
                log.info("metrics on %s:%d", config.metrics_host, self.metrics_port)
            readiness = await wait_until_ready(config, self._stop)
            if readiness is Readiness.STOPPED:
                return EXIT_OK
            if readiness is Readiness.TIMED_OUT:
                return EXIT_NOT_READY
            endpoint = config.inference
            client = HttpClient(endpoint.host, endpoint.port, max_connections=config.max_concurrency)
            self._grpc = grpc_container = GrpcContainer(endpoint.host, endpoint.port)
            progress = ProgressWatcher(config.progress_interval)
            assets = AssetFetcher()
            try:
                return await self._serve(client, progress, assets, dirs)
            finally:
                dirs.close()
                client.close()
                await grpc_container.close()
                await progress.close()
                await assets.close()
        finally:
            if server is not None:
                await server.stop()
            if temporary:
                shutil.rmtree(work_dir, ignore_errors=True)

    async def _serve(self, client: HttpClient, progress: ProgressWatcher, assets: AssetFetcher, dirs: WorkDirs) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stop.is_set():
            began = loop.time()
            self._received = False
            try:
                async with self._channel() as channel:
                    await self._session(channel, client, progress, assets, dirs)
                    return EXIT_OK
            except RegisterRefused as exc:
                log.error("registration refused: %s", exc)
                return EXIT_REFUSED
            except grpc.aio.AioRpcError as exc:
                level = logging.ERROR if exc.code() == grpc.StatusCode.PERMISSION_DENIED else logging.WARNING
                log.log(level, "gateway %s: %s %s", config.gateway, exc.code().name, exc.details())
            except (SessionBroken, OSError) as exc:
                log.warning("session with %s ended: %s", config.gateway, exc)
            except Exception:
                log.exception("session with %s failed", config.gateway)
            if self._received or loop.time() - began >= config.backoff_max:
                failures = 0
            delay = min(config.backoff_max, config.backoff_initial * 2**failures)
            delay = random.uniform(delay / 2, delay)
            failures += 1
            log.info("reconnecting to %s in %.2fs", config.gateway, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
        return EXIT_OK

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[grpc.aio.Channel]:
        config = self.config
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
            ("grpc.max_send_message_length", _MESSAGE_LIMIT),
        ]
        if config.keepalive_ms:
            options += [("grpc.keepalive_time_ms", config.keepalive_ms), ("grpc.keepalive_timeout_ms", 10_000)]
        if config.tls:
            channel = grpc.aio.secure_channel(config.gateway, grpc.ssl_channel_credentials(), options=options)
        else:
            channel = grpc.aio.insecure_channel(config.gateway, options=options)
        try:
            yield channel
        finally:
            await channel.close(grace=None)

    async def _register(self, stub: pb_grpc.WorkerServiceStub) -> pb.RegisterResponse | None:
        """The RegisterResponse, or None when a stop was requested first."""
        config = self.config
        request = pb.RegisterRequest(
            credential=config.token,
            function_id=config.function_id,
            version_id=config.version_id,
            instance_id=config.instance_id,
            max_concurrency=config.max_concurrency,
            gpu=config.gpu,
            instance_type=config.instance_type,
            backend=config.backend,
            location=config.location,
            cluster_id=config.cluster_id,
            labels=config.labels,
        )
        metadata = (("authorization", f"Bearer {config.token}"),)
        call = stub.Register(request, metadata=metadata, timeout=config.register_timeout)
        registering = asyncio.ensure_future(call)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({registering, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not registering.done():
            registering.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await registering
            return None
        try:
            response: pb.RegisterResponse = registering.result()
            return response
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _FATAL_CODES:
                raise RegisterRefused(f"{exc.code().name}: {exc.details()}") from exc
            raise

    def _session_info(self, register: pb.RegisterResponse) -> SessionInfo:
        config = self.config
        return SessionInfo(
            session_id=register.session_id,
            nca_id=register.nca_id,
            default_path=register.inference_url or config.inference.path,
            max_direct_bytes=register.max_direct_response_bytes or DEFAULT_MAX_DIRECT_BYTES,
            heartbeat_interval=(register.heartbeat_interval_ms or DEFAULT_HEARTBEAT_MS) / 1000,
            static_headers=static_headers(
                register, backend=config.backend, instance_type=config.instance_type, location=config.location
            ),
            gateway_url=metadata_value(register.metadata, "gatewayUrl"),
            gateway_host=metadata_value(register.metadata, "gatewayHost"),
        )

    async def _session(
        self,
        channel: grpc.aio.Channel,
        client: HttpClient,
        progress: ProgressWatcher,
        assets: AssetFetcher,
        dirs: WorkDirs,
    ) -> None:
        """Serve one session; returns after a drain (or a stop), raises when the session breaks."""
        config = self.config
        stub = pb_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        register = await self._register(stub)
        if register is None:
            return
        info = self._session_info(register)
        # Before any invocation: the container may read its secrets on its first request.
        self.secrets.write(register.secrets.secrets_json)
        self.sessions += 1
        # The gateway's bound (the deployment's maxRequestConcurrency within our own flag) wins.
        concurrency = min(config.max_concurrency, register.max_concurrency or config.max_concurrency)
        if self.metrics is not None:
            self.metrics.sessions = self.sessions
        log.info(
            "registered session %s: function %s version %s, %d credits",
            info.session_id,
            register.function_id,
            register.version_id,
            concurrency,
        )
        metadata = (("cfgate-session-id", info.session_id), ("authorization", f"Bearer {config.token}"))
        call = stub.Work(metadata=metadata)
        outbox = Outbox()
        outbox.grant(concurrency)
        endpoint = config.inference
        runner = InvocationRunner(
            client=client,
            session=info,
            outbox=outbox,
            dirs=dirs,
            progress=progress,
            assets=assets,
            host_header=f"{endpoint.host}:{endpoint.port}",
            large_outputs=config.large_outputs,
            grpc=self._grpc,
            metrics=self.metrics,
        )
        if self.metrics is not None:
            self.metrics.in_flight = lambda: len(runner.flights)
        sender = asyncio.ensure_future(self._send_loop(call, outbox, info.heartbeat_interval))
        reader = asyncio.ensure_future(self._read_loop(call, runner, outbox))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sender, reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                if not (sender.done() or reader.done()):
                    await self._drain(call, outbox, runner, sender, reader)
                return
            raise SessionBroken(_why(sender, reader))
        finally:
            stopping.cancel()
            sender.cancel()
            reader.cancel()
            await runner.abandon()
            call.cancel()
            await asyncio.gather(sender, reader, stopping, return_exceptions=True)

    async def _drain(
        self,
        call: grpc.aio.StreamStreamCall[pb.WorkerMessage, pb.GatewayMessage],
        outbox: Outbox,
        runner: InvocationRunner,
        sender: asyncio.Future[None],
        reader: asyncio.Future[None],
    ) -> None:
        log.info("draining: %d invocation(s) in flight, grace %.0fs", len(runner.flights), self.config.grace_period)
        runner.draining = True
        outbox.set_draining()
        idle: asyncio.Future[Any] = asyncio.ensure_future(runner.wait_idle())
        forced: asyncio.Future[Any] = asyncio.ensure_future(self._force.wait())
        try:
            await asyncio.wait(
                {idle, forced, sender, reader}, timeout=self.config.grace_period, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            idle.cancel()
            forced.cancel()
        if sender.done() or reader.done():
            log.warning("the stream ended while draining")
            return
        if runner.flights:
            log.warning("grace period over: abandoning %d invocation(s)", len(runner.flights))
            await runner.abandon()
        outbox.close()
        await asyncio.wait({sender}, timeout=_CLOSE_WAIT)
        if sender.done() and not sender.cancelled() and sender.exception() is None:
            with contextlib.suppress(Exception):
                await call.done_writing()
            await asyncio.wait({reader}, timeout=_CLOSE_WAIT)
        log.info("drained")

    async def _send_loop(
        self,
        call: grpc.aio.StreamStreamCall[pb.WorkerMessage, pb.GatewayMessage],
        outbox: Outbox,
        interval: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while True:
            message = outbox.take()
            if message is None:
                if outbox.finished:
                    return
                remaining = last_sent + interval - loop.time()
                if remaining <= 0:
                    outbox.heartbeat()
                    continue
                try:
                    async with asyncio.timeout(remaining):
                        await outbox.wait()
                except TimeoutError:
                    outbox.heartbeat()
                continue
            await call.write(message)
            last_sent = loop.time()

    async def _read_loop(
        self,
        call: grpc.aio.StreamStreamCall[pb.WorkerMessage, pb.GatewayMessage],
        runner: InvocationRunner,
        outbox: Outbox,
    ) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            assert isinstance(message, pb.GatewayMessage)
            self._received = True
            for invocation in message.invocations:
                runner.start(invocation)
            for cancel in message.cancels:
                runner.cancel(cancel.request_id, "cancelled")
            for frames in message.grpc_requests:
                runner.grpc_requests(frames)
            if message.HasField("secrets"):
                self.secrets.write(message.secrets.secrets_json)
            if message.ping:
                outbox.heartbeat()
            if message.drain and not self._stop.is_set():
                log.info("the gateway asked this worker to drain")
                self._stop.set()


def _why(sender: asyncio.Future[None], reader: asyncio.Future[None]) -> str:
    for name, task in (("receiving", reader), ("sending", sender)):
        if task.done() and not task.cancelled():
            error = task.exception()
            if isinstance(error, grpc.aio.AioRpcError):
                return f"{name}: {error.code().name} {error.details()}"
            if error is not None:
                return f"{name}: {error!r}"
    if reader.done():
        return "the gateway ended the stream"
    return "the stream stopped"
