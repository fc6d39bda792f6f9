# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twin of ``cext.hotpath_py`` (same public API, identical results).

The reference semantics and their documentation live in ``cext/hotpath_py.py``; this module
re-implements the per-request work at C level on the raw ``bytes`` buffers:

* ``HostClassifier`` memoises by the raw Host bytes (one dict lookup on a hit) and parses misses in
  a stack buffer; the memo holds ``_HostInfo`` objects whose C fields ``decide`` reads directly;
* the invocation path is matched with ``memcmp``/``memchr`` and UUIDs are validated and lowercased
  through lookup tables straight into new ``str`` objects;
* the bearer is scanned in place and only the token is copied out;
* the cache is a dict probed with ``PyDict_GetItemWithError``; the scope check is a 64-bit AND;
* with the default clock (``time.time``) the time comes from ``clock_gettime(CLOCK_REALTIME)``;
* ``Decision`` objects come from a freelist.

Constructor-time validation (domain, services, grants, principal fields) is shared with the twin by
importing its helpers, so both reject exactly the same configuration.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError, PyDict_SetItem, PyDict_Size
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_1BYTE_DATA, PyUnicode_New
from libc.string cimport memchr, memcmp
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

import math
import time
from itertools import islice

from cext.hotpath_py import (
    _check_principal_args,
    _freeze_grants,
    _normalise_domain,
    _normalise_services,
)

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

cdef enum:
    C_SERVICE_UNKNOWN = 0
    C_SERVICE_API = 1
    C_SERVICE_INVOCATION = 2
    C_SERVICE_FUNCTION = 3

    C_ROUTE_NONE = 0
    C_ROUTE_PEXEC = 1
    C_ROUTE_PEXEC_VERSION = 2
    C_ROUTE_PEXEC_STATUS = 3
    C_ROUTE_EXEC = 4
    C_ROUTE_EXEC_VERSION = 5
    C_ROUTE_EXEC_STATUS = 6
    C_ROUTE_BAD_ID = 7

    C_BEARER_MISSING = 0
    C_BEARER_MALFORMED = 1
    C_BEARER_OK = 2

    C_KIND_JWT = 1
    C_KIND_API_KEY = 2

    C_DECIDE_OK = 0
    C_DECIDE_NOT_HOT = 1
    C_DECIDE_UNKNOWN_HOST = 2
    C_DECIDE_NO_BEARER = 3
    C_DECIDE_BAD_BEARER = 4
    C_DECIDE_CACHE_MISS = 5
    C_DECIDE_FORBIDDEN = 6
    C_DECIDE_BAD_ID = 7

    C_MAX_AUTHORITIES = 64
    C_MAX_TOKEN_BYTES = 8192
    C_MEMO_MAX_DEFAULT = 4096

    MAX_NAME = 253
    MAX_LABEL = 63
    MAX_PORT_DIGITS = 5
    MAX_RAW_HOST = MAX_NAME + 2 + MAX_PORT_DIGITS
    MAX_LABELS = (MAX_NAME + 1) // 2 + 1
    UUID_LEN = 36

    CL_LABEL = 1
    CL_HEX = 2
    CL_DIGIT = 4

SERVICE_UNKNOWN = C_SERVICE_UNKNOWN
SERVICE_API = C_SERVICE_API
SERVICE_INVOCATION = C_SERVICE_INVOCATION
SERVICE_FUNCTION = C_SERVICE_FUNCTION
SERVICE_API_KEYS = 4
SERVICE_TASKS = 5
SERVICE_SIS = 6
SERVICE_NICO = 7
SERVICE_LLM = 8

ROUTE_NONE = C_ROUTE_NONE
ROUTE_PEXEC = C_ROUTE_PEXEC
ROUTE_PEXEC_VERSION = C_ROUTE_PEXEC_VERSION
ROUTE_PEXEC_STATUS = C_ROUTE_PEXEC_STATUS
ROUTE_EXEC = C_ROUTE_EXEC
ROUTE_EXEC_VERSION = C_ROUTE_EXEC_VERSION
ROUTE_EXEC_STATUS = C_ROUTE_EXEC_STATUS
ROUTE_BAD_ID = C_ROUTE_BAD_ID

