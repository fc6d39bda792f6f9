"""Property tests: arbitrary input never raises, the twins agree, and regex oracles agree.

Differential tests (``twins``) compare the compiled module with the pure-Python reference on the
same inputs; they are skipped only when ``CFGATE_NO_EXTENSIONS`` is set. The ``hp`` tests run the
same inputs through each twin on its own (result shape, bounded memo, independent oracles).
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cext import hotpath_py as P

FID = b"12345678-9abc-4def-8123-456789abcdef"
VID = b"0fedcba9-8765-4321-8fed-cba987654321"
SERVICES = {
    "api": P.SERVICE_API,
    "invocation": P.SERVICE_INVOCATION,
    "api-keys": P.SERVICE_API_KEYS,
    "tasks": P.SERVICE_TASKS,
    "llm": P.SERVICE_LLM,
    "llm.invocation": P.SERVICE_LLM,  # a service under the invocation host
}
DOMAINS = ["localhost", "nvcf.example.com", "", "api.example.com"]
FUZZ = settings(max_examples=400, deadline=None)
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

uuid_bytes = st.uuids().map(lambda u: str(u).encode())
near_uuid = st.one_of(
    uuid_bytes.map(bytes.upper),
    uuid_bytes.map(lambda b: b[:-1]),
    uuid_bytes.map(lambda b: b + b"0"),
    uuid_bytes.map(lambda b: b.replace(b"-", b"_", 1)),
    uuid_bytes.map(lambda b: b[:5] + b"g" + b[6:]),
)
host_label = st.one_of(
    st.sampled_from(
        [
            b"api",
            b"API",
            b"invocation",
            b"Invocation",
            b"api-keys",
            b"tasks",
            b"sis",
            b"localhost",
            b"nvcf",
            b"example",
            b"com",
            b"10",
            b"0",
            b"5",
            b"x",
            b"",
            b"a" * 63,
            b"a" * 64,
            b"[::1]",
            b"my_host",
            b"-",
            b"\xff",
            b"\xc3\xa9",
            b"a b",
        ]
    ),
    uuid_bytes,
    near_uuid,
    st.binary(max_size=6),
)


def _recase(label: bytes, upper: bool) -> bytes:
    return label.upper() if upper else label


SERVICE_LABELS = [b"api", b"invocation", b"api-keys", b"tasks", b"sis", b"www", b"llm"]
TLB_LABELS = [b"invocation", b"INVOCATION", b"api"]
service_labels = st.one_of(
    st.tuples(st.sampled_from(SERVICE_LABELS), st.booleans()).map(lambda t: [_recase(*t)]),
    st.tuples(st.one_of(uuid_bytes, near_uuid), st.sampled_from(TLB_LABELS)).map(list),
    st.tuples(uuid_bytes, st.one_of(uuid_bytes, near_uuid), st.just(b"invocation")).map(list),
    st.tuples(st.sampled_from([b"llm", b"LLM", b"llx"]), st.sampled_from(TLB_LABELS)).map(list),
    st.lists(host_label, max_size=3),
)
rest_labels = st.one_of(
    st.sampled_from(
        [
            [b"localhost"],
            [b"nvcf", b"example", b"com"],
            [b"example", b"com"],
            [b"10", b"0", b"0", b"5"],
        ]
    ),
    st.sampled_from([[b"api", b"example", b"com"], [b"x", b"localhost"], [b"LocalHost"], []]),
    st.lists(host_label, max_size=3),
)
structured_host = st.builds(
    lambda service, rest, dot, port: b".".join(service + rest) + dot + port,
    service_labels,
    rest_labels,
    st.sampled_from([b"", b"", b".", b".."]),
    st.sampled_from([b"", b"", b":", b":8080", b":65535", b":123456", b":8o", b"]:1", b":8080:1"]),
)
valid_host = st.builds(
    lambda service, rest, dot, port, upper: _recase(b".".join(service + rest) + dot + port, upper),
    st.one_of(
        st.sampled_from([[b"api"], [b"invocation"], [b"api-keys"], [b"tasks"]]),
        uuid_bytes.map(lambda f: [f, b"invocation"]),
        st.tuples(uuid_bytes, uuid_bytes).map(lambda t: [t[0], t[1], b"invocation"]),
    ),
    st.sampled_from([[b"localhost"], [b"nvcf", b"example", b"com"], [b"10", b"0", b"0", b"5"], [b"gw"]]),
    st.sampled_from([b"", b"."]),
    st.sampled_from([b"", b":8080", b":443"]),
    st.booleans(),
)
any_host = st.one_of(st.binary(max_size=300), structured_host, valid_host)

path_id = st.one_of(uuid_bytes, uuid_bytes.map(bytes.upper), near_uuid, st.binary(max_size=5))
path_segment = st.one_of(
    st.sampled_from(
        [b"", b"v2", b"V2", b"nvcf", b"pexec", b"exec", b"functions", b"status", b"versions", b"x", b"%2F"]
    ),
    path_id,
)
route_path = st.builds(
    lambda head, first, version, tail: head + first + version + tail,
    st.sampled_from(
        [
            b"/v2/nvcf/pexec/functions/",
            b"/v2/nvcf/exec/functions/",
            b"/v2/nvcf/pexec/status/",
            b"/v2/nvcf/exec/status/",
            b"/v2/nvcf/pexec/",
            b"/v2/nvcf//exec/status/",
        ]
    ),
    path_id,
    st.one_of(
        st.just(b""),
        path_id.map(lambda i: b"/versions/" + i),
        path_id.map(lambda i: b"/version/" + i),
    ),
    st.sampled_from([b"", b"", b"/", b"//", b"?a=1", b"/?q=/x", b"?", b"/x"]),
)
structured_path = st.builds(
    lambda head, segments, tail: head + b"/".join(segments) + tail,
    st.sampled_from([b"/v2/nvcf/pexec/functions/", b"/v2/nvcf/exec/status/", b"/v2/nvcf/", b"/", b""]),
    st.lists(path_segment, max_size=5),
    st.sampled_from([b"", b"/", b"//", b"?a=1", b"/?q=/x", b"?"]),
)
any_path = st.one_of(st.binary(max_size=200), structured_path, route_path)
valid_request = st.one_of(
    st.builds(
        lambda kind, fid, version, tail: (
            b"POST",
            b"/v2/nvcf/" + kind + b"/functions/" + fid + version + tail,
        ),
        st.sampled_from([b"pexec", b"exec"]),
        st.one_of(uuid_bytes, uuid_bytes.map(bytes.upper), near_uuid),
        st.one_of(st.just(b""), uuid_bytes.map(lambda v: b"/versions/" + v)),
        st.sampled_from([b"", b"/", b"?x=1"]),
    ),
    st.builds(
        lambda kind, rid, tail: (b"GET", b"/v2/nvcf/" + kind + b"/status/" + rid + tail),
        st.sampled_from([b"pexec", b"exec"]),
        uuid_bytes,
        st.sampled_from([b"", b"/", b"?x=1"]),
    ),
)
METHODS = [b"POST", b"GET", b"POST", b"GET", b"post", b"PUT", b""]
any_method = st.one_of(st.sampled_from(METHODS), st.binary(max_size=6))

visible = st.binary(min_size=1, max_size=80).map(lambda b: bytes(0x21 + c % 94 for c in b))
SCHEMES = [b"Bearer", b"Bearer", b"bearer", b"BEARER", b"bEaReR", b"Basic", b"Bearer:", b"Bear", b""]
structured_auth = st.builds(
    lambda lead, scheme, gap, token, trail: lead + scheme + gap + token + trail,
    st.sampled_from([b"", b"", b" ", b"\t", b" \t"]),
    st.sampled_from(SCHEMES),
    st.sampled_from([b" ", b" ", b"   ", b"", b"\t", b" \t"]),
    st.one_of(visible, visible, st.binary(max_size=20), st.just(b"a" * 8192), st.just(b"a" * 8193)),
    st.sampled_from([b"", b"", b" ", b"\t", b"\r\n", b" x"]),
)
valid_auth = st.builds(
    lambda lead, scheme, gap, token, trail: lead + scheme + gap + token + trail,
    st.sampled_from([b"", b" ", b"\t "]),
    st.sampled_from([b"Bearer", b"bearer", b"BEARER"]),
    st.sampled_from([b" ", b"  "]),
    visible,
    st.sampled_from([b"", b" ", b"\t"]),
)
any_auth = st.one_of(st.none(), st.binary(max_size=100), structured_auth, valid_auth)


def _check_ids(*ids: str | None) -> None:
    for value in ids:
        assert value is None or CANONICAL_UUID.fullmatch(value), value


# --- classify ----------------------------------------------------------------------------------------


@FUZZ
@given(host=any_host, domain=st.sampled_from(DOMAINS))
def test_classify_never_raises(hp: ModuleType, host: bytes, domain: str) -> None:
    service, fid, vid = hp.HostClassifier(domain, SERVICES).classify(host)
    assert service in (0, P.SERVICE_FUNCTION, *SERVICES.values())
    if service != P.SERVICE_FUNCTION:
        assert fid is None and vid is None
    else:
        assert fid is not None
    _check_ids(fid, vid)


@FUZZ
@given(host=any_host, domain=st.sampled_from(DOMAINS), with_invocation=st.booleans())
def test_classify_twins_agree(
    twins: tuple[ModuleType, ModuleType], host: bytes, domain: str, with_invocation: bool
) -> None:
    services = dict(SERVICES) if with_invocation else {"api": 1, "api-keys": 4}
    py, c = (m.HostClassifier(domain, services) for m in twins)
    assert py.classify(host) == c.classify(host)
    assert py.classify(host) == c.classify(host)  # memoised answers too
    assert py.memo_size == c.memo_size


@FUZZ
@given(hosts=st.lists(any_host, max_size=200))
def test_memo_stays_bounded(hp: ModuleType, hosts: list[bytes]) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES, memo_max=32)
    for host in hosts:
        classifier.classify(host)
        assert classifier.memo_size <= 32


# --- paths -------------------------------------------------------------------------------------------

_UUID_RE = rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_FUNCTIONS_RE = re.compile(rb"/v2/nvcf/(pexec|exec)/functions/([^/]*)(?:/versions/([^/]*))?")
_STATUS_RE = re.compile(rb"/v2/nvcf/(pexec|exec)/status/([^/]*)")


def _oracle_path(method: bytes, path: bytes) -> tuple[int, str | None, str | None]:
    """An independent regex statement of the path rules."""
    path = path.split(b"?", 1)[0]
    if path.endswith(b"/"):
        path = path[:-1]
    functions, status = _FUNCTIONS_RE.fullmatch(path), _STATUS_RE.fullmatch(path)
    if functions and method == b"POST":
        offset = 0 if functions[1] == b"pexec" else 3
        ids = [functions[2]] if functions[3] is None else [functions[2], functions[3]]
        route = P.ROUTE_PEXEC + offset + (len(ids) - 1)
    elif status and method == b"GET":
        offset = 0 if status[1] == b"pexec" else 3
        ids, route = [status[2]], P.ROUTE_PEXEC_STATUS + offset
    else:
        return (P.ROUTE_NONE, None, None)
    if not all(re.fullmatch(_UUID_RE, i) for i in ids):
        return (P.ROUTE_BAD_ID, None, None)
    decoded = [i.decode().lower() for i in ids]
    return (route, decoded[0], decoded[1] if len(decoded) > 1 else None)


any_request = st.one_of(st.tuples(any_method, any_path), valid_request)


@FUZZ
@given(request=any_request)
def test_paths_match_the_oracle(hp: ModuleType, request: tuple[bytes, bytes]) -> None:
    method, path = request
    result = hp.match_invocation_path(method, path)
    assert result == _oracle_path(method, path)
    _check_ids(result[1], result[2])


@FUZZ
@given(request=any_request)
def test_paths_twins_agree(twins: tuple[ModuleType, ModuleType], request: tuple[bytes, bytes]) -> None:
    method, path = request
    py, c = twins
    assert py.match_invocation_path(method, path) == c.match_invocation_path(method, path)


# --- bearer ------------------------------------------------------------------------------------------

_BEARER_RE = re.compile(rb"[ \t]*[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]{1,8192})[ \t]*")


def _oracle_bearer(value: bytes | None) -> tuple[int, bytes | None]:
    if value is None or not value.strip(b" \t"):
        return (P.BEARER_MISSING, None)
    match = _BEARER_RE.fullmatch(value)
    return (P.BEARER_OK, match[1]) if match else (P.BEARER_MALFORMED, None)


@FUZZ
@given(value=any_auth)
def test_bearer_matches_the_oracle(hp: ModuleType, value: bytes | None) -> None:
    assert hp.extract_bearer(value) == _oracle_bearer(value)


@FUZZ
@given(value=any_auth)
def test_bearer_twins_agree(twins: tuple[ModuleType, ModuleType], value: bytes | None) -> None:
    py, c = twins
    assert py.extract_bearer(value) == c.extract_bearer(value)


# --- decide ------------------------------------------------------------------------------------------

TOKENS = [b"nvapi-" + b"k" * 64, b"jwt.jwt.jwt", b"nvapi-lister", b"nvapi-expired"]


def _hot_path(hp: ModuleType) -> Any:
    cache = hp.CredentialCache()
    cache.put(TOKENS[0], hp.Principal(hp.KIND_API_KEY, "key", "nca", frozenset(), 0b10, key_id="k"))
    cache.put(TOKENS[1], hp.Principal(hp.KIND_JWT, "jwt", "nca", frozenset(), 0b01))
    cache.put(TOKENS[2], hp.Principal(hp.KIND_API_KEY, "lister", "nca", frozenset(), 0b100, key_id="l"))
    cache.put(TOKENS[3], hp.Principal(hp.KIND_API_KEY, "old", "nca", frozenset(), 0b10, expires_at=10.0))
    classifier = hp.HostClassifier("localhost", SERVICES)
    return hp.HotPath(classifier, cache, 0b11, lambda: 100.0)


decide_host = st.one_of(
    st.sampled_from([b"invocation.localhost:8080", b"api.10.0.0.5", b"api-keys.localhost", b"localhost"]),
    st.builds(lambda f: f + b".invocation.localhost", st.sampled_from([FID, FID.upper(), VID + b"." + FID])),
    any_host,
)
decide_request = st.one_of(
    st.tuples(
        any_method,
        st.sampled_from(
            [
                b"/v2/nvcf/pexec/functions/" + FID,
                b"/v2/nvcf/exec/functions/" + FID + b"/versions/" + VID,
                b"/v2/nvcf/pexec/status/" + VID,
                b"/v2/nvcf/pexec/functions/latest",
            ]
        ),
    ),
    any_request,
)
CACHED = [b"Bearer " + t for t in TOKENS]
decide_auth = st.one_of(st.sampled_from(CACHED), st.just(b"Bearer unknown"), any_auth)


def _summary(decision: Any) -> tuple[Any, ...]:
    principal = decision.principal
    return (
        decision.code,
        decision.service,
        decision.route,
        decision.function_id,
        decision.version_id,
        decision.request_id,
        None if principal is None else principal.subject,
        decision.token,
    )


@FUZZ
@given(host=decide_host, request=decide_request, auth=decide_auth)
def test_decide_twins_agree(
    twins: tuple[ModuleType, ModuleType], host: bytes, request: tuple[bytes, bytes], auth: bytes | None
) -> None:
    method, path = request
    py, c = (_hot_path(m) for m in twins)
    assert _summary(py.decide(host, method, path, auth)) == _summary(c.decide(host, method, path, auth))


@FUZZ
@given(host=decide_host, request=decide_request, auth=decide_auth)
def test_decide_is_consistent_with_its_parts(
    hp: ModuleType, host: bytes, request: tuple[bytes, bytes], auth: bytes | None
) -> None:
    method, path = request
    hot = _hot_path(hp)
    decision = hot.decide(host, method, path, auth)
    service = hot.classifier.classify(host)[0]
    assert decision.service == service
    if decision.code == P.DECIDE_OK:
        assert decision.principal is not None and decision.principal.has_any(0b11)
        assert hp.extract_bearer(auth) == (P.BEARER_OK, decision.token)
    if decision.code in (P.DECIDE_CACHE_MISS, P.DECIDE_FORBIDDEN, P.DECIDE_OK):
        assert decision.token is not None
    else:
        assert decision.token is None and decision.principal is None
    _check_ids(decision.function_id, decision.version_id, decision.request_id)
