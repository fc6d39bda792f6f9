"""HostClassifier: Host header -> (service, function_id, version_id), against both twins."""

from __future__ import annotations

from types import ModuleType

import pytest

from cext import hotpath_py as P

FID = "12345678-9abc-4def-8123-456789abcdef"
VID = "0fedcba9-8765-4321-8fed-cba987654321"
Result = tuple[int, str | None, str | None]
UNKNOWN = (P.SERVICE_UNKNOWN, None, None)
API = (P.SERVICE_API, None, None)
INVOCATION = (P.SERVICE_INVOCATION, None, None)
API_KEYS = (P.SERVICE_API_KEYS, None, None)
SERVICES = {"api": P.SERVICE_API, "invocation": P.SERVICE_INVOCATION, "api-keys": P.SERVICE_API_KEYS}
ALL_SERVICES = {
    **SERVICES,
    "tasks": P.SERVICE_TASKS,
    "sis": P.SERVICE_SIS,
    "nico": P.SERVICE_NICO,
}


def tlb(fid: str = FID, vid: str | None = None) -> tuple[int, str | None, str | None]:
    return (P.SERVICE_FUNCTION, fid, vid)


LOCALHOST_CASES: list[tuple[bytes, tuple[int, str | None, str | None]]] = [
    # the configured domain, ports, case, trailing dot
    (b"api.localhost", API),
    (b"api.localhost:8080", API),
    (b"api.localhost:1", API),
    (b"api.localhost:65535", API),
    (b"api.localhost:", API),  # empty port is allowed by RFC 3986
    (b"API.LocalHost", API),
    (b"api.localhost.", API),
    (b"api.localhost.:8080", API),
    (b"invocation.localhost:8080", INVOCATION),
    (b"INVOCATION.LOCALHOST", INVOCATION),
    (b"api-keys.localhost:8080", API_KEYS),
    # any address as the rest (users without DNS)
    (b"api-keys.10.0.0.5", API_KEYS),
    (b"api-keys.10.0.0.5:443", API_KEYS),
    (b"api.127.0.0.1:8080", API),
    (b"api.nvcf.example.com", API),
    (b"api.my-host", API),
    (b"api.my_host", API),
    (b"invocation.gateway.internal.", INVOCATION),
    (b"api.mylocalhost", API),  # not the domain: "localhost" must be a whole label
    # nothing after the service label, or no service label at all
    (b"api", UNKNOWN),
    (b"api.", UNKNOWN),
    (b"api:8080", UNKNOWN),
    (b"localhost", UNKNOWN),
    (b"localhost.", UNKNOWN),
    (b"localhost:8080", UNKNOWN),
    (b"10.0.0.5", UNKNOWN),
    (b"10.0.0.5:8080", UNKNOWN),
    # labels before the configured domain must be exactly a service form
    (b"x.api.localhost", UNKNOWN),
    (b"api.x.localhost", UNKNOWN),
    (b"api.api.localhost", UNKNOWN),
    # unknown services, and services absent from the map
    (b"www.localhost", UNKNOWN),
    (b"tasks.localhost", UNKNOWN),
    (b"sis.10.0.0.5", UNKNOWN),
    (b"nico.localhost", UNKNOWN),
    (b"apii.localhost", UNKNOWN),
    # malformed
    (b"", UNKNOWN),
    (b".", UNKNOWN),
    (b":", UNKNOWN),
    (b":8080", UNKNOWN),
    (b".api.localhost", UNKNOWN),
    (b"api..localhost", UNKNOWN),
    (b"api.localhost..", UNKNOWN),
    (b"api.localhost:8o80", UNKNOWN),
    (b"api.localhost:123456", UNKNOWN),
    (b"api.localhost:80:80", UNKNOWN),
    (b"api.localhost:-1", UNKNOWN),
    (b"api.local host", UNKNOWN),
    (b" api.localhost", UNKNOWN),
    (b"api.localhost\r", UNKNOWN),
    (b"api.localhost\x00", UNKNOWN),
    (b"api/x.localhost", UNKNOWN),
    (b"api@localhost", UNKNOWN),
    (b"user@api.localhost", UNKNOWN),
    ("api.lócalhost".encode(), UNKNOWN),
    (b"api.localhost\xff", UNKNOWN),
    (b"\xc3\xa1pi.localhost", UNKNOWN),
    # IPv6 literals: the port is stripped but a literal carries no service label
    (b"[::1]", UNKNOWN),
    (b"[::1]:8080", UNKNOWN),
    (b"[2001:db8::1]:443", UNKNOWN),
    (b"api.[::1]:8080", UNKNOWN),
    (b"::1", UNKNOWN),
    # label and name length limits
    (b"api." + b"a" * 63, API),
    (b"api." + b"a" * 64, UNKNOWN),
    (b"api." + b"a" * 64 + b".localhost", UNKNOWN),
]