BEARER_MISSING = C_BEARER_MISSING
BEARER_MALFORMED = C_BEARER_MALFORMED
BEARER_OK = C_BEARER_OK

KIND_JWT = C_KIND_JWT
KIND_API_KEY = C_KIND_API_KEY

DECIDE_OK = C_DECIDE_OK
DECIDE_NOT_HOT = C_DECIDE_NOT_HOT
DECIDE_UNKNOWN_HOST = C_DECIDE_UNKNOWN_HOST
DECIDE_NO_BEARER = C_DECIDE_NO_BEARER
DECIDE_BAD_BEARER = C_DECIDE_BAD_BEARER
DECIDE_CACHE_MISS = C_DECIDE_CACHE_MISS
DECIDE_FORBIDDEN = C_DECIDE_FORBIDDEN
DECIDE_BAD_ID = C_DECIDE_BAD_ID

MAX_AUTHORITIES = C_MAX_AUTHORITIES
MAX_TOKEN_BYTES = C_MAX_TOKEN_BYTES
MEMO_MAX_DEFAULT = C_MEMO_MAX_DEFAULT

cdef object _MASK_LIMIT = 1 << 64
cdef object _SYSTEM_CLOCK = time.time

# ---------------------------------------------------------------------------------------------------
# byte tables

cdef unsigned char _LOWER[256]
cdef unsigned char _CLASS[256]


cdef void _init_tables() noexcept:
    cdef int i
    for i in range(256):
        _LOWER[i] = <unsigned char>(i + 32 if 65 <= i <= 90 else i)
        _CLASS[i] = 0
    for i in range(ord("a"), ord("z") + 1):
        _CLASS[i] |= CL_LABEL
    for i in range(ord("0"), ord("9") + 1):
        _CLASS[i] |= CL_LABEL | CL_HEX | CL_DIGIT
    for i in range(ord("a"), ord("f") + 1):
        _CLASS[i] |= CL_HEX
        _CLASS[i - 32] |= CL_HEX
    _CLASS[ord("-")] |= CL_LABEL
    _CLASS[ord("_")] |= CL_LABEL


_init_tables()


