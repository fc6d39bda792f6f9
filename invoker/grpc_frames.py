"""gRPC message framing for messages that travel inside invocations and their answers.

A gRPC invocation's request messages (``Invocation.body``, ``GrpcRequestFrames.data``) and the
container's messages (``ResponseChunk.data``) are carried in the gRPC wire framing: a flag byte
(0: not compressed), a 4-byte big-endian length, the message bytes unchanged. Chunks may be split
or joined on the way (the worker's outbox cuts large data), so the reader reassembles.
"""

from __future__ import annotations

import struct

_HEAD = struct.Struct(">BI")
FRAME_HEAD = _HEAD.size  # bytes of framing before each message


class FrameError(ValueError):
    """The data is not a sequence of gRPC frames."""


def frame(message: bytes) -> bytes:
    return _HEAD.pack(0, len(message)) + message


class FrameReader:
    """Whole messages out of framed data fed in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        offset = 0
        while len(buffer) - offset >= _HEAD.size:
            flag, size = _HEAD.unpack_from(buffer, offset)
            if flag != 0:
                raise FrameError("compressed gRPC frames are not relayed")
            end = offset + _HEAD.size + size
            if end > len(buffer):
                break
            messages.append(bytes(buffer[offset + _HEAD.size : end]))
            offset = end
        del buffer[:offset]
        return messages

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)
