"""Unauthenticated input never gets a 500 (issue 12 item 7), against a real ``cfgate serve`` process.

Tokens that fail to verify are 401 problems on every host and UNAUTHENTICATED on the worker
endpoint; malformed signed-URL expiries are 403; a malformed ``NVCF-POLL-SECONDS`` is 400; and
the log holds no traceback for any of it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.settings import DEFAULT_ADMIN_CLIENT_ID, DEFAULT_ISSUER
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.support.serve_process import ServeProcess, serve_process

FID = str(uuid.uuid4())
# (Host, method, path) of an endpoint behind a bearer on every host the gateway serves.
PROTECTED = [
    ("api.localhost", "GET", "/v2/nvcf/functions"),
    ("api-keys.localhost", "GET", "/v1/keys"),
    ("invocation.localhost", "POST", f"/v2/nvcf/pexec/functions/{FID}"),
    ("invocation.localhost", "GET", f"/v2/nvcf/pexec/status/{uuid.uuid4()}"),
    (f"{FID}.invocation.localhost", "POST", "/generate"),
    ("sis.localhost", "GET", "/v1/accounts/nvcf-default/clusters"),
    ("tasks.localhost", "GET", "/v1/nvct/tasks"),
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_process(tmp_path_factory.mktemp("hostile")) as served:
        yield served


@pytest.fixture(scope="module")
def admin_token(gateway: ServeProcess) -> str:
    return gateway.admin_token()


@pytest.fixture(scope="module")
def invoke_key(gateway: ServeProcess, admin_token: str) -> str:
    response = httpx.post(
        gateway.base + "/v1/keys",
        json=key_body(),
        headers={"Host": "api-keys.localhost", "Authorization": f"Bearer {admin_token}", **KEY_HEADERS},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": DEFAULT_ISSUER,
        "sub": DEFAULT_ADMIN_CLIENT_ID,
        "scopes": ["list_functions", "invoke_function", "cluster-management"],
        "iat": now,
        "exp": now + 600,
        **extra,
    }


def rs256_with_our_kid(admin_token: str) -> str:
    """An RS256 token naming the kid of the gateway's own (EC) signing key."""
    kid = jwt.get_unverified_header(admin_token)["kid"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(), key, algorithm="RS256", headers={"kid": kid})


def _request(gateway: ServeProcess, host: str, method: str, path: str, headers: dict[str, Any]) -> httpx.Response:
    return httpx.request(method, gateway.base + path, headers={"Host": host, **headers}, content=b"{}", timeout=30)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


_log_start: dict[str, int] = {}


@pytest.fixture(autouse=True)
def log_start(gateway: ServeProcess) -> None:
    """Where this test's part of the shared process's log begins."""
    _log_start["offset"] = gateway.log_size()


def assert_no_traceback(gateway: ServeProcess) -> None:
    assert "Traceback" not in gateway.log(_log_start["offset"])


@pytest.mark.parametrize(("host", "method", "path"), PROTECTED)
def test_rs256_token_with_our_kid_is_401_on_every_host(
    gateway: ServeProcess, admin_token: str, host: str, method: str, path: str
) -> None:
    forged = rs256_with_our_kid(admin_token)
    response = _request(gateway, host, method, path, {"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_no_traceback(gateway)


def test_rs256_token_with_our_kid_is_unauthenticated_on_register(gateway: ServeProcess, admin_token: str) -> None:
    forged = rs256_with_our_kid(admin_token)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as failure:
            stub.Register(pb.RegisterRequest(credential=forged, function_id=FID, max_concurrency=1), timeout=30)
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert_no_traceback(gateway)


@pytest.mark.parametrize(
    ("host", "method", "path"),
    [
        ("invocation.localhost", "GET", f"/v2/nvcf/pexec/results/{uuid.uuid4()}"),
        ("api.localhost", "GET", f"/v2/nvcf/pexec/results/{uuid.uuid4()}"),
        ("api.localhost", "GET", f"/v2/nvcf/assets/{uuid.uuid4()}/blob"),
        ("api.localhost", "PUT", f"/v2/nvcf/assets/{uuid.uuid4()}/blob"),
    ],
)
@pytest.mark.parametrize("expires", ["%C2%B2", "%D9%A3", "1%C2%B2", "99999999999999999999", ""])
def test_malformed_expiry_of_signed_urls_is_403(
    gateway: ServeProcess, host: str, method: str, path: str, expires: str
) -> None:
    response = _request(gateway, host, method, f"{path}?expires={expires}&signature=00", {})
    assert_problem(response, 403)
    assert_no_traceback(gateway)


@pytest.mark.parametrize("value", ["²".encode(), "٣".encode(), b"\xb2", b"1\xb2", b"10000000000000000000000"])
@pytest.mark.parametrize("path", [f"/v2/nvcf/pexec/functions/{FID}", f"/v2/nvcf/pexec/status/{uuid.uuid4()}"])
def test_non_ascii_poll_seconds_is_400(gateway: ServeProcess, invoke_key: str, path: str, value: bytes) -> None:
    method = "POST" if "/functions/" in path else "GET"
    headers = {"Authorization": f"Bearer {invoke_key}", "NVCF-POLL-SECONDS": value}
    response = _request(gateway, "invocation.localhost", method, path, headers)
    assert_problem(response, 400)
    assert_no_traceback(gateway)


# Header values h11 lets through: visible ASCII and obs-text (0x80-0xff), spaces inside.
_FIELD_BYTES = st.binary(min_size=1, max_size=40).map(
    lambda raw: bytes(b if 0x21 <= b <= 0xFF and b != 0x7F else 0x41 for b in raw)
)
_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.integers(), max_size=2)
)