@pytest.mark.parametrize(("host", "expected"), LOCALHOST_CASES)
def test_classify_localhost(hp: ModuleType, host: bytes, expected: Result) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    assert classifier.classify(host) == expected
    assert classifier.classify(host) == expected  # memoised answer is the same


def _name_of_length(length: int) -> bytes:
    """``api.`` followed by labels, exactly ``length`` bytes."""
    rest = length - 4
    labels = []
    while rest > 0:
        size = min(63, rest)
        if rest - size == 1:  # avoid leaving room for only a dot
            size -= 2
        labels.append(b"b" * size)
        rest -= size + 1
    name = b"api." + b".".join(labels)
    assert len(name) == length
    return name


def test_name_length_limit(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    assert classifier.classify(_name_of_length(253)) == API
    assert classifier.classify(_name_of_length(253) + b".:8080") == API
    assert classifier.classify(_name_of_length(254)) == UNKNOWN
    assert classifier.classify(_name_of_length(253) + b":123456") == UNKNOWN
    assert classifier.classify(b"api." + b"a" * 5000) == UNKNOWN


TLB_CASES: list[tuple[str, tuple[int, str | None, str | None]]] = [
    (f"{FID}.invocation.localhost", tlb()),
    (f"{FID}.invocation.localhost:8080", tlb()),
    (f"{FID.upper()}.INVOCATION.LOCALHOST.", tlb()),
    (f"{FID}.invocation.10.0.0.5", tlb()),
    (f"{FID}.invocation.10.0.0.5:8080", tlb()),
    (f"{FID}.invocation.nvcf.example.com", tlb()),
    # version first, then function
    (f"{VID}.{FID}.invocation.localhost", tlb(FID, VID)),
    (f"{VID.upper()}.{FID}.invocation.localhost:443", tlb(FID, VID)),
    (f"{VID}.{FID}.invocation.192.168.1.20", tlb(FID, VID)),
    # no rest
    (f"{FID}.invocation", UNKNOWN),
    (f"{FID}.invocation.", UNKNOWN),
    (f"{VID}.{FID}.invocation", UNKNOWN),
    # malformed UUID labels
    ("1234.invocation.localhost", UNKNOWN),
    (f"{FID[:-1]}g.invocation.localhost", UNKNOWN),
    (f"{FID.replace('-', '')}.invocation.localhost", UNKNOWN),
    (f"{FID[:8]}_{FID[9:]}.invocation.localhost", UNKNOWN),
    (f"{FID}0.invocation.localhost", UNKNOWN),
    (f"x{FID}.invocation.localhost", UNKNOWN),
    (f"{VID}.x.invocation.localhost", UNKNOWN),
    (f"x.{FID}.invocation.localhost", UNKNOWN),
    # too many UUIDs, or the wrong service label
    (f"{FID}.{FID}.{FID}.invocation.localhost", UNKNOWN),
    (f"{FID}.api.localhost", UNKNOWN),
    (f"{FID}.localhost", UNKNOWN),
    (f"{FID}.invocations.localhost", UNKNOWN),
    (f"{FID}.x.invocation.localhost", UNKNOWN),
    (f"{VID}.{FID}.api.localhost", UNKNOWN),
    (f"invocation.{FID}.localhost", UNKNOWN),
]


@pytest.mark.parametrize(("host", "expected"), TLB_CASES)
def test_classify_direct_invocation(hp: ModuleType, host: str, expected: Result) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    assert classifier.classify(host.encode()) == expected


def test_direct_invocation_needs_invocation_service(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", {"api": P.SERVICE_API})
    assert classifier.classify(f"{FID}.invocation.localhost".encode()) == UNKNOWN
    assert classifier.classify(f"{VID}.{FID}.invocation.10.0.0.5".encode()) == UNKNOWN
    assert classifier.classify(b"invocation.localhost") == UNKNOWN
    assert classifier.classify(b"api.localhost") == API


def test_returned_ids_are_canonical_lowercase(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    service, fid, vid = classifier.classify(f"{VID.upper()}.{FID.upper()}.invocation.localhost".encode())
    assert (service, fid, vid) == (P.SERVICE_FUNCTION, FID, VID)
    assert isinstance(fid, str) and isinstance(vid, str)


MULTI_LABEL_CASES: list[tuple[bytes, tuple[int, str | None, str | None]]] = [
    (b"api.nvcf.example.com", API),
    (b"API.NVCF.EXAMPLE.COM.:443", API),
    (b"invocation.nvcf.example.com", INVOCATION),
    (b"api-keys.nvcf.example.com:8443", API_KEYS),
    (b"tasks.nvcf.example.com", (P.SERVICE_TASKS, None, None)),
    (b"sis.nvcf.example.com", (P.SERVICE_SIS, None, None)),
    (b"nico.nvcf.example.com", (P.SERVICE_NICO, None, None)),
    (f"{FID}.invocation.nvcf.example.com".encode(), tlb()),
    (f"{VID}.{FID}.invocation.nvcf.example.com".encode(), tlb(FID, VID)),
    (b"nvcf.example.com", UNKNOWN),
    (b"nvcf.example.com.", UNKNOWN),
    (b"example.com", UNKNOWN),
    (b"com", UNKNOWN),
    (b"www.nvcf.example.com", UNKNOWN),
    (b"api.foo.nvcf.example.com", UNKNOWN),
    (b"foo.api.nvcf.example.com", UNKNOWN),
    (b"api.mynvcf.example.com", API),
    (b"api.example.com", API),
    (b"api.10.0.0.5", API),
    (b"api.localhost", API),
]


@pytest.mark.parametrize(("host", "expected"), MULTI_LABEL_CASES)
def test_classify_multi_label_domain(hp: ModuleType, host: bytes, expected: Result) -> None:
    classifier = hp.HostClassifier("nvcf.example.com", ALL_SERVICES)
    assert classifier.classify(host) == expected


def test_domain_starting_with_a_service_label(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("api.example.com", SERVICES)
    assert classifier.classify(b"api.example.com") == UNKNOWN
    assert classifier.classify(b"invocation.api.example.com") == INVOCATION
    assert classifier.classify(b"api.api.example.com") == API
    assert classifier.classify(b"x.api.example.com") == UNKNOWN


def test_empty_domain_reads_leading_labels_only(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("", SERVICES)
    assert classifier.domain == ""
    assert classifier.classify(b"api.localhost") == API
    assert classifier.classify(b"x.api.localhost") == UNKNOWN
    assert classifier.classify(b"localhost") == UNKNOWN
    assert classifier.classify(b"api") == UNKNOWN


def test_constructor_normalises(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("NVCF.Example.COM.", {"API": 1, "Api-Keys": 4})
    assert classifier.domain == "nvcf.example.com"
    assert classifier.classify(b"api.nvcf.example.com") == API
    assert classifier.classify(b"api-keys.nvcf.example.com") == API_KEYS
    assert classifier.classify(b"nvcf.example.com") == UNKNOWN


def test_service_codes_come_from_the_map(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", {"api": 1, "control": 42})
    assert classifier.classify(b"control.localhost") == (42, None, None)


@pytest.mark.parametrize(
    "domain", ["bad domain", "a..b", ".a", "exämple.com", "a" * 64 + ".com", "localhost:8080", "[::1]"]
)
def test_invalid_domain(hp: ModuleType, domain: str) -> None:
    with pytest.raises(ValueError):
        hp.HostClassifier(domain, SERVICES)


def test_a_service_under_the_invocation_host(hp: ModuleType) -> None:
    """``llm.invocation.<domain>`` is a service of its own beside direct invocation by function id."""
    classifier = hp.HostClassifier("localhost", {**SERVICES, "llm": 8, "llm.invocation": 8})
    assert classifier.classify(b"llm.invocation.localhost") == (8, None, None)
    assert classifier.classify(b"LLM.Invocation.localhost:8080") == (8, None, None)
    assert classifier.classify(b"llm.localhost") == (8, None, None)
    assert classifier.classify(b"llm.invocation.10.0.0.5") == (8, None, None)
    assert classifier.classify(f"{FID}.invocation.localhost".encode())[0] == hp.SERVICE_FUNCTION
    assert classifier.classify(b"other.invocation.localhost") == (hp.SERVICE_UNKNOWN, None, None)
    assert classifier.classify(b"llm.invocation.invocation.localhost") == (hp.SERVICE_UNKNOWN, None, None)


@pytest.mark.parametrize(
    "label", ["", "a.b", "a b", "ápi", "a" * 64, FID, "api:80", "api.", "llm.invocation.", f"{FID}.invocation"]
)
def test_invalid_service_label(hp: ModuleType, label: str) -> None:
    with pytest.raises(ValueError):
        hp.HostClassifier("localhost", {label: 1})


def test_constructor_type_errors(hp: ModuleType) -> None:
    with pytest.raises(TypeError):
        hp.HostClassifier(None, SERVICES)
    with pytest.raises(TypeError):
        hp.HostClassifier(b"localhost", SERVICES)
    with pytest.raises(TypeError):
        hp.HostClassifier("localhost", {"api": "1"})
    with pytest.raises(TypeError):
        hp.HostClassifier("localhost", {"api": True})
    with pytest.raises(TypeError):
        hp.HostClassifier("localhost", {b"api": 1})
    with pytest.raises(ValueError):
        hp.HostClassifier("localhost", SERVICES, memo_max=0)


@pytest.mark.parametrize("host", ["api.localhost", None, bytearray(b"api.localhost"), 7])
def test_classify_rejects_non_bytes(hp: ModuleType, host: object) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    with pytest.raises(TypeError):
        classifier.classify(host)


def test_memo_is_bounded_and_cleared_when_full(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES, memo_max=16)
    assert classifier.memo_max == 16
    assert classifier.memo_size == 0
    for i in range(100):
        assert classifier.classify(b"api.host-%d" % i) == API
        assert 1 <= classifier.memo_size <= 16
    assert classifier.memo_size == 100 - 6 * 16  # cleared at the 17th, 33rd, ... 97th host


def test_memo_default_bound(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    assert classifier.memo_max == P.MEMO_MAX_DEFAULT == hp.MEMO_MAX_DEFAULT == 4096
    for i in range(5000):
        classifier.classify(b"h%d.localhost" % i)
        assert classifier.memo_size <= 4096
    assert classifier.memo_size == 5000 - 4096


def test_memo_hits_and_oversized_hosts(hp: ModuleType) -> None:
    classifier = hp.HostClassifier("localhost", SERVICES)
    for _ in range(3):
        assert classifier.classify(b"api.localhost") == API
        assert classifier.classify(b"nope") == UNKNOWN
    assert classifier.memo_size == 2
    assert classifier.classify(b"api." + b"x" * 10_000) == UNKNOWN
    assert classifier.memo_size == 2  # hosts longer than any valid host are not memoised
