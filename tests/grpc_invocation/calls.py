"""The checks every gRPC invocation test makes, over a real grpcio client (generic, bytes)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from tests.grpc_invocation.stack import GrpcFunction


def meta(key: str, function: GrpcFunction | str, **extra: str) -> tuple[tuple[str, str], ...]:
    fid = function if isinstance(function, str) else function.function_id
    pairs = [("authorization", f"Bearer {key}"), ("function-id", fid)]
    pairs += [(k.replace("_", "-"), v) for k, v in extra.items()]
    return tuple(pairs)


# Generic calls on bytes (no serializers): typed here once.
def unary_method(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    callable_: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    return callable_


def header(metadata: object, name: str) -> str | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == name:
            return str(value)
    return None


async def unary(
    channel: grpc.aio.Channel, method: str, body: bytes, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.UnaryUnaryCall[bytes, bytes]:
    call = unary_method(channel, method)(body, metadata=metadata)
    await call
    return call


async def status_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    except asyncio.CancelledError:
        if not call.cancelled():  # type: ignore[attr-defined]
            raise
        return grpc.StatusCode.CANCELLED  # the client's own cancel (grpc.aio raises it so)
    return grpc.StatusCode.OK


async def check_all_call_kinds(channel: grpc.aio.Channel, key: str, function: GrpcFunction) -> None:
    md = meta(key, function)
    call = await unary(channel, "/test.Echo/Unary", b"hi", md)
    assert await call == b"echo:hi"
    initial = await call.initial_metadata()
    assert header(initial, "x-container") == "initial"
    session = header(initial, "nvcf-reqid")
    assert session is not None and str(uuid.UUID(session)) == session
    assert header(await call.trailing_metadata(), "x-container-trailer") == "trailing"

    server_stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream("/test.Echo/ServerStream")
    streamed = server_stream(b"3", metadata=md)
    assert [m async for m in streamed] == [b"item-0", b"item-1", b"item-2"]
    assert header(await streamed.initial_metadata(), "nvcf-reqid") is not None

    async def three() -> AsyncIterator[bytes]:
        for part in (b"a", b"bb", b""):
            yield part

    client_stream: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary("/test.Echo/ClientStream")
    gathered = client_stream(three(), metadata=md)
    got = await gathered
    assert got == b"a+bb+", got

    # Interactive bidi: each answer arrives before the next request is written.
    bidi_method: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream("/test.Echo/Bidi")
    bidi = bidi_method(metadata=md)
    for word in (b"one", b"two", b"three"):
        await bidi.write(word)
        assert await asyncio.wait_for(bidi.read(), 10) == b"re:" + word
    await bidi.done_writing()
    assert await bidi.read() == grpc.aio.EOF
    assert await bidi.code() == grpc.StatusCode.OK


async def check_metadata_and_sessions(channel: grpc.aio.Channel, key: str, function: GrpcFunction) -> None:
    first = await unary(channel, "/test.Echo/Metadata", b"", meta(key, function, x_client="c1"))
    session = header(await first.initial_metadata(), "nvcf-reqid")
    seen = json.loads(await first)
    assert seen["x-client"] == "c1" and seen["nvcf-reqid"] == session
    assert "authorization" not in seen and seen["nvcf-function-id"] == function.function_id
    assert session is not None
    resumed = await unary(channel, "/test.Echo/Metadata", b"", meta(key, function, nvcf_reqid=session))
    assert header(await resumed.initial_metadata(), "nvcf-reqid") == session
    assert json.loads(await resumed)["nvcf-reqid"] == session
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await unary(channel, "/test.Echo/Unary", b"x", meta(key, function, nvcf_reqid=str(uuid.uuid4())))
    assert stale.value.code() == grpc.StatusCode.NOT_FOUND
    assert stale.value.details() == "no existing session found"


async def check_binary_metadata_and_rich_status(channel: grpc.aio.Channel, key: str, function: GrpcFunction) -> None:
    """``-bin`` metadata both ways and ``grpc-status-details-bin``, read as a grpc_status client does."""
    md: tuple[tuple[str, str | bytes], ...] = (*meta(key, function), ("x-client-bin", b"\x00\xff\x10client"))
    call = unary_method(channel, "/test.Echo/Binary")(b"req", metadata=md)
    assert await call == b"\x00\xff\x10client"
    assert header_bytes(await call.initial_metadata(), "x-initial-bin") == b"\x00\xffinitial"
    assert header_bytes(await call.trailing_metadata(), "x-trailer-bin") == b"\x00\xfereq"

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await unary(channel, "/test.Echo/Rich", b"too short", meta(key, function))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == "the name is bad"
    assert header_bytes(failed.value.trailing_metadata(), "x-trailer-bin") == b"\x00\x01rich"
    status = rpc_status.from_call(failed.value)  # type: ignore[arg-type]
    assert status is not None and status.code == code_pb2.INVALID_ARGUMENT and status.message == "the name is bad"
    (detail,) = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("name", "too short")]


async def check_long_client_stream(channel: grpc.aio.Channel, key: str, function: GrpcFunction) -> None:
    """8 MiB streamed to a slow reader: past the gateway's 1 MiB request window only as the
    container's reads come back (across processes too)."""
    piece = b"q" * (512 << 10)

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield piece

    drip: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary("/test.Echo/Drip")
    assert await drip(pieces(), metadata=meta(key, function), timeout=30) == b"%d" % (16 * len(piece))


def header_bytes(metadata: object, name: str) -> bytes | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == name:
            assert isinstance(value, bytes), (name, value)
            return value
    return None


async def check_cancel_and_deadline(channel: grpc.aio.Channel, key: str, function: GrpcFunction) -> None:
    marker = function.state / "cancelled"
    marker.unlink(missing_ok=True)
    call = unary_method(channel, "/test.Echo/Slow")(b"cancel-me", metadata=meta(key, function))
    await asyncio.sleep(1.0)  # queued, taken, and at the container by now
    call.cancel()
    assert await status_of(call) == grpc.StatusCode.CANCELLED
    await _wait_for(marker, "cancel-me")

    late = unary_method(channel, "/test.Echo/Slow")(b"deadline", metadata=meta(key, function), timeout=1.5)
    assert await status_of(late) == grpc.StatusCode.DEADLINE_EXCEEDED
    await _wait_for(marker, "deadline")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary(channel, "/test.Echo/Fail", b"nope", meta(key, function))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "the container refuses: nope"


async def _wait_for(marker: Path, content: str) -> None:
    for _ in range(200):
        if marker.exists() and marker.read_text() == content:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the container never saw the cancel of {content!r}")


async def check_auth_errors(
    channel: grpc.aio.Channel, key: str, function: GrpcFunction, *, no_scope_key: str, other_function_key: str
) -> None:
    cases = [
        ((("function-id", function.function_id),), grpc.StatusCode.UNAUTHENTICATED),
        (meta("nvapi-not-a-real-key", function), grpc.StatusCode.UNAUTHENTICATED),
        (meta(no_scope_key, function), grpc.StatusCode.PERMISSION_DENIED),
        (meta(other_function_key, function), grpc.StatusCode.PERMISSION_DENIED),
        (meta(key, str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        (meta(key, "not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT),
        (meta(key, function, function_version_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
    ]
    for metadata, expected in cases:
        call = unary_method(channel, "/test.Echo/Unary")(b"x", metadata=metadata)
        assert await status_of(call) == expected, metadata
