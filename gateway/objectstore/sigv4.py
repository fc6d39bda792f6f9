"""AWS Signature Version 4 for S3 requests (header-signed, payload unsigned).

Small on purpose: the gateway needs five S3 calls, and boto3/aiobotocore would add a large
dependency tree and a sync (or aiohttp) transport next to the httpx the gateway already uses.
The tests check this signer against botocore's for the same request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(params: Mapping[str, str]) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign_headers(
    method: str,
    host: str,
    path: str,
    params: Mapping[str, str],
    *,
    region: str,
    access_key: str,
    secret_key: str,
    payload_hash: str = UNSIGNED_PAYLOAD,
    now: datetime | None = None,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send (``host`` excluded: the client sets it from the URL) for a signed request.

    ``path`` is the already URI-encoded path (S3 encodes each key segment once)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query(params),
            "".join(f"{name}:{headers[name].strip()}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {"authorization": authorization, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
