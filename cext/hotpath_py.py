"""Pure-Python reference implementation of the per-request hot path.

This module is the *reference semantics*: ``cext/hotpath_c.pyx`` implements the same public API
with identical results (the test-suite in ``tests/cext`` runs against both, and fuzzes them
against each other). Import the selector ``cext.hotpath`` rather than this module directly.

What the hot path decides, for every request and without any I/O:

1. classify the ``Host`` header into a service (``HostClassifier``);
2. for invocation hosts, match the request path (``match_invocation_path``);
3. extract the bearer credential (``extract_bearer``);
4. look the credential up in the in-process cache (``CredentialCache``);
5. check the required scope as a bitmask (``Principal.has_any``).

``HotPath.decide`` chains the five. The function resource rule (``Principal.allows_function``) needs
the routing table, so the caller applies it after ``decide``.

Host rules (``HostClassifier.classify``), in order:

* empty input, more than 260 bytes, or any byte >= 0x80 -> unknown;
* ASCII-lowercase; the port is stripped at the last ``:`` and must be at most 5 digits (an empty
  port, ``host:``, is allowed as in RFC 3986); one trailing dot is stripped; the remaining name must
  be 1..253 bytes, made of labels of 1..63 bytes of ``[a-z0-9_-]``. Anything else (IPv6 literals
  ``[::1]:8080`` included: they carry no service label) -> unknown;
* if the configured domain is non-empty and the name equals it -> unknown; if the name ends with
  ``.<domain>``, the labels before the domain must be *exactly* one of ``<service>``,
  ``<label>.invocation`` for a service named so in the map (``llm.invocation``),
  ``<fid>.invocation`` or ``<vid>.<fid>.invocation``;
* otherwise (any address, e.g. ``api-keys.10.0.0.5``) the leading labels are read the same way and at
  least one label must follow them.

Service labels absent from the ``services`` map are unknown. Direct invocation by host
(``SERVICE_FUNCTION``) exists only when ``"invocation"`` is in the map. UUIDs are returned lowercase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from types import MappingProxyType
from typing import Final

__all__ = [
    "BEARER_MALFORMED",
    "BEARER_MISSING",
    "BEARER_OK",
    "DECIDE_BAD_BEARER",
    "DECIDE_BAD_ID",
    "DECIDE_CACHE_MISS",
    "DECIDE_FORBIDDEN",
    "DECIDE_NOT_HOT",
    "DECIDE_NO_BEARER",
    "DECIDE_OK",
    "DECIDE_UNKNOWN_HOST",
    "KIND_API_KEY",
    "KIND_JWT",
    "MAX_AUTHORITIES",
    "MAX_TOKEN_BYTES",
    "MEMO_MAX_DEFAULT",
    "ROUTE_BAD_ID",
    "ROUTE_EXEC",
    "ROUTE_EXEC_STATUS",
    "ROUTE_EXEC_VERSION",
    "ROUTE_NONE",
    "ROUTE_PEXEC",
    "ROUTE_PEXEC_STATUS",
    "ROUTE_PEXEC_VERSION",
    "SERVICE_API",
    "SERVICE_API_KEYS",
    "SERVICE_FUNCTION",
    "SERVICE_INVOCATION",
    "SERVICE_LLM",
    "SERVICE_NICO",
    "SERVICE_SIS",
    "SERVICE_TASKS",
    "SERVICE_UNKNOWN",
    "AuthorityTable",
    "CredentialCache",
    "Decision",
    "HostClassifier",
    "HotPath",
    "Principal",
    "extract_bearer",
    "match_invocation_path",
]

SERVICE_UNKNOWN: Final = 0
SERVICE_API: Final = 1
SERVICE_INVOCATION: Final = 2
SERVICE_FUNCTION: Final = 3
SERVICE_API_KEYS: Final = 4
SERVICE_TASKS: Final = 5
SERVICE_SIS: Final = 6
SERVICE_NICO: Final = 7
SERVICE_LLM: Final = 8

ROUTE_NONE: Final = 0
ROUTE_PEXEC: Final = 1
ROUTE_PEXEC_VERSION: Final = 2
ROUTE_PEXEC_STATUS: Final = 3
ROUTE_EXEC: Final = 4
ROUTE_EXEC_VERSION: Final = 5
ROUTE_EXEC_STATUS: Final = 6
ROUTE_BAD_ID: Final = 7

BEARER_MISSING: Final = 0
BEARER_MALFORMED: Final = 1
BEARER_OK: Final = 2

KIND_JWT: Final = 1
KIND_API_KEY: Final = 2

DECIDE_OK: Final = 0
DECIDE_NOT_HOT: Final = 1
DECIDE_UNKNOWN_HOST: Final = 2
DECIDE_NO_BEARER: Final = 3
DECIDE_BAD_BEARER: Final = 4
DECIDE_CACHE_MISS: Final = 5
DECIDE_FORBIDDEN: Final = 6
DECIDE_BAD_ID: Final = 7

MAX_AUTHORITIES: Final = 64
MAX_TOKEN_BYTES: Final = 8192
MEMO_MAX_DEFAULT: Final = 4096

_MAX_NAME: Final = 253
_MAX_LABEL: Final = 63
_MAX_PORT_DIGITS: Final = 5
# longest raw Host worth parsing: name + trailing dot + ':' + port digits
_MAX_RAW_HOST: Final = _MAX_NAME + 2 + _MAX_PORT_DIGITS
_MASK_LIMIT: Final = 1 << 64
_LABEL_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX_BYTES: Final = frozenset(b"0123456789abcdefABCDEF")
_VISIBLE_ASCII: Final = bytes(range(0x21, 0x7F))
_INVOCATION: Final = b"invocation"

_HostResult = tuple[int, str | None, str | None]
_PathResult = tuple[int, str | None, str | None]
_UNKNOWN_HOST: Final[_HostResult] = (SERVICE_UNKNOWN, None, None)
_NO_ROUTE: Final[_PathResult] = (ROUTE_NONE, None, None)
_BAD_ROUTE: Final[_PathResult] = (ROUTE_BAD_ID, None, None)

# (kind segment, collection segment) -> (route without version, route with version, method)
_PATH_SHAPES: Final[dict[tuple[bytes, bytes], tuple[int, int, bytes]]] = {
    (b"pexec", b"functions"): (ROUTE_PEXEC, ROUTE_PEXEC_VERSION, b"POST"),
    (b"pexec", b"status"): (ROUTE_PEXEC_STATUS, ROUTE_NONE, b"GET"),
    (b"exec", b"functions"): (ROUTE_EXEC, ROUTE_EXEC_VERSION, b"POST"),
    (b"exec", b"status"): (ROUTE_EXEC_STATUS, ROUTE_NONE, b"GET"),
}


def _is_uuid(label: bytes) -> bool:
    """True for the 8-4-4-4-12 hexadecimal form, either case."""
    if len(label) != 36:
        return False
    if label[8] != 0x2D or label[13] != 0x2D or label[18] != 0x2D or label[23] != 0x2D:
        return False
    return _HEX_BYTES.issuperset(label.replace(b"-", b""))


def _uuid_str(segment: bytes) -> str | None:
    """Canonical lowercase UUID string, or None when ``segment`` is not a UUID."""
    if not _is_uuid(segment):
        return None
    return segment.decode("ascii").lower()


def _require_bytes(value: object, what: str) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _require_str(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")


def _check_mask(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if value < 0 or value >= _MASK_LIMIT:
        raise ValueError(f"{what} must fit in 64 bits (0 <= {what} < 2**64)")
    return int(value)


def _host_labels(raw: bytes) -> list[bytes] | None:
    """Lowercased, port- and dot-stripped labels of a Host value, or None if it is not a host name."""
    if not raw or len(raw) > _MAX_RAW_HOST or not raw.isascii():
        return None
    host = raw.lower()
    colon = host.rfind(b":")
    if colon >= 0:
        port = host[colon + 1 :]
        if len(port) > _MAX_PORT_DIGITS or (port and not port.isdigit()):
            return None
        host = host[:colon]
    if host.endswith(b"."):
        host = host[:-1]
    if not host or len(host) > _MAX_NAME:
        return None
    labels = host.split(b".")
    for label in labels:
        if not label or len(label) > _MAX_LABEL or not _LABEL_BYTES.issuperset(label):
            return None
    return labels


def _normalise_domain(domain: str) -> list[bytes]:
    _require_str(domain, "domain")
    if not domain:
        return []
    if not domain.isascii():
        raise ValueError(f"domain must be ASCII: {domain!r}")
    labels = _host_labels(domain.encode("ascii"))
    if labels is None or b":" in domain.encode("ascii"):
        raise ValueError(f"not a valid domain name: {domain!r}")
    return labels


def _normalise_services(services: Mapping[str, int]) -> dict[bytes, int]:
    table: dict[bytes, int] = {}
    for label, code in services.items():
        _require_str(label, "service label")
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"service code for {label!r} must be int")
        encoded = label.lower().encode("ascii", "replace")
        labels = _host_labels(encoded)
        # One label, or ``<label>.invocation`` (a service beside direct invocation, as llm.invocation).
        shaped = (
            labels is not None
            and b".".join(labels) == encoded  # no trailing dot, no port
            and (len(labels) == 1 or (len(labels) == 2 and labels[1] == _INVOCATION))
        )
        if not shaped or b":" in encoded or _is_uuid(labels[0] if labels else encoded):
            raise ValueError(f"not a valid service label: {label!r}")
        table[encoded] = int(code)
    return table


class HostClassifier:
    """Maps a ``Host`` header value to ``(service, function_id, version_id)``.

    Results are memoised by the raw header bytes in a dict of at most ``memo_max`` entries; when it
    is full it is cleared (so the memo never grows unbounded, whatever hosts clients send). Hosts
    longer than any valid host are rejected without being memoised.
    """

    __slots__ = ("_domain", "_domain_labels", "_invocation", "_memo", "_memo_max", "_services")

    def __init__(self, domain: str, services: Mapping[str, int], *, memo_max: int = MEMO_MAX_DEFAULT) -> None:
        if not isinstance(memo_max, int) or memo_max < 1:
            raise ValueError("memo_max must be a positive int")
        self._domain_labels = _normalise_domain(domain)
        self._domain = b".".join(self._domain_labels).decode("ascii")
        self._services = _normalise_services(services)
        self._invocation = _INVOCATION in self._services
        self._memo: dict[bytes, _HostResult] = {}
        self._memo_max = memo_max

    @property
    def domain(self) -> str:
        """The configured domain, normalised (lowercase, no trailing dot); may be empty."""
        return self._domain

    @property
    def memo_size(self) -> int:
        return len(self._memo)

    @property
    def memo_max(self) -> int:
        return self._memo_max

    def classify(self, host: bytes) -> tuple[int, str | None, str | None]:
        _require_bytes(host, "host")
        result = self._memo.get(host)
        if result is not None:
            return result
        if len(host) > _MAX_RAW_HOST:
            return _UNKNOWN_HOST
        result = self._classify(host)
        if len(self._memo) >= self._memo_max:
            self._memo.clear()
        self._memo[host] = result
        return result

    def _classify(self, host: bytes) -> _HostResult:
        labels = _host_labels(host)
        if labels is None:
            return _UNKNOWN_HOST
        domain = self._domain_labels
        count = len(labels)
        if domain and labels[count - len(domain) :] == domain:
            if count == len(domain):
                return _UNKNOWN_HOST
            return self._from_prefix(labels[: count - len(domain)])
        return self._from_leading(labels)

    def _from_prefix(self, prefix: list[bytes]) -> _HostResult:
        """The service labels before the configured domain must match one form exactly."""
        if len(prefix) == 1:
            code = self._services.get(prefix[0])
            return _UNKNOWN_HOST if code is None else (code, None, None)
        if len(prefix) == 2:  # a service of its own under the invocation host (llm.invocation)
            code = self._services.get(prefix[0] + b"." + prefix[1])
            if code is not None:
                return (code, None, None)
        if not self._invocation or prefix[-1] != _INVOCATION:
            return _UNKNOWN_HOST
        if len(prefix) == 2:
            fid = _uuid_str(prefix[0])
            return _UNKNOWN_HOST if fid is None else (SERVICE_FUNCTION, fid, None)
        if len(prefix) == 3:
            vid = _uuid_str(prefix[0])
            fid = _uuid_str(prefix[1])
            if vid is None or fid is None:
                return _UNKNOWN_HOST
            return (SERVICE_FUNCTION, fid, vid)
        return _UNKNOWN_HOST

    def _from_leading(self, labels: list[bytes]) -> _HostResult:
        """Any address after the service labels: read the leading labels, keep a non-empty rest."""
        count = len(labels)
        if labels[0] in self._services:
            return self._from_prefix(labels[:1]) if count >= 2 else _UNKNOWN_HOST
        if count >= 3 and labels[1] == _INVOCATION:
            return self._from_prefix(labels[:2])
        if count >= 4 and labels[2] == _INVOCATION:
            return self._from_prefix(labels[:3])
        return _UNKNOWN_HOST


def match_invocation_path(method: bytes, path: bytes) -> tuple[int, str | None, str | None]:
    """Match an NVCF invocation route; ``(route, id1, id2)`` (see the ``ROUTE_*`` constants)."""
    _require_bytes(method, "method")
    _require_bytes(path, "path")
    query = path.find(b"?")
    if query >= 0:
        path = path[:query]
    if path.endswith(b"/"):
        path = path[:-1]
    parts = path.split(b"/")
    if len(parts) not in (6, 8) or parts[0] or parts[1] != b"v2" or parts[2] != b"nvcf":
        return _NO_ROUTE
    shape = _PATH_SHAPES.get((parts[3], parts[4]))
    if shape is None or method != shape[2]:
        return _NO_ROUTE
    plain_route, version_route, _ = shape
    if len(parts) == 6:
        first = _uuid_str(parts[5])
        return _BAD_ROUTE if first is None else (plain_route, first, None)
    if version_route == ROUTE_NONE or parts[6] != b"versions":
        return _NO_ROUTE
    first = _uuid_str(parts[5])
    second = _uuid_str(parts[7])
    if first is None or second is None:
        return _BAD_ROUTE
    return (version_route, first, second)


def extract_bearer(value: bytes | None) -> tuple[int, bytes | None]:
    """Parse an ``Authorization`` header value; ``(BEARER_*, token or None)``."""
    if value is None:
        return (BEARER_MISSING, None)
    _require_bytes(value, "authorization")
    value = value.strip(b" \t")
    if not value:
        return (BEARER_MISSING, None)
    if len(value) < 8 or value[6] != 0x20 or value[:6].lower() != b"bearer":
        return (BEARER_MALFORMED, None)
    token = value[7:].lstrip(b" ")
    if not token or len(token) > MAX_TOKEN_BYTES or token.translate(None, _VISIBLE_ASCII):
        return (BEARER_MALFORMED, None)
    return (BEARER_OK, token)


class AuthorityTable:
    """Assigns each distinct authority string one bit of a 64-bit mask (in the given order).

    ``invoke_function`` (a JWT scope) and ``apikey:invoke_function`` (an API-key scope) are distinct
    strings and get distinct bits. Duplicates share the bit of their first occurrence.
    """

    __slots__ = ("_bits", "_names")

    def __init__(self, authorities: Sequence[str]) -> None:
        if isinstance(authorities, str):
            raise TypeError("authorities must be a sequence of str, not a str")
        bits: dict[str, int] = {}
        for name in authorities:
            _require_str(name, "authority")
            if name not in bits:
                if len(bits) >= MAX_AUTHORITIES:
                    raise ValueError(f"at most {MAX_AUTHORITIES} distinct authorities are supported")
                bits[name] = 1 << len(bits)
        self._bits = bits
        self._names = tuple(bits)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __len__(self) -> int:
        return len(self._names)

    def bit(self, name: str) -> int:
        """The bit of ``name``; 0 if it is unknown."""
        return self._bits.get(name, 0)

    def mask(self, names: Iterable[str]) -> int:
        """OR of the bits of ``names``; unknown names are ignored."""
        if isinstance(names, str):
            raise TypeError("names must be an iterable of str, not a str")
        bits = self._bits
        result = 0
        for name in names:
            result |= bits.get(name, 0)
        return result

    def any_of(self, *names: str) -> int:
        """Required mask for ``hasAnyAuthority(names...)``: 0 (matches nothing) if all are unknown."""
        return self.mask(names)


def _freeze_grants(
    grants: Mapping[str, frozenset[str] | None] | None,
) -> Mapping[str, frozenset[str] | None]:
    frozen: dict[str, frozenset[str] | None] = {}
    if grants is not None:
        for function_id, versions in grants.items():
            _require_str(function_id, "function_grants key")
            if versions is None:
                frozen[function_id.lower()] = None
                continue
            if isinstance(versions, str):
                raise TypeError("function_grants values must be sets of version ids or None")
            for version in versions:
                _require_str(version, "function_grants version")
            frozen[function_id.lower()] = frozenset(v.lower() for v in versions)
    return MappingProxyType(frozen)


def _check_principal_args(kind: int, subject: str, nca_id: str, key_id: str | None) -> None:
    if not isinstance(kind, int) or (kind != KIND_JWT and kind != KIND_API_KEY):
        raise ValueError(f"kind must be KIND_JWT or KIND_API_KEY, not {kind!r}")
    _require_str(subject, "subject")
    _require_str(nca_id, "nca_id")
    if key_id is not None:
        _require_str(key_id, "key_id")


class Principal:
    """An authenticated caller, as cached by ``CredentialCache`` (immutable).

    ``function_grants`` maps a function id to the version ids the credential may invoke, or to None
    for all versions (``function:<fid>/*``); ids are stored lowercase, and ``allows_function``
    expects the canonical lowercase ids that ``classify``/``match_invocation_path`` return. It is
    exposed as a read-only mapping, empty when None was given.
    """

    __slots__ = (
        "_account_functions",
        "_account_tasks",
        "_authorities",
        "_authorized_functions",
        "_expires_at",
        "_function_grants",
        "_key_id",
        "_kind",
        "_mask",
        "_nca_id",
        "_subject",
    )

    def __init__(
        self,
        kind: int,
        subject: str,
        nca_id: str,
        authorities: frozenset[str],
        mask: int,
        key_id: str | None = None,
        expires_at: float = math.inf,
        account_functions: bool = False,
        authorized_functions: bool = False,
        function_grants: Mapping[str, frozenset[str] | None] | None = None,
        account_tasks: bool = False,
    ) -> None:
        _check_principal_args(kind, subject, nca_id, key_id)
        if not isinstance(expires_at, (int, float)):
            raise TypeError("expires_at must be a number")
        expiry = float(expires_at)
        if math.isnan(expiry):
            raise ValueError("expires_at must not be NaN")
        self._kind = int(kind)
        self._subject = subject
        self._nca_id = nca_id
        self._authorities = frozenset(authorities)
        self._mask = _check_mask(mask, "mask")
        self._key_id = key_id
        self._expires_at = expiry
        self._account_functions = bool(account_functions)
        self._authorized_functions = bool(authorized_functions)
        self._function_grants = _freeze_grants(function_grants)
        self._account_tasks = bool(account_tasks)

    @property
    def kind(self) -> int:
        return self._kind

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def nca_id(self) -> str:
        return self._nca_id

    @property
    def authorities(self) -> frozenset[str]:
        return self._authorities

    @property
    def mask(self) -> int:
        return self._mask

    @property
    def key_id(self) -> str | None:
        return self._key_id

    @property
    def expires_at(self) -> float:
        return self._expires_at

    @property
    def account_functions(self) -> bool:
        return self._account_functions

    @property
    def authorized_functions(self) -> bool:
        return self._authorized_functions

    @property
    def function_grants(self) -> Mapping[str, frozenset[str] | None]:
        return self._function_grants

    @property
    def account_tasks(self) -> bool:
        return self._account_tasks

    def has_any(self, required_mask: int) -> bool:
        """True if the principal holds at least one of the bits of ``required_mask``."""
        return (self._mask & _check_mask(required_mask, "required_mask")) != 0

    def allows_function(
        self, function_id: str, version_id: str | None, owner_nca_id: str, shared_with_caller: bool
    ) -> bool:
        """The function resource rule (API keys only; JWT account checks are done elsewhere).

        An empty ``nca_id`` never matches the owner (so a key without an account gets no account
        functions).
        """
        if self._kind == KIND_JWT:
            return True
        if self._account_functions and self._nca_id and owner_nca_id == self._nca_id:
            return True
        if self._authorized_functions and shared_with_caller:
            return True
        if function_id in self._function_grants:
            versions = self._function_grants[function_id]
            return versions is None or version_id is None or version_id in versions
        return False

    def __repr__(self) -> str:
        return (
            f"Principal(kind={self._kind}, subject={self._subject!r}, nca_id={self._nca_id!r}, "
            f"key_id={self._key_id!r}, mask={self._mask:#x})"
        )


class CredentialCache:
    """In-process cache of verified credentials, keyed by the bearer token bytes exactly as sent.

    Never persisted. Eviction: when a new token is put into a full cache, the oldest-inserted
    entries are dropped until ``max_entries // 2`` remain (FIFO by insertion; ``get`` does not
    refresh an entry, re-``put`` does). Entries expire lazily: ``get`` drops an entry whose
    principal has ``now >= expires_at``. ``revoke_key`` uses an index key_id -> tokens.
    Not thread-safe (meant for one event loop).
    """

    __slots__ = ("_by_key", "_entries", "_max_entries")

    def __init__(self, max_entries: int = 100_000) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        self._max_entries = int(max_entries)
        self._entries: dict[bytes, Principal] = {}
        self._by_key: dict[str, set[bytes]] = {}

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, token: bytes, principal: Principal) -> None:
        _require_bytes(token, "token")
        if not isinstance(principal, Principal):
            raise TypeError("principal must be a Principal")
        entries = self._entries
        if token in entries:
            self._drop(token)
        elif len(entries) >= self._max_entries:
            self._evict()
        entries[token] = principal
        key_id = principal.key_id
        if key_id is not None:
            tokens = self._by_key.get(key_id)
            if tokens is None:
                self._by_key[key_id] = {token}
            else:
                tokens.add(token)

    def get(self, token: bytes, now: float) -> Principal | None:
        principal = self._entries.get(token)
        if principal is None:
            return None
        if now >= principal.expires_at:
            self._drop(token)
            return None
        return principal

    def revoke_key(self, key_id: str) -> int:
        tokens = self._by_key.get(key_id)
        if not tokens:
            return 0
        victims = list(tokens)
        for token in victims:
            self._drop(token)
        return len(victims)

    def revoke_subject(self, subject: str) -> int:
        victims = [token for token, principal in self._entries.items() if principal.subject == subject]
        for token in victims:
            self._drop(token)
        return len(victims)

    def clear(self) -> None:
        self._entries.clear()
        self._by_key.clear()

    def _evict(self) -> None:
        excess = len(self._entries) - self._max_entries // 2
        for token in list(islice(self._entries, excess)):
            self._drop(token)

    def _drop(self, token: bytes) -> None:
        principal = self._entries.pop(token)
        key_id = principal.key_id
        if key_id is not None:
            tokens = self._by_key.get(key_id)
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._by_key[key_id]


class Decision:
    """The outcome of ``HotPath.decide`` (immutable)."""

    __slots__ = (
        "_code",
        "_function_id",
        "_principal",
        "_request_id",
        "_route",
        "_service",
        "_token",
        "_version_id",
    )

    def __init__(
        self,
        code: int,
        service: int = SERVICE_UNKNOWN,
        route: int = ROUTE_NONE,
        function_id: str | None = None,
        version_id: str | None = None,
        request_id: str | None = None,
        principal: Principal | None = None,
        token: bytes | None = None,
    ) -> None:
        self._code = code
        self._service = service
        self._route = route
        self._function_id = function_id
        self._version_id = version_id
        self._request_id = request_id
        self._principal = principal
        self._token = token

    @property
    def code(self) -> int:
        return self._code

    @property
    def service(self) -> int:
        return self._service

    @property
    def route(self) -> int:
        return self._route

    @property
    def function_id(self) -> str | None:
        return self._function_id

    @property
    def version_id(self) -> str | None:
        return self._version_id

    @property
    def request_id(self) -> str | None:
        return self._request_id

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @property
    def token(self) -> bytes | None:
        return self._token

    def __repr__(self) -> str:
        # the token is a live credential: never put it in a repr
        return (
            f"Decision(code={self._code}, service={self._service}, route={self._route}, "
            f"function_id={self._function_id!r}, version_id={self._version_id!r}, "
            f"request_id={self._request_id!r}, principal={self._principal!r})"
        )


class HotPath:
    """Chains host classification, path matching, bearer extraction, cache lookup and scope check."""

    __slots__ = ("_cache", "_classifier", "_clock", "_invoke_mask")

    def __init__(
        self,
        classifier: HostClassifier,
        cache: CredentialCache,
        invoke_mask: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(classifier, HostClassifier):
            raise TypeError("classifier must be a HostClassifier of the same implementation")
        if not isinstance(cache, CredentialCache):
            raise TypeError("cache must be a CredentialCache of the same implementation")
        if not callable(clock):
            raise TypeError("clock must be callable")
        self._classifier = classifier
        self._cache = cache
        self._invoke_mask = _check_mask(invoke_mask, "invoke_mask")
        self._clock = clock

    @property
    def classifier(self) -> HostClassifier:
        return self._classifier

    @property
    def cache(self) -> CredentialCache:
        return self._cache

    @property
    def invoke_mask(self) -> int:
        return self._invoke_mask

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def decide(self, host: bytes, method: bytes, path: bytes, authorization: bytes | None) -> Decision:
        service, function_id, version_id = self._classifier.classify(host)
        if service == SERVICE_UNKNOWN:
            return Decision(DECIDE_UNKNOWN_HOST)
        route = ROUTE_NONE
        request_id = None
        if service == SERVICE_INVOCATION or service == SERVICE_API:
            route, first, second = match_invocation_path(method, path)
            if route == ROUTE_NONE:
                return Decision(DECIDE_NOT_HOT, service)
            if route == ROUTE_BAD_ID:
                return Decision(DECIDE_BAD_ID, service, route)
            if route == ROUTE_PEXEC_STATUS or route == ROUTE_EXEC_STATUS:
                request_id = first
            else:
                function_id, version_id = first, second
        elif service != SERVICE_FUNCTION:
            return Decision(DECIDE_NOT_HOT, service)
        status, token = extract_bearer(authorization)
        if token is None:
            code = DECIDE_NO_BEARER if status == BEARER_MISSING else DECIDE_BAD_BEARER
            return Decision(code, service, route, function_id, version_id, request_id)
        principal = self._cache.get(token, self._clock())
        if principal is None:
            code = DECIDE_CACHE_MISS
        elif principal.has_any(self._invoke_mask):
            code = DECIDE_OK
        else:
            code = DECIDE_FORBIDDEN
        return Decision(code, service, route, function_id, version_id, request_id, principal, token)
