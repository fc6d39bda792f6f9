"""Type stub of the compiled twin ``cext/hotpath_c.pyx`` (same API as ``cext.hotpath_py``)."""

from collections.abc import Callable, Iterable, Mapping, Sequence
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

class HostClassifier:
    def __init__(self, domain: str, services: Mapping[str, int], *, memo_max: int = 4096) -> None: ...
    @property
    def domain(self) -> str: ...
    @property
    def memo_size(self) -> int: ...
    @property
    def memo_max(self) -> int: ...
    def classify(self, host: bytes) -> tuple[int, str | None, str | None]: ...

def match_invocation_path(method: bytes, path: bytes) -> tuple[int, str | None, str | None]: ...
def extract_bearer(value: bytes | None) -> tuple[int, bytes | None]: ...

class AuthorityTable:
    def __init__(self, authorities: Sequence[str]) -> None: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    def __len__(self) -> int: ...
    def bit(self, name: str) -> int: ...
    def mask(self, names: Iterable[str]) -> int: ...
    def any_of(self, *names: str) -> int: ...

class Principal:
    @property
    def kind(self) -> int: ...
    @property
    def subject(self) -> str: ...
    @property
    def nca_id(self) -> str: ...
    @property
    def authorities(self) -> frozenset[str]: ...
    @property
    def mask(self) -> int: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def expires_at(self) -> float: ...
    @property
    def account_functions(self) -> bool: ...
    @property
    def authorized_functions(self) -> bool: ...
    @property
    def function_grants(self) -> Mapping[str, frozenset[str] | None]: ...
    @property
    def account_tasks(self) -> bool: ...
    def __init__(
        self,
        kind: int,
        subject: str,
        nca_id: str,
        authorities: frozenset[str],
        mask: int,
        key_id: str | None = None,
        expires_at: float = ...,
        account_functions: bool = False,
        authorized_functions: bool = False,
        function_grants: Mapping[str, frozenset[str] | None] | None = None,
        account_tasks: bool = False,
    ) -> None: ...
    def has_any(self, required_mask: int) -> bool: ...
    def allows_function(
        self, function_id: str, version_id: str | None, owner_nca_id: str, shared_with_caller: bool
    ) -> bool: ...

class CredentialCache:
    def __init__(self, max_entries: int = 100_000) -> None: ...
    @property
    def max_entries(self) -> int: ...
    def __len__(self) -> int: ...
    def put(self, token: bytes, principal: Principal) -> None: ...
    def get(self, token: bytes, now: float) -> Principal | None: ...
    def revoke_key(self, key_id: str) -> int: ...
    def revoke_subject(self, subject: str) -> int: ...
    def clear(self) -> None: ...

class Decision:
    def __init__(
        self,
        code: int,
        service: int = 0,
        route: int = 0,
        function_id: str | None = None,
        version_id: str | None = None,
        request_id: str | None = None,
        principal: Principal | None = None,
        token: bytes | None = None,
    ) -> None: ...
    @property
    def code(self) -> int: ...
    @property
    def service(self) -> int: ...
    @property
    def route(self) -> int: ...
    @property
    def function_id(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def principal(self) -> Principal | None: ...
    @property
    def token(self) -> bytes | None: ...

class HotPath:
    def __init__(
        self,
        classifier: HostClassifier,
        cache: CredentialCache,
        invoke_mask: int,
        clock: Callable[[], float] = ...,
    ) -> None: ...
    @property
    def classifier(self) -> HostClassifier: ...
    @property
    def cache(self) -> CredentialCache: ...
    @property
    def invoke_mask(self) -> int: ...
    @property
    def clock(self) -> Callable[[], float]: ...
    def decide(self, host: bytes, method: bytes, path: bytes, authorization: bytes | None) -> Decision: ...
