"""Greedy batching of the worker's outbound items (no I/O)."""

from __future__ import annotations

from invoker.worker.outbox import MAX_CHUNK, Outbox
from protos.cfgate.worker.v1 import worker_pb2 as pb


def summary(message: pb.WorkerMessage) -> list[tuple[str, str]]:
    return (
        [("start", s.request_id) for s in message.starts]
        + [("chunk", c.request_id) for c in message.chunks]
        + [("progress", p.request_id) for p in message.progress]
        + [("end", e.request_id) for e in message.ends]
    )


def test_everything_ready_goes_in_one_message() -> None:
    outbox = Outbox()
    outbox.grant(4)
    for rid in ("a", "b", "c"):
        outbox.start(rid, 200, [("content-type", "text/plain")])
        outbox.chunk(rid, rid.encode())
        outbox.end(rid)
    message = outbox.take()
    assert message is not None
    assert [s.request_id for s in message.starts] == ["a", "b", "c"]
    assert [(c.request_id, c.data) for c in message.chunks] == [("a", b"a"), ("b", b"b"), ("c", b"c")]
    assert [e.request_id for e in message.ends] == ["a", "b", "c"]
    assert message.starts[0].headers[0].key == "content-type"
    assert message.credits == 4 + 3
    assert outbox.take() is None


def test_a_batch_is_split_rather_than_reordered() -> None:
    outbox = Outbox()
    outbox.start("a", 200, [])
    outbox.chunk("a", b"1")
    outbox.end("a")
    # A second chunk for "a" would be processed before the end if it joined this batch; it cannot
    # happen for one request, but progress after chunks can (and a start for another request is fine).
    outbox.progress("b", 10, b"{}")
    outbox.start("b", 200, [])
    outbox.chunk("b", b"2")
    outbox.end("b", credit=False)
    first = outbox.take()
    second = outbox.take()
    assert first is not None and second is not None
    assert summary(first) == [("start", "a"), ("chunk", "a"), ("progress", "b"), ("end", "a")]
    assert summary(second) == [("start", "b"), ("chunk", "b"), ("end", "b")]
    assert (first.credits, second.credits) == (1, 0)
    assert outbox.take() is None


def test_chunks_after_progress_of_the_same_request_wait_for_the_next_message() -> None:
    outbox = Outbox()
    outbox.progress("a", 50, b'{"p":1}')
    outbox.chunk("b", b"x")
    outbox.chunk("a", b"late")
    message = outbox.take()
    assert message is not None
    assert summary(message) == [("chunk", "b"), ("progress", "a")]
    rest = outbox.take()
    assert rest is not None and summary(rest) == [("chunk", "a")]


def test_batches_are_bounded_by_items_and_bytes() -> None:
    outbox = Outbox(max_items=3, max_bytes=1000)
    for i in range(5):
        outbox.end(f"r{i}")
    sizes = []
    while (message := outbox.take()) is not None:
        sizes.append(len(message.ends))
    assert sizes == [3, 2]

    outbox.chunk("big", b"x" * 600)
    outbox.chunk("big", b"y" * 600)
    outbox.chunk("big", b"z" * 10)
    first = outbox.take()
    second = outbox.take()
    assert first is not None and second is not None
    assert [len(c.data) for c in first.chunks] == [600, 600]
    assert [len(c.data) for c in second.chunks] == [10]


def test_large_chunks_are_split() -> None:
    outbox = Outbox(max_bytes=1 << 30)
    data = bytes(range(256)) * (MAX_CHUNK // 256 * 2 + 10)
    outbox.chunk("r", data)
    message = outbox.take()
    assert message is not None
    assert [len(c.data) for c in message.chunks] == [MAX_CHUNK, MAX_CHUNK, 2560]
    assert b"".join(c.data for c in message.chunks) == data


def test_flags_ride_on_the_next_message() -> None:
    outbox = Outbox()
    assert outbox.take() is None
    outbox.heartbeat()
    message = outbox.take()
    assert message is not None and message.heartbeat and not message.draining
    outbox.set_draining()
    outbox.end("r", credit=False)
    message = outbox.take()
    assert message is not None and message.draining and not message.heartbeat and message.credits == 0
    assert outbox.take() is None
    outbox.close()
    assert outbox.finished


def test_congestion_tracks_unsent_chunk_bytes() -> None:
    outbox = Outbox(high_water=1000, low_water=100)
    outbox.chunk("r", b"x" * 1500)
    assert outbox.congested
    assert outbox.take() is not None
    assert not outbox.congested
