"""HotPath.decide and Decision, against both twins."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from cext import hotpath_py as P

FID = "12345678-9abc-4def-8123-456789abcdef"
VID = "0fedcba9-8765-4321-8fed-cba987654321"
RID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
KEY = b"nvapi-" + b"k" * 64
JWT = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
LISTER = b"nvapi-lister-" + b"l" * 40
SERVICES = {"api": P.SERVICE_API, "invocation": P.SERVICE_INVOCATION, "api-keys": P.SERVICE_API_KEYS}
PEXEC_VERSION = f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}".encode()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


@dataclass
class Setup:
    hot: Any
    cache: Any
    table: Any
    key: Any
    jwt: Any
    lister: Any


def setup(hp: ModuleType, clock: Any = None, domain: str = "localhost") -> Setup:
    table = hp.AuthorityTable(["invoke_function", "apikey:invoke_function", "apikey:list_functions"])
    cache = hp.CredentialCache()
    key = hp.Principal(
        hp.KIND_API_KEY,
        "user-1",
        "nca-1",
        frozenset({"apikey:invoke_function"}),
        table.mask(["apikey:invoke_function"]),
        key_id="key-1",
        expires_at=5000.0,
    )
    jwt = hp.Principal(
        hp.KIND_JWT,
        "user-2",
        "nca-2",
        frozenset({"invoke_function"}),
        table.mask(["invoke_function"]),
    )
    lister = hp.Principal(
        hp.KIND_API_KEY,
        "user-3",
        "nca-3",
        frozenset({"apikey:list_functions"}),
        table.mask(["apikey:list_functions"]),
        key_id="key-3",
    )
    cache.put(KEY, key)
    cache.put(JWT, jwt)
    cache.put(LISTER, lister)
    invoke = table.any_of("invoke_function", "apikey:invoke_function")
    classifier = hp.HostClassifier(domain, SERVICES)
    clocks = () if clock is None else (clock,)
    hot = hp.HotPath(classifier, cache, invoke, *clocks)
    return Setup(hot, cache, table, key, jwt, lister)


def fields(decision: Any) -> tuple[Any, ...]:
    return (
        decision.code,
        decision.service,
        decision.route,
        decision.function_id,
        decision.version_id,
        decision.request_id,
        decision.principal,
        decision.token,
    )


def test_ok_pexec_with_version(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost:8080", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert fields(d) == (
        P.DECIDE_OK,
        P.SERVICE_INVOCATION,
        P.ROUTE_PEXEC_VERSION,
        FID,
        VID,
        None,
        s.key,
        KEY,
    )
    assert d.principal is s.key


@pytest.mark.parametrize(
    ("method", "path", "route", "fid", "vid", "rid"),
    [
        (b"POST", f"/v2/nvcf/pexec/functions/{FID.upper()}", P.ROUTE_PEXEC, FID, None, None),
        (b"POST", f"/v2/nvcf/exec/functions/{FID}/", P.ROUTE_EXEC, FID, None, None),
        (b"POST", f"/v2/nvcf/exec/functions/{FID}/versions/{VID}?x=1", P.ROUTE_EXEC_VERSION, FID, VID, None),
        (b"GET", f"/v2/nvcf/pexec/status/{RID}", P.ROUTE_PEXEC_STATUS, None, None, RID),
        (b"GET", f"/v2/nvcf/exec/status/{RID.upper()}", P.ROUTE_EXEC_STATUS, None, None, RID),
    ],
)
def test_ok_routes(
    hp: ModuleType, method: bytes, path: str, route: int, fid: str | None, vid: str | None, rid: str | None
) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", method, path.encode(), b"bearer  " + JWT)
    assert fields(d) == (P.DECIDE_OK, P.SERVICE_INVOCATION, route, fid, vid, rid, s.jwt, JWT)


def test_ok_on_the_api_host(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"api.10.0.0.5:8080", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert fields(d) == (P.DECIDE_OK, P.SERVICE_API, P.ROUTE_PEXEC_VERSION, FID, VID, None, s.key, KEY)


@pytest.mark.parametrize(
    ("host", "fid", "vid"),
    [
        (f"{FID}.invocation.localhost:8080", FID, None),
        (f"{VID}.{FID.upper()}.invocation.10.0.0.5", FID, VID),
    ],
)
def test_ok_direct_invocation(hp: ModuleType, host: str, fid: str, vid: str | None) -> None:
    s = setup(hp, FakeClock())
    for method, path in [(b"POST", b"/v1/chat/completions"), (b"GET", b"/health"), (b"PATCH", b"")]:
        d = s.hot.decide(host.encode(), method, path, b"Bearer " + KEY)
        assert fields(d) == (P.DECIDE_OK, P.SERVICE_FUNCTION, P.ROUTE_NONE, fid, vid, None, s.key, KEY)


def test_direct_invocation_ignores_the_path(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    path = f"/v2/nvcf/pexec/functions/{VID}".encode()  # not used: the function comes from the host
    d = s.hot.decide(f"{FID}.invocation.localhost".encode(), b"POST", path, b"Bearer " + KEY)
    assert (d.code, d.route, d.function_id, d.version_id) == (P.DECIDE_OK, P.ROUTE_NONE, FID, None)


UNKNOWN_HOSTS = [b"", b"localhost", b"api", b"www.localhost", b"[::1]:8080", b"tasks.localhost"]


@pytest.mark.parametrize("host", UNKNOWN_HOSTS)
def test_unknown_host(hp: ModuleType, host: bytes) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(host, b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert fields(d) == (P.DECIDE_UNKNOWN_HOST, P.SERVICE_UNKNOWN, P.ROUTE_NONE, None, None, None, None, None)


@pytest.mark.parametrize(
    ("host", "method", "path", "service"),
    [
        (b"invocation.localhost", b"GET", b"/v2/nvcf/functions", P.SERVICE_INVOCATION),
        (b"invocation.localhost", b"GET", b"/health", P.SERVICE_INVOCATION),
        (b"invocation.localhost", b"GET", PEXEC_VERSION, P.SERVICE_INVOCATION),
        (b"api.localhost", b"POST", b"/v2/nvcf/functions", P.SERVICE_API),
        (b"api.localhost", b"GET", b"/v2/nvcf/pexec/status", P.SERVICE_API),
        (b"api-keys.localhost", b"POST", PEXEC_VERSION, P.SERVICE_API_KEYS),
        (b"api-keys.10.0.0.5", b"GET", b"/v1/keys", P.SERVICE_API_KEYS),
    ],
)
def test_not_hot(hp: ModuleType, host: bytes, method: bytes, path: bytes, service: int) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(host, method, path, b"Bearer " + KEY)
    assert fields(d) == (P.DECIDE_NOT_HOT, service, P.ROUTE_NONE, None, None, None, None, None)


def test_bad_id(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", b"POST", b"/v2/nvcf/pexec/functions/latest", b"Bearer " + KEY)
    assert fields(d) == (P.DECIDE_BAD_ID, P.SERVICE_INVOCATION, P.ROUTE_BAD_ID, None, None, None, None, None)
    d = s.hot.decide(b"api.localhost", b"GET", b"/v2/nvcf/exec/status/123", None)
    assert (d.code, d.service, d.route) == (P.DECIDE_BAD_ID, P.SERVICE_API, P.ROUTE_BAD_ID)


@pytest.mark.parametrize("authorization", [None, b"", b"   "])
def test_no_bearer(hp: ModuleType, authorization: bytes | None) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, authorization)
    assert fields(d) == (
        P.DECIDE_NO_BEARER,
        P.SERVICE_INVOCATION,
        P.ROUTE_PEXEC_VERSION,
        FID,
        VID,
        None,
        None,
        None,
    )
    d = s.hot.decide(f"{FID}.invocation.localhost".encode(), b"GET", b"/", authorization)
    assert fields(d) == (P.DECIDE_NO_BEARER, P.SERVICE_FUNCTION, P.ROUTE_NONE, FID, None, None, None, None)


@pytest.mark.parametrize("authorization", [b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer a b", b"Bearer \x01"])
def test_bad_bearer(hp: ModuleType, authorization: bytes) -> None:
    s = setup(hp, FakeClock())
    path = f"/v2/nvcf/pexec/status/{RID}".encode()
    d = s.hot.decide(b"invocation.localhost", b"GET", path, authorization)
    assert fields(d) == (
        P.DECIDE_BAD_BEARER,
        P.SERVICE_INVOCATION,
        P.ROUTE_PEXEC_STATUS,
        None,
        None,
        RID,
        None,
        None,
    )


def test_cache_miss_then_slow_path_then_ok(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    unknown = b"nvapi-not-cached-yet"
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + unknown + b" ")
    assert fields(d) == (
        P.DECIDE_CACHE_MISS,
        P.SERVICE_INVOCATION,
        P.ROUTE_PEXEC_VERSION,
        FID,
        VID,
        None,
        None,
        unknown,
    )
    # the caller verifies d.token on the slow path, caches it and asks again
    s.cache.put(d.token, s.key)
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + unknown)
    assert (d.code, d.principal, d.token) == (P.DECIDE_OK, s.key, unknown)


def test_expired_entry_is_a_cache_miss(hp: ModuleType) -> None:
    clock = FakeClock(4999.0)
    s = setup(hp, clock)
    assert s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY).code == P.DECIDE_OK
    clock.now = 5000.0
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert (d.code, d.principal, d.token) == (P.DECIDE_CACHE_MISS, None, KEY)
    assert len(s.cache) == 2
    clock.now = 0.0
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert d.code == P.DECIDE_CACHE_MISS


def test_custom_clock_is_called_once_per_lookup(hp: ModuleType) -> None:
    clock = FakeClock()
    s = setup(hp, clock)
    s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer nope")
    assert clock.calls == 2
    s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, None)
    s.hot.decide(b"localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert clock.calls == 2
    assert s.hot.clock is clock


def test_default_clock_is_wall_time(hp: ModuleType) -> None:
    s = setup(hp)
    assert s.hot.clock is time.time
    now = time.time()
    s.cache.put(b"fresh", hp.Principal(hp.KIND_JWT, "u", "n", frozenset(), 1, expires_at=now + 3600))
    s.cache.put(b"stale", hp.Principal(hp.KIND_JWT, "u", "n", frozenset(), 1, expires_at=now - 1))
    fresh = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer fresh")
    stale = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer stale")
    assert (fresh.code, stale.code) == (P.DECIDE_OK, P.DECIDE_CACHE_MISS)
    # the API key in the setup expired in 1970
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert d.code == P.DECIDE_CACHE_MISS


def test_forbidden(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + LISTER)
    assert fields(d) == (
        P.DECIDE_FORBIDDEN,
        P.SERVICE_INVOCATION,
        P.ROUTE_PEXEC_VERSION,
        FID,
        VID,
        None,
        s.lister,
        LISTER,
    )


def test_zero_invoke_mask_forbids_everyone(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    hot = hp.HotPath(s.hot.classifier, s.cache, 0, FakeClock())
    assert hot.invoke_mask == 0
    d = hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + JWT)
    assert d.code == P.DECIDE_FORBIDDEN


def test_revocation_is_seen_by_decide(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    assert s.cache.revoke_key("key-1") == 1
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert d.code == P.DECIDE_CACHE_MISS


def test_resource_rule_is_left_to_the_caller(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert d.code == P.DECIDE_OK
    assert d.principal.allows_function(d.function_id, d.version_id, "nca-other", False) is False


def test_hot_path_attributes_and_validation(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    assert s.hot.cache is s.cache
    assert s.hot.invoke_mask == 3
    with pytest.raises(TypeError):
        hp.HotPath(None, s.cache, 1)
    with pytest.raises(TypeError):
        hp.HotPath(s.hot.classifier, None, 1)
    with pytest.raises(TypeError):
        hp.HotPath(s.hot.classifier, s.cache, 1, clock=5)
    with pytest.raises(ValueError):
        hp.HotPath(s.hot.classifier, s.cache, -1)
    with pytest.raises(ValueError):
        hp.HotPath(s.hot.classifier, s.cache, 1 << 64)
    with pytest.raises(TypeError):
        hp.HotPath(s.hot.classifier, s.cache, "1")


def test_decide_type_errors(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    with pytest.raises(TypeError):
        s.hot.decide("invocation.localhost", b"POST", PEXEC_VERSION, None)
    with pytest.raises(TypeError):
        s.hot.decide(b"invocation.localhost", "POST", PEXEC_VERSION, None)
    with pytest.raises(TypeError):
        s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION.decode(), None)
    with pytest.raises(TypeError):
        s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, "Bearer x")


def test_decision_object(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    d = s.hot.decide(b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    assert KEY.decode() not in repr(d)  # never leak the credential
    assert "code=0" in repr(d)
    for name in ("code", "service", "route", "function_id", "version_id", "request_id", "principal", "token"):
        with pytest.raises(AttributeError):
            setattr(d, name, None)
    made = hp.Decision(P.DECIDE_CACHE_MISS, P.SERVICE_API, P.ROUTE_PEXEC, FID, None, None, None, b"t")
    assert fields(made) == (P.DECIDE_CACHE_MISS, P.SERVICE_API, P.ROUTE_PEXEC, FID, None, None, None, b"t")
    assert fields(hp.Decision(P.DECIDE_NOT_HOT)) == (P.DECIDE_NOT_HOT, 0, 0, None, None, None, None, None)


class _Bytes(bytes):
    """A bytes subclass, as some servers hand out header values."""


def test_bytes_subclasses_are_accepted(hp: ModuleType) -> None:
    s = setup(hp, FakeClock())
    request = (b"invocation.localhost", b"POST", PEXEC_VERSION, b"Bearer " + KEY)
    host, method, path, auth = (_Bytes(value) for value in request)
    d = s.hot.decide(host, method, path, auth)
    assert (d.code, d.principal, d.token, type(d.token)) == (P.DECIDE_OK, s.key, KEY, bytes)
    assert hp.extract_bearer(_Bytes(b"Bearer x")) == (P.BEARER_OK, b"x")
    assert hp.match_invocation_path(_Bytes(b"GET"), _Bytes(b"/")) == (P.ROUTE_NONE, None, None)
    classifier = hp.HostClassifier("localhost", SERVICES)
    assert classifier.classify(_Bytes(b"api.localhost")) == (P.SERVICE_API, None, None)
