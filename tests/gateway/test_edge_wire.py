"""Response heads on the wire: framing, and no response splitting through a relayed header."""

from __future__ import annotations

from gateway.edge.wire import chunk, response_head


def test_sized_head_keeps_alive_and_carries_the_defaults() -> None:
    head, chunked = response_head(
        200, [(b"content-type", b"text/plain"), (b"content-length", b"3")], [(b"date", b"D")], keep_alive=True,
        head_request=False,
    )  # fmt: skip
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\ndate: D\r\n\r\n"
    assert not chunked


def test_unsized_head_is_chunked_and_framing_headers_are_ours() -> None:
    headers = [(b"transfer-encoding", b"gzip"), (b"connection", b"upgrade"), (b"x-a", b"1")]
    head, chunked = response_head(200, headers, [], keep_alive=False, head_request=False)
    assert head == b"HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    assert chunked
    assert chunk(b"hello") == b"5\r\nhello\r\n"


def test_head_request_and_204_are_never_chunked() -> None:
    assert response_head(200, [], [], keep_alive=True, head_request=True) == (b"HTTP/1.1 200 OK\r\n\r\n", False)
    assert response_head(204, [], [], keep_alive=True, head_request=False)[1] is False


def test_header_with_cr_or_lf_is_dropped_not_split() -> None:
    headers = [(b"x-evil", b"a\r\nset-cookie: stolen=1"), (b"x-lf", b"a\nb"), (b"x-ok", b"1")]
    head, _ = response_head(502, headers, [], keep_alive=True, head_request=False)
    assert head == b"HTTP/1.1 502 Bad Gateway\r\nx-ok: 1\r\ntransfer-encoding: chunked\r\n\r\n"
    assert b"set-cookie" not in head