@st.composite
def _forged_jwts(draw: st.DrawFn) -> bytes:
    header: dict[str, Any] = {
        "alg": draw(st.sampled_from(["RS256", "ES256", "ES384", "HS256", "PS256", "EdDSA", "none", "", 7])),
        "kid": draw(st.one_of(st.just("<ours>"), _JSON_VALUES)),
    }
    if draw(st.booleans()):
        header["typ"] = draw(_JSON_VALUES)
    payload = _claims(**draw(st.dictionaries(st.sampled_from(["iss", "sub", "exp", "iat", "nbf"]), _JSON_VALUES)))
    signature = draw(st.binary(max_size=80))
    parts = [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)]
    if draw(st.booleans()):
        parts[draw(st.integers(0, 2))] = draw(_FIELD_BYTES).decode("latin-1")
    return ".".join(parts).encode("latin-1")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(_forged_jwts(), _FIELD_BYTES), host_index=st.integers(0, len(PROTECTED) - 1))
def test_fuzzed_bearers_are_never_a_server_error(
    gateway: ServeProcess, admin_token: str, token: bytes, host_index: int
) -> None:
    kid = jwt.get_unverified_header(admin_token)["kid"].encode()
    host, method, path = PROTECTED[host_index]
    response = _request(gateway, host, method, path, {"Authorization": b"Bearer " + token.replace(b"<ours>", kid)})
    assert response.status_code in (400, 401), response.text
    assert_no_traceback(gateway)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_FIELD_BYTES)
def test_fuzzed_poll_seconds_are_never_a_server_error(gateway: ServeProcess, invoke_key: str, value: bytes) -> None:
    path = f"/v2/nvcf/pexec/status/{uuid.uuid4()}"
    headers = {"Authorization": f"Bearer {invoke_key}", "NVCF-POLL-SECONDS": value}
    response = _request(gateway, "invocation.localhost", "GET", path, headers)
    # 404: a well-formed window for a request id nobody holds.
    assert response.status_code in (400, 404), response.text
    assert_no_traceback(gateway)


_FUZZED_HEADERS = [
    "host",
    "authorization",
    "function-id",
    "function-version-id",
    "nvcf-poll-seconds",
    "nvcf-input-asset-references",
    "content-type",
    "accept",
    "cfgate-bootstrap-secret",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(PROTECTED + [("api-keys.localhost", "POST", "/v1/admin/keys")]),
    name=st.sampled_from(_FUZZED_HEADERS),
    value=_FIELD_BYTES,
    bearer=st.booleans(),
)
def test_fuzzed_header_values_are_never_a_server_error(
    gateway: ServeProcess, invoke_key: str, target: tuple[str, str, str], name: str, value: bytes, bearer: bool
) -> None:
    host, method, path = target
    headers: dict[str, Any] = {"host": host}
    if bearer:
        headers["authorization"] = f"Bearer {invoke_key}"
    headers[name] = value  # replaces the Host or the bearer when those are the fuzzed ones
    response = httpx.request(method, gateway.base + path, headers=headers, content=b"{}", timeout=30)
    assert response.status_code < 500, response.text
    assert_no_traceback(gateway)
