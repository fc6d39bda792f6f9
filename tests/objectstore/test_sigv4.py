"""The SigV4 signer agrees with botocore's (the reference implementation) byte for byte."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import botocore.auth  # type: ignore[import-untyped]
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from gateway.objectstore.sigv4 import sign_headers

MOMENT = datetime(2026, 12, 4, 20, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("PUT", "/bucket/results/0b7c.zip", {}),
        ("GET", "/bucket/assets/acct/a%20b~c", {}),
        ("GET", "/bucket", {"list-type": "2", "prefix": "assets/acct one/", "continuation-token": "a+b/c="}),
    ],
)
def test_signature_matches_botocore(
    method: str, path: str, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over plain http botocore always hashes the payload (here: empty), so sign that hash too.
    empty = hashlib.sha256(b"").hexdigest()
    mine = sign_headers(
        method, "127.0.0.1:9000", path, params, region="eu-west-1", access_key="AK", secret_key="SK",
        payload_hash=empty, now=MOMENT,
    )  # fmt: skip
    request = AWSRequest(method=method, url=f"http://127.0.0.1:9000{path}", params=params or None)
    # botocore reads its clock through this function; pin it to the moment signed above.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: MOMENT.replace(tzinfo=None))
    S3SigV4Auth(Credentials("AK", "SK"), "s3", "eu-west-1").add_auth(request)
    assert mine["authorization"] == request.headers["Authorization"]
    assert mine["x-amz-date"] == request.headers["X-Amz-Date"]
    assert mine["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]
