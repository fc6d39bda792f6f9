"""gRPC framing of messages inside invocations: whole messages back however the data is cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoker.grpc_frames import FrameError, FrameReader, frame
from invoker.grpc_metadata import from_headers, to_headers


@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_messages_survive_any_split_or_join(messages: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(m) for m in messages)
    reader = FrameReader()
    out: list[bytes] = []
    offset = 0
    for size in cuts * (len(data) // max(1, sum(cuts)) + 1):
        out += reader.feed(data[offset : offset + size])
        offset += size
        if offset >= len(data):
            break
    out += reader.feed(data[offset:])
    assert out == messages and reader.pending == 0


def test_a_compressed_frame_is_refused_and_a_partial_one_held_back() -> None:
    reader = FrameReader()
    assert reader.feed(frame(b"abc")[:6]) == [] and reader.pending == 6
    assert reader.feed(b"bc") == [b"abc"]
    with pytest.raises(FrameError):
        FrameReader().feed(b"\x01\x00\x00\x00\x01x")


_KEYS = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)


@given(st.lists(st.one_of(st.tuples(_KEYS, st.text("abc xyz", max_size=10)), st.tuples(_KEYS, st.binary(max_size=40)))))
def test_binary_metadata_crosses_the_text_headers_unchanged(pairs: list[tuple[str, str | bytes]]) -> None:
    """``-bin`` values as bytes survive the worker stream's text headers; bytes on a text key and
    text on a binary key (invalid in gRPC) are dropped."""
    metadata = [(k + "-bin", v) if isinstance(v, bytes) else (k, v) for k, v in pairs]
    metadata += [("x-wrong-bin", "text"), ("x-wrong", b"bytes")]
    assert from_headers(to_headers(metadata)) == metadata[:-2]
    assert from_headers([("x-bad-bin", "not base64!")]) == []