cdef inline bint _is_uuid(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """8-4-4-4-12 hexadecimal, either case (branch-free over the hex digits)."""
    cdef Py_ssize_t i
    cdef unsigned char acc = CL_HEX
    if n != UUID_LEN:
        return False
    if p[8] != 45 or p[13] != 45 or p[18] != 45 or p[23] != 45:  # '-'
        return False
    for i in range(8):
        acc &= _CLASS[p[i]]
    for i in range(9, 13):
        acc &= _CLASS[p[i]]
    for i in range(14, 18):
        acc &= _CLASS[p[i]]
    for i in range(19, 23):
        acc &= _CLASS[p[i]]
    for i in range(24, 36):
        acc &= _CLASS[p[i]]
    return acc != 0


cdef inline str _uuid_str(const unsigned char* p):
    """New lowercase str from 36 bytes already validated by ``_is_uuid``.

    OR-ing 0x20 lowercases A-F and leaves 0-9 and '-' unchanged (they already have that bit).
    """
    cdef str s = PyUnicode_New(UUID_LEN, 127)
    cdef unsigned char* d = <unsigned char*>PyUnicode_1BYTE_DATA(s)
    cdef Py_ssize_t i
    for i in range(UUID_LEN):
        d[i] = p[i] | 0x20
    return s


cdef inline const unsigned char* _buf(object b) noexcept:
    """The buffer of a ``bytes`` (or subclass) object already checked with ``PyBytes_Check``."""
    return <const unsigned char*>PyBytes_AS_STRING(b)


cdef inline void _require_bytes(object value, str what) except *:
    if not PyBytes_Check(value):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


cdef unsigned long long _as_mask(object value, str what) except? 0:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if value < 0 or value >= _MASK_LIMIT:
        raise ValueError(f"{what} must fit in 64 bits (0 <= {what} < 2**64)")
    return <unsigned long long>value


# ---------------------------------------------------------------------------------------------------
# host classification

@cython.final
cdef class _HostInfo:
    cdef int service
    cdef str function_id
    cdef str version_id
    cdef tuple as_tuple


cdef _HostInfo _make_info(object service, str function_id, str version_id):
    cdef _HostInfo info = _HostInfo.__new__(_HostInfo)
    info.service = service
    info.function_id = function_id
    info.version_id = version_id
    info.as_tuple = (service, function_id, version_id)
    return info


cdef _HostInfo _UNKNOWN_INFO = _make_info(C_SERVICE_UNKNOWN, None, None)


cdef class HostClassifier:
    """Maps a ``Host`` header value to ``(service, function_id, version_id)`` (see the twin)."""

    cdef dict _memo
    cdef Py_ssize_t _memo_max
    cdef dict _services
    cdef bint _invocation
    cdef bytes _domain_b
    cdef Py_ssize_t _domain_labels
    cdef str _domain

    def __init__(self, domain, services, *, memo_max=C_MEMO_MAX_DEFAULT):
        if not isinstance(memo_max, int) or memo_max < 1:
            raise ValueError("memo_max must be a positive int")
        labels = _normalise_domain(domain)
        self._domain_b = b".".join(labels)
        self._domain_labels = len(labels)
        self._domain = self._domain_b.decode("ascii")
        self._services = _normalise_services(services)
        self._invocation = b"invocation" in self._services
        self._memo = {}
        self._memo_max = memo_max

    @property
    def domain(self):
        return self._domain

    @property
    def memo_size(self):
        return PyDict_Size(self._memo)

    @property
    def memo_max(self):
        return self._memo_max

    def classify(self, host):
        return self._lookup(host).as_tuple

    cdef _HostInfo _lookup(self, object host):
        _require_bytes(host, "host")
        cdef PyObject* hit = PyDict_GetItemWithError(self._memo, host)
        if hit != NULL:
            return <_HostInfo>hit
        cdef Py_ssize_t n = PyBytes_GET_SIZE(host)
        if n > MAX_RAW_HOST:
            return _UNKNOWN_INFO
        cdef _HostInfo info = self._parse(_buf(host), n)
        if PyDict_Size(self._memo) >= self._memo_max:
            self._memo.clear()
        PyDict_SetItem(self._memo, host, info)
        return info

    cdef _HostInfo _parse(self, const unsigned char* raw, Py_ssize_t n):
        cdef unsigned char buf[MAX_RAW_HOST]
        cdef Py_ssize_t starts[MAX_LABELS]
        cdef Py_ssize_t lens[MAX_LABELS]
        cdef Py_ssize_t i, start, count
        cdef unsigned char c
        cdef Py_ssize_t dl = PyBytes_GET_SIZE(self._domain_b)
        if n == 0:
            return _UNKNOWN_INFO
        for i in range(n):
            c = raw[i]
            if c >= 128:
                return _UNKNOWN_INFO
            buf[i] = _LOWER[c]
        # port: after the last ':', at most 5 digits (may be empty)
        i = n - 1
        while i >= 0 and buf[i] != 58:  # ':'
            i -= 1
        if i >= 0:
            if n - i - 1 > MAX_PORT_DIGITS:
                return _UNKNOWN_INFO
            for start in range(i + 1, n):
                if not (_CLASS[buf[start]] & CL_DIGIT):
                    return _UNKNOWN_INFO
            n = i
        if n > 0 and buf[n - 1] == 46:  # one trailing '.'
            n -= 1
        if n == 0 or n > MAX_NAME:
            return _UNKNOWN_INFO
        count = 0
        start = 0
        for i in range(n + 1):
            if i == n or buf[i] == 46:
                if i == start or i - start > MAX_LABEL:
                    return _UNKNOWN_INFO
                starts[count] = start
                lens[count] = i - start
                count += 1
                start = i + 1
            elif not (_CLASS[buf[i]] & CL_LABEL):
                return _UNKNOWN_INFO
        if (
            dl > 0
            and n >= dl
            and memcmp(buf + n - dl, PyBytes_AS_STRING(self._domain_b), dl) == 0
            and (n == dl or buf[n - dl - 1] == 46)
        ):
            if n == dl:
                return _UNKNOWN_INFO
            return self._from_prefix(buf, starts, lens, count - self._domain_labels)
        return self._from_leading(buf, starts, lens, count)

    cdef _HostInfo _from_prefix(
        self, const unsigned char* buf, const Py_ssize_t* starts, const Py_ssize_t* lens, Py_ssize_t count
    ):
        cdef const unsigned char* a
        cdef const unsigned char* b
        if count == 1:
            code = self._services.get(PyBytes_FromStringAndSize(<const char*>buf + starts[0], lens[0]))
            return _UNKNOWN_INFO if code is None else _make_info(code, None, None)
        if count == 2:  # a service of its own under the invocation host (llm.invocation)
            code = self._services.get(
                PyBytes_FromStringAndSize(<const char*>buf + starts[0], starts[1] + lens[1] - starts[0])
            )
            if code is not None:
                return _make_info(code, None, None)
        if not self._invocation or not _is_invocation(buf, starts, lens, count - 1):
            return _UNKNOWN_INFO
        a = buf + starts[0]
        if count == 2:
            if not _is_uuid(a, lens[0]):
                return _UNKNOWN_INFO
            return _make_info(C_SERVICE_FUNCTION, _uuid_str(a), None)
        if count == 3:
            b = buf + starts[1]
            if not _is_uuid(a, lens[0]) or not _is_uuid(b, lens[1]):
                return _UNKNOWN_INFO
            return _make_info(C_SERVICE_FUNCTION, _uuid_str(b), _uuid_str(a))
        return _UNKNOWN_INFO

    cdef _HostInfo _from_leading(
        self, const unsigned char* buf, const Py_ssize_t* starts, const Py_ssize_t* lens, Py_ssize_t count
    ):
        if PyBytes_FromStringAndSize(<const char*>buf + starts[0], lens[0]) in self._services:
            return self._from_prefix(buf, starts, lens, 1) if count >= 2 else _UNKNOWN_INFO
        if count >= 3 and _is_invocation(buf, starts, lens, 1):
            return self._from_prefix(buf, starts, lens, 2)
        if count >= 4 and _is_invocation(buf, starts, lens, 2):
            return self._from_prefix(buf, starts, lens, 3)
        return _UNKNOWN_INFO


cdef inline bint _is_invocation(
    const unsigned char* buf, const Py_ssize_t* starts, const Py_ssize_t* lens, Py_ssize_t k
) noexcept nogil:
    return lens[k] == 10 and memcmp(buf + starts[k], b"invocation", 10) == 0


# ---------------------------------------------------------------------------------------------------
# invocation paths

cdef struct _PathMatch:
    int route
    Py_ssize_t id1
    Py_ssize_t id2


cdef inline bint _starts(const unsigned char* p, Py_ssize_t n, const char* lit, Py_ssize_t ln) noexcept nogil:
    return n >= ln and memcmp(p, lit, ln) == 0


cdef _PathMatch _match_path(
    const unsigned char* m, Py_ssize_t ml, const unsigned char* p, Py_ssize_t n
) noexcept nogil:
    cdef _PathMatch res
    cdef int base
    cdef bint status
    cdef Py_ssize_t a, b, alen
    cdef const unsigned char* q
    res.route = C_ROUTE_NONE
    res.id1 = -1
    res.id2 = -1
    q = <const unsigned char*>memchr(p, 63, n)  # '?'
    if q != NULL:
        n = q - p
    if n > 0 and p[n - 1] == 47:  # one trailing '/'
        n -= 1
    if not _starts(p, n, b"/v2/nvcf/", 9):
        return res
    a = 9
    if _starts(p + a, n - a, b"pexec/", 6):
        base = 0
        a += 6
    elif _starts(p + a, n - a, b"exec/", 5):
        base = C_ROUTE_EXEC - C_ROUTE_PEXEC
        a += 5
    else:
        return res
    if _starts(p + a, n - a, b"functions/", 10):
        status = False
        a += 10
    elif _starts(p + a, n - a, b"status/", 7):
        status = True
        a += 7
    else:
        return res
    q = <const unsigned char*>memchr(p + a, 47, n - a)  # '/'
    if status:
        if q != NULL or ml != 3 or memcmp(m, b"GET", 3) != 0:
            return res
        if not _is_uuid(p + a, n - a):
            res.route = C_ROUTE_BAD_ID
            return res
        res.route = C_ROUTE_PEXEC_STATUS + base
        res.id1 = a
        return res
    if ml != 4 or memcmp(m, b"POST", 4) != 0:
        return res
    if q == NULL:
        if not _is_uuid(p + a, n - a):
            res.route = C_ROUTE_BAD_ID
            return res
        res.route = C_ROUTE_PEXEC + base
        res.id1 = a
        return res
    alen = q - (p + a)
    b = a + alen + 1
    if not _starts(p + b, n - b, b"versions/", 9):
        return res
    b += 9
    if memchr(p + b, 47, n - b) != NULL:
        return res
    if not _is_uuid(p + a, alen) or not _is_uuid(p + b, n - b):
        res.route = C_ROUTE_BAD_ID
        return res
    res.route = C_ROUTE_PEXEC_VERSION + base
    res.id1 = a
    res.id2 = b
    return res


def match_invocation_path(method, path):
    """Match an NVCF invocation route; ``(route, id1, id2)`` (see the ``ROUTE_*`` constants)."""
    _require_bytes(method, "method")
    _require_bytes(path, "path")
    cdef const unsigned char* p = _buf(path)
    cdef _PathMatch pm = _match_path(_buf(method), PyBytes_GET_SIZE(method), p, PyBytes_GET_SIZE(path))
    if pm.route == C_ROUTE_NONE or pm.route == C_ROUTE_BAD_ID:
        return (pm.route, None, None)
    return (pm.route, _uuid_str(p + pm.id1), _uuid_str(p + pm.id2) if pm.id2 >= 0 else None)


# ---------------------------------------------------------------------------------------------------
# bearer

cdef int _scan_bearer(
    const unsigned char* s, Py_ssize_t n, Py_ssize_t* tok_start, Py_ssize_t* tok_len
) noexcept nogil:
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t i
    cdef unsigned char bad = 0
    while start < n and (s[start] == 32 or s[start] == 9):
        start += 1
    while n > start and (s[n - 1] == 32 or s[n - 1] == 9):
        n -= 1
    if n == start:
        return C_BEARER_MISSING
    if (
        n - start < 8
        or s[start + 6] != 32
        or _LOWER[s[start]] != 98  # b
        or _LOWER[s[start + 1]] != 101  # e
        or _LOWER[s[start + 2]] != 97  # a
        or _LOWER[s[start + 3]] != 114  # r
        or _LOWER[s[start + 4]] != 101  # e
        or _LOWER[s[start + 5]] != 114  # r
    ):
        return C_BEARER_MALFORMED
    start += 7
    while start < n and s[start] == 32:
        start += 1
    if n - start == 0 or n - start > C_MAX_TOKEN_BYTES:
        return C_BEARER_MALFORMED
    for i in range(start, n):  # branch-free so that the compiler vectorises it
        bad |= <unsigned char>(s[i] - 0x21) > 0x7E - 0x21
    if bad:
        return C_BEARER_MALFORMED
    tok_start[0] = start
    tok_len[0] = n - start
    return C_BEARER_OK


def extract_bearer(value):
    """Parse an ``Authorization`` header value; ``(BEARER_*, token or None)``."""
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t length = 0
    if value is None:
        return (C_BEARER_MISSING, None)
    _require_bytes(value, "authorization")
    cdef const unsigned char* s = _buf(value)
    cdef int status = _scan_bearer(s, PyBytes_GET_SIZE(value), &start, &length)
    if status != C_BEARER_OK:
        return (status, None)
    return (C_BEARER_OK, PyBytes_FromStringAndSize(<const char*>s + start, length))


# ---------------------------------------------------------------------------------------------------
# authorities and principals

cdef class AuthorityTable:
    """Assigns each distinct authority string one bit of a 64-bit mask (see the twin)."""

    cdef dict _bits
    cdef tuple _names

    def __init__(self, authorities):
        if isinstance(authorities, str):
            raise TypeError("authorities must be a sequence of str, not a str")
        cdef dict bits = {}
        for name in authorities:
            if not isinstance(name, str):
                raise TypeError(f"authority must be str, not {type(name).__name__}")
            if name not in bits:
                if len(bits) >= C_MAX_AUTHORITIES:
                    raise ValueError(f"at most {C_MAX_AUTHORITIES} distinct authorities are supported")
                bits[name] = <object>1 << len(bits)  # a Python int: bit 63 must not overflow
        self._bits = bits
        self._names = tuple(bits)

    @property
    def names(self):
        return self._names

    def __len__(self):
        return len(self._names)

    def bit(self, name):
        return self._bits.get(name, 0)

    def mask(self, names):
        if isinstance(names, str):
            raise TypeError("names must be an iterable of str, not a str")
        cdef dict bits = self._bits
        result = 0
        for name in names:
            result |= bits.get(name, 0)
        return result

    def any_of(self, *names):
        return self.mask(names)


cdef class Principal:
    """An authenticated caller, as cached by ``CredentialCache`` (immutable; see the twin)."""

    cdef readonly int kind
    cdef readonly str subject
    cdef readonly str nca_id
    cdef readonly frozenset authorities
    cdef readonly unsigned long long mask
    cdef readonly str key_id
    cdef readonly double expires_at
    cdef readonly bint account_functions
    cdef readonly bint authorized_functions
    cdef readonly object function_grants
    cdef readonly bint account_tasks

    def __init__(
        self,
        kind,
        subject,
        nca_id,
        authorities,
        mask,
        key_id=None,
        expires_at=math.inf,
        account_functions=False,
        authorized_functions=False,
        function_grants=None,
        account_tasks=False,
    ):
        _check_principal_args(kind, subject, nca_id, key_id)
        if not isinstance(expires_at, (int, float)):
            raise TypeError("expires_at must be a number")
        cdef double expiry = float(expires_at)
        if math.isnan(expiry):
            raise ValueError("expires_at must not be NaN")
        self.kind = kind
        self.subject = subject
        self.nca_id = nca_id
        self.authorities = frozenset(authorities)
        self.mask = _as_mask(mask, "mask")
        self.key_id = key_id
        self.expires_at = expiry
        self.account_functions = bool(account_functions)
        self.authorized_functions = bool(authorized_functions)
        self.function_grants = _freeze_grants(function_grants)
        self.account_tasks = bool(account_tasks)

    def has_any(self, required_mask):
        """True if the principal holds at least one of the bits of ``required_mask``."""
        return (self.mask & _as_mask(required_mask, "required_mask")) != 0

    def allows_function(self, function_id, version_id, owner_nca_id, shared_with_caller):
        """The function resource rule (API keys only; JWT account checks are done elsewhere)."""
        if self.kind == C_KIND_JWT:
            return True
        if self.account_functions and self.nca_id and owner_nca_id == self.nca_id:
            return True
        if self.authorized_functions and shared_with_caller:
            return True
        if function_id in self.function_grants:
            versions = self.function_grants[function_id]
            return versions is None or version_id is None or version_id in versions
        return False

    def __repr__(self):
        return (
            f"Principal(kind={self.kind}, subject={self.subject!r}, nca_id={self.nca_id!r}, "
            f"key_id={self.key_id!r}, mask={self.mask:#x})"
        )


# ---------------------------------------------------------------------------------------------------
# credential cache

cdef class CredentialCache:
    """In-process cache of verified credentials keyed by the bearer token bytes (see the twin).

    Eviction: when a new token is put into a full cache, the oldest-inserted entries are dropped
    until ``max_entries // 2`` remain.
    """

    cdef dict _entries
    cdef dict _by_key
    cdef Py_ssize_t _max_entries

    def __init__(self, max_entries=100_000):
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        self._max_entries = max_entries
        self._entries = {}
        self._by_key = {}

    @property
    def max_entries(self):
        return self._max_entries

    def __len__(self):
        return PyDict_Size(self._entries)

    def put(self, token, principal):
        _require_bytes(token, "token")
        if not isinstance(principal, Principal):
            raise TypeError("principal must be a Principal")
        if token in self._entries:
            self._drop(token)
        elif PyDict_Size(self._entries) >= self._max_entries:
            self._evict()
        self._entries[token] = principal
        key_id = (<Principal>principal).key_id
        if key_id is not None:
            tokens = self._by_key.get(key_id)
            if tokens is None:
                self._by_key[key_id] = {token}
            else:
                tokens.add(token)

    def get(self, token, now):
        return self._get_obj(token, now)

    cdef Principal _get_obj(self, object token, object now):
        """``get`` with Python-object time (custom clocks compare exactly as in the twin)."""
        cdef PyObject* hit = PyDict_GetItemWithError(self._entries, token)
        if hit == NULL:
            return None
        cdef Principal principal = <Principal>hit
        if now >= principal.expires_at:
            self._drop(token)
            return None
        return principal

    cdef inline Principal _get(self, bytes token, double now):
        cdef PyObject* hit = PyDict_GetItemWithError(self._entries, token)
        if hit == NULL:
            return None
        cdef Principal principal = <Principal>hit
        if now >= principal.expires_at:
            self._drop(token)
            return None
        return principal

    def revoke_key(self, key_id):
        tokens = self._by_key.get(key_id)
        if not tokens:
            return 0
        victims = list(tokens)
        for token in victims:
            self._drop(token)
        return len(victims)

    def revoke_subject(self, subject):
        victims = [
            token for token, principal in self._entries.items() if (<Principal>principal).subject == subject
        ]
        for token in victims:
            self._drop(token)
        return len(victims)

    def clear(self):
        self._entries.clear()
        self._by_key.clear()

    cdef void _evict(self) except *:
        cdef Py_ssize_t excess = PyDict_Size(self._entries) - self._max_entries // 2
        for token in list(islice(self._entries, excess)):
            self._drop(token)

    cdef void _drop(self, object token) except *:
        cdef Principal principal = self._entries.pop(token)
        key_id = principal.key_id
        if key_id is not None:
            tokens = self._by_key.get(key_id)
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._by_key[key_id]


# ---------------------------------------------------------------------------------------------------
# decision

@cython.final
@cython.freelist(32)
cdef class Decision:
    """The outcome of ``HotPath.decide`` (immutable)."""

    cdef readonly int code
    cdef readonly int service
    cdef readonly int route
    cdef readonly str function_id
    cdef readonly str version_id
    cdef readonly str request_id
    cdef readonly Principal principal
    cdef readonly bytes token

    def __init__(
        self,
        int code,
        int service=C_SERVICE_UNKNOWN,
        int route=C_ROUTE_NONE,
        str function_id=None,
        str version_id=None,
        str request_id=None,
        Principal principal=None,
        bytes token=None,
    ):
        self.code = code
        self.service = service
        self.route = route
        self.function_id = function_id
        self.version_id = version_id
        self.request_id = request_id
        self.principal = principal
        self.token = token

    def __repr__(self):
        # the token is a live credential: never put it in a repr
        return (
            f"Decision(code={self.code}, service={self.service}, route={self.route}, "
            f"function_id={self.function_id!r}, version_id={self.version_id!r}, "
            f"request_id={self.request_id!r}, principal={self.principal!r})"
        )


cdef inline Decision _decision(int code, int service, int route):
    cdef Decision d = Decision.__new__(Decision)
    d.code = code
    d.service = service
    d.route = route
    return d


# ---------------------------------------------------------------------------------------------------
# hot path

cdef class HotPath:
    """Chains host classification, path matching, bearer extraction, cache lookup and scope check."""

    cdef readonly HostClassifier classifier
    cdef readonly CredentialCache cache
    cdef readonly unsigned long long invoke_mask
    cdef readonly object clock
    cdef bint _system_clock

    def __init__(self, classifier, cache, invoke_mask, clock=time.time):
        if not isinstance(classifier, HostClassifier):
            raise TypeError("classifier must be a HostClassifier of the same implementation")
        if not isinstance(cache, CredentialCache):
            raise TypeError("cache must be a CredentialCache of the same implementation")
        if not callable(clock):
            raise TypeError("clock must be callable")
        self.classifier = classifier
        self.cache = cache
        self.invoke_mask = _as_mask(invoke_mask, "invoke_mask")
        self.clock = clock
        self._system_clock = clock is _SYSTEM_CLOCK


    def decide(self, host, method, path, authorization):
        cdef _HostInfo info = self.classifier._lookup(host)
        cdef int service = info.service
        cdef int route = C_ROUTE_NONE
        cdef _PathMatch pm
        cdef const unsigned char* p
        cdef Decision d
        cdef str function_id = info.function_id
        cdef str version_id = info.version_id
        cdef str request_id = None
        if service == C_SERVICE_UNKNOWN:
            return _decision(C_DECIDE_UNKNOWN_HOST, C_SERVICE_UNKNOWN, C_ROUTE_NONE)
        if service == C_SERVICE_INVOCATION or service == C_SERVICE_API:
            _require_bytes(method, "method")
            _require_bytes(path, "path")
            p = _buf(path)
            pm = _match_path(_buf(method), PyBytes_GET_SIZE(method), p, PyBytes_GET_SIZE(path))
            route = pm.route
            if route == C_ROUTE_NONE:
                return _decision(C_DECIDE_NOT_HOT, service, C_ROUTE_NONE)
            if route == C_ROUTE_BAD_ID:
                return _decision(C_DECIDE_BAD_ID, service, route)
            if route == C_ROUTE_PEXEC_STATUS or route == C_ROUTE_EXEC_STATUS:
                request_id = _uuid_str(p + pm.id1)
            else:
                function_id = _uuid_str(p + pm.id1)
                version_id = _uuid_str(p + pm.id2) if pm.id2 >= 0 else None
        elif service != C_SERVICE_FUNCTION:
            return _decision(C_DECIDE_NOT_HOT, service, C_ROUTE_NONE)
        d = _decision(C_DECIDE_NO_BEARER, service, route)
        d.function_id = function_id
        d.version_id = version_id
        d.request_id = request_id
        if authorization is None:
            return d
        _require_bytes(authorization, "authorization")
        return self._authenticate(d, authorization)

    cdef Decision _authenticate(self, Decision d, object authorization):
        cdef Py_ssize_t start = 0
        cdef Py_ssize_t length = 0
        cdef const unsigned char* s = _buf(authorization)
        cdef int status = _scan_bearer(s, PyBytes_GET_SIZE(authorization), &start, &length)
        if status != C_BEARER_OK:
            d.code = C_DECIDE_NO_BEARER if status == C_BEARER_MISSING else C_DECIDE_BAD_BEARER
            return d
        cdef bytes token = PyBytes_FromStringAndSize(<const char*>s + start, length)
        cdef Principal principal
        cdef timespec ts
        if self._system_clock:
            clock_gettime(CLOCK_REALTIME, &ts)
            principal = self.cache._get(token, <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9)
        else:
            principal = self.cache._get_obj(token, self.clock())
        d.token = token
        if principal is None:
            d.code = C_DECIDE_CACHE_MISS
            return d
        d.principal = principal
        d.code = C_DECIDE_OK if (principal.mask & self.invoke_mask) != 0 else C_DECIDE_FORBIDDEN
        return d
