"""gRPC framing of messages inside invocations: whole messages back however the data is cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoker.grpc_frames import FrameError, FrameReader, frame


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
