"""Malformed numeric headers on the control plane are 400 problems, never 500 (issue 12 item 7),
in process: the ASGI app sees header bytes the HTTP parser of ``cfgate serve`` would refuse first."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("length", [b"\xb2", b"1\xb2", b"\xd9\xa3"])
async def test_non_ascii_content_length_is_400(api: httpx.AsyncClient, admin: dict[str, str], length: bytes) -> None:
    headers = {b"authorization": admin["Authorization"].encode(), b"content-length": length}
    response = await api.post("/v2/nvcf/functions", content=b"{}", headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
