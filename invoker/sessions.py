"""A worker's Work stream as the gateway sees it: credits, in-flight invocations, the outbox.

The outbox is flushed greedily: whatever invocations and cancels are ready go out in one
``GatewayMessage`` (up to a byte budget), so batching grows with load and costs nothing idle.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from invoker.invocations import GRPC_STREAMING, Invocation, InvocationRequest, is_grpc
from protos.cfgate.worker.v1 import worker_pb2 as pb

MAX_BATCH_BYTES = 4 << 20  # keep one GatewayMessage well under the stream's message limit
MAX_BATCH_ITEMS = 256


@dataclass(frozen=True, slots=True)
class WorkerGrant:
    """What a worker's credential allows it to serve (decided by the gateway at Register)."""

    function_id: str
    version_id: str
    function_name: str
    nca_id: str
    inference_url: str
    inference_port: int
    metadata: dict[str, str] = field(default_factory=dict)
    # The deployment's maxRequestConcurrency for this worker (0: no bound from the deployment).
    max_request_concurrency: int = 0

    def concurrency(self, declared: int) -> int:
        """Invocations at once for a worker declaring ``declared``: the smaller of the two bounds."""
        declared = max(1, declared)
        return min(declared, self.max_request_concurrency) if self.max_request_concurrency > 0 else declared


def add_invocation(batch: pb.GatewayMessage, request: InvocationRequest, attempt: int) -> None:
    """Append ``request`` to ``batch`` in place (building it apart and copying it in costs twice)."""
    item = batch.invocations.add(
        request_id=request.request_id,
        method=request.method,
        path=request.path,
        body=request.body,
        deadline_ms=request.deadline_ms,
        attempt=attempt,
        compat=request.compat,
        subject=request.subject,
        nca_id=request.nca_id,
        poll_seconds=request.poll_seconds,
        enqueued_at_ms=request.enqueued_at_ms,
    )
    if is_grpc(request.method):
        item.grpc.streaming_requests = request.method == GRPC_STREAMING
    headers = item.headers
    for key, value in request.headers:
        headers.add(key=key, value=value)
    for asset_id, url, content_type in request.assets:
        item.assets.add(asset_id=asset_id, url=url, content_type=content_type)


class WorkerSession:
    def __init__(self, session_id: str, instance_id: str, grant: WorkerGrant, max_concurrency: int) -> None:
        self.session_id = session_id
        self.instance_id = instance_id
        self.grant = grant
        # Never more in flight than this, whatever credits the worker grants (an older worker
        # may grant its own flag's worth, ignoring the bound it was told at Register).
        self.max_concurrency = max_concurrency
        self.credits = 0
        self.inflight: dict[str, Invocation] = {}
        self.draining = False
        self.closed = False
        self.last_seen = time.monotonic()
        self._outbox: list[tuple[InvocationRequest, int]] = []
        self._cancels: list[pb.Cancel] = []
        self._grpc_requests: list[pb.GrpcRequestFrames] = []
        self._ping = False
        self._drain = False
        self._secrets: bytes | None = None
        self._wake = asyncio.Event()

    @property
    def version_id(self) -> str:
        return self.grant.version_id

    @property
    def accepting(self) -> bool:
        return self.free > 0 and not self.draining and not self.closed

    @property
    def free(self) -> int:
        """Invocations it may take now: its credits, within its concurrency bound."""
        return min(self.credits, self.max_concurrency - len(self.inflight))

    def assign(self, invocation: Invocation) -> None:
        self.credits -= 1
        self.inflight[invocation.request_id] = invocation
        invocation.session = self
        self._outbox.append((invocation.request, invocation.attempt))
        self._wake.set()

    def cancel(self, request_id: str, reason: str) -> None:
        self.inflight.pop(request_id, None)
        self._cancels.append(pb.Cancel(request_id=request_id, reason=reason))
        self._wake.set()

    def grpc_requests(self, request_id: str, data: bytes, half_close: bool) -> None:
        """More request messages of a streaming gRPC invocation in flight here."""
        self._grpc_requests.append(pb.GrpcRequestFrames(request_id=request_id, data=data, half_close=half_close))
        self._wake.set()

    def ping(self) -> None:
        self._ping = True
        self._wake.set()

    def drain(self) -> None:
        self.draining = True
        self._drain = True
        self._wake.set()

    @property
    def secrets_pending(self) -> bool:
        return self._secrets is not None

    @property
    def _has_news(self) -> bool:
        """Something to send: invocations, cancels, a ping or drain, gRPC frames, new secrets."""
        pending = self._outbox or self._cancels or self._ping or self._drain or self._grpc_requests
        return bool(pending) or self._secrets is not None

    def send_secrets(self, document: bytes) -> None:
        """Push the version's secrets (a JSON object) with the next message; a newer push replaces
        one not sent yet."""
        self._secrets = document
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next_message(self) -> pb.GatewayMessage | None:
        """The next batch to send; ``None`` once the session is closed and nothing is left."""
        while not self._has_news:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        message = pb.GatewayMessage(cancels=self._cancels, ping=self._ping, drain=self._drain)
        if self._secrets is not None:
            message.secrets.secrets_json = self._secrets
            self._secrets = None
        self._cancels, self._ping, self._drain = [], False, False
        size = 0
        taken = 0
        for request, attempt in self._outbox:
            add_invocation(message, request, attempt)
            size += len(request.body) + 256
            taken += 1
            if size > MAX_BATCH_BYTES or taken >= MAX_BATCH_ITEMS:
                break
        del self._outbox[:taken]
        if self._grpc_requests and not self._outbox:
            # Only once every invocation went out: the worker reads invocations first, and
            # frames for an invocation it has not seen yet would be lost.
            message.grpc_requests.extend(self._grpc_requests)
            self._grpc_requests = []
        return message
