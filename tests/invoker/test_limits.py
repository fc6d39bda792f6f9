"""The gateway's body limit and the worker's gRPC message limit agree (a 64 MiB body used to
build a message 339 bytes over the worker's receive limit)."""

from __future__ import annotations

from invoker.invocations import InvocationRequest
from invoker.limits import MAX_INVOCATION_BODY_BYTES, WORKER_MESSAGE_BYTES, invocation_message_bytes
from invoker.sessions import add_invocation
from invoker.worker.agent import _MESSAGE_LIMIT
from protos.cfgate.worker.v1 import worker_pb2 as pb


def request(body: bytes, headers: int = 0, assets: int = 0) -> InvocationRequest:
    return InvocationRequest(
        request_id="6a0e6d8a-4d43-4f4b-9b35-9b0f6e0e7a11",
        function_id="f",
        version_id="v",
        method="POST",
        path="/v2/nvcf/pexec/functions/6a0e6d8a-4d43-4f4b-9b35-9b0f6e0e7a11?" + "q" * 2000,
        headers=[(f"X-Header-{i}", "v" * 300) for i in range(headers)],
        body=body,
        compat=True,
        deadline_ms=1 << 62,
        subject="someone@example.com" * 10,
        nca_id="nvcf-default",
        poll_seconds=3600,
        enqueued_at_ms=1 << 62,
        assets=[
            (f"asset-{i}", "http://127.0.0.1:8080/v2/nvcf/assets/" + "a" * 80, "text/plain") for i in range(assets)
        ],
    )


def encoded(item: InvocationRequest) -> int:
    batch = pb.GatewayMessage()
    add_invocation(batch, item, attempt=3)
    return batch.ByteSize()


def test_the_estimate_bounds_the_real_message() -> None:
    for item in (request(b""), request(b"x" * 1000, headers=100), request(b"y" * 70_000, headers=3, assets=40)):
        assert encoded(item) <= invocation_message_bytes(item)


def test_the_largest_body_fits_the_worker_limit_with_a_full_head() -> None:
    assert _MESSAGE_LIMIT == WORKER_MESSAGE_BYTES  # the worker agent's receive limit
    largest = request(b"z" * MAX_INVOCATION_BODY_BYTES, headers=100)  # 100 headers of 300 bytes: ~32 KiB
    assert invocation_message_bytes(largest) <= WORKER_MESSAGE_BYTES
    assert encoded(largest) <= WORKER_MESSAGE_BYTES
    # The old limit (a 64 MiB body) could not fit, whatever the head.
    assert encoded(request(b"z" * (64 << 20))) > WORKER_MESSAGE_BYTES
