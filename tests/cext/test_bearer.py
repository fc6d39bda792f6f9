"""extract_bearer: the Authorization header value, against both twins."""

from __future__ import annotations

from types import ModuleType

import pytest

from cext import hotpath_py as P

MISSING = (P.BEARER_MISSING, None)
MALFORMED = (P.BEARER_MALFORMED, None)
API_KEY = b"nvapi-" + b"Ab9_-." * 11 + b"xy"


@pytest.mark.parametrize("value", [None, b"", b" ", b"   ", b"\t", b" \t \t "])
def test_missing(hp: ModuleType, value: bytes | None) -> None:
    assert hp.extract_bearer(value) == MISSING


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer abc", b"abc"),
        (b"BEARER abc", b"abc"),
        (b"BeArEr abc", b"abc"),
        (b"Bearer    abc", b"abc"),
        (b"  Bearer abc  ", b"abc"),
        (b"\tBearer abc\t", b"abc"),
        (b" \t Bearer  abc \t ", b"abc"),
        (b"Bearer " + API_KEY, API_KEY),
        (b"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
        (b"Bearer " + bytes(range(0x21, 0x7F)), bytes(range(0x21, 0x7F))),
        (b"Bearer x", b"x"),
        (b"Bearer Bearer", b"Bearer"),
        (b"Bearer " + b"a" * 8192, b"a" * 8192),
    ],
)
def test_ok(hp: ModuleType, value: bytes, token: bytes) -> None:
    assert hp.extract_bearer(value) == (P.BEARER_OK, token)


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer",
        b"Bearer ",
        b"Bearer    ",
        b"bearer\t",
        b"Bearerabc",
        b"Bearer\tabc",
        b"Bearer\xa0abc",
        b"Basic dXNlcjpwYXNz",
        b"Token abc",
        b"Bearer: abc",
        b"Bear abc",
        b"Bearers abc",
        b"abc",
        b"nvapi-xyz",
        b"Bearer abc def",
        b"Bearer abc\tdef",
        b"Bearer abc\x00",
        b"Bearer \x00abc",
        b"Bearer ab\x7fc",
        b"Bearer ab\x1fc",
        b"Bearer \xffabc",
        b"Bearer abc\xc3\xa9",
        b"Bearer abc\r\n",
        b"Bearer abc\n",
        b"\x0bBearer abc",
        b"Bearer " + b"a" * 8193,
        b"Bearer abc, Bearer def",
    ],
)
def test_malformed(hp: ModuleType, value: bytes) -> None:
    assert hp.extract_bearer(value) == MALFORMED


def test_token_is_a_copy_of_the_bytes(hp: ModuleType) -> None:
    status, token = hp.extract_bearer(b"Bearer " + API_KEY + b"  ")
    assert status == P.BEARER_OK
    assert type(token) is bytes and token == API_KEY


@pytest.mark.parametrize("value", ["Bearer abc", bytearray(b"Bearer abc"), 1])
def test_rejects_non_bytes(hp: ModuleType, value: object) -> None:
    with pytest.raises(TypeError):
        hp.extract_bearer(value)
