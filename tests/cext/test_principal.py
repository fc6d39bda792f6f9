"""AuthorityTable and Principal, against both twins."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest

from cext import hotpath_py as P

FID = "12345678-9abc-4def-8123-456789abcdef"
FID2 = "22222222-9abc-4def-8123-456789abcdef"
VID = "0fedcba9-8765-4321-8fed-cba987654321"
VID2 = "11111111-8765-4321-8fed-cba987654321"
AUTHORITIES = [
    "invoke_function",
    "apikey:invoke_function",
    "list_functions",
    "apikey:list_functions",
    "account_setup",
]


def test_authority_bits_in_order(hp: ModuleType) -> None:
    table = hp.AuthorityTable(AUTHORITIES)
    assert [table.bit(name) for name in AUTHORITIES] == [1, 2, 4, 8, 16]
    assert table.names == tuple(AUTHORITIES)
    assert len(table) == 5


def test_jwt_and_api_key_scopes_are_distinct(hp: ModuleType) -> None:
    table = hp.AuthorityTable(AUTHORITIES)
    assert table.bit("invoke_function") != table.bit("apikey:invoke_function")
    assert table.bit("invoke_function") & table.bit("apikey:invoke_function") == 0


def test_unknown_authorities(hp: ModuleType) -> None:
    table = hp.AuthorityTable(AUTHORITIES)
    assert table.bit("nope") == 0
    assert table.bit("") == 0
    assert table.bit("INVOKE_FUNCTION") == 0  # authorities are case-sensitive
    assert table.mask(["nope", "invoke_function", "other"]) == 1
    assert table.mask([]) == 0
    assert table.any_of() == 0
    assert table.any_of("nope") == 0


def test_masks(hp: ModuleType) -> None:
    table = hp.AuthorityTable(AUTHORITIES)
    assert table.mask(["invoke_function", "account_setup"]) == 1 | 16
    assert table.mask(iter(("list_functions",))) == 4
    assert table.mask(frozenset({"apikey:list_functions", "list_functions"})) == 12
    assert table.any_of("invoke_function", "apikey:invoke_function") == 3
    assert table.any_of("invoke_function", "invoke_function") == 1


def test_duplicates_share_a_bit(hp: ModuleType) -> None:
    table = hp.AuthorityTable(["a", "b", "a", "c"])
    assert table.names == ("a", "b", "c")
    assert (table.bit("a"), table.bit("b"), table.bit("c")) == (1, 2, 4)


def test_sixty_four_authorities(hp: ModuleType) -> None:
    names = [f"scope{i}" for i in range(64)]
    table = hp.AuthorityTable(names)
    assert table.bit("scope63") == 1 << 63
    assert table.mask(names) == (1 << 64) - 1
    with pytest.raises(ValueError):
        hp.AuthorityTable([*names, "one-too-many"])
    assert len(hp.AuthorityTable([*names, "scope0"])) == 64


def test_authority_type_errors(hp: ModuleType) -> None:
    with pytest.raises(TypeError):
        hp.AuthorityTable("invoke_function")
    with pytest.raises(TypeError):
        hp.AuthorityTable([b"invoke_function"])
    table = hp.AuthorityTable(AUTHORITIES)
    with pytest.raises(TypeError):
        table.mask("invoke_function")


def api_key(hp: ModuleType, **kwargs: Any) -> Any:
    fields: dict[str, Any] = {
        "kind": P.KIND_API_KEY,
        "subject": "user-1",
        "nca_id": "nca-1",
        "authorities": frozenset({"apikey:invoke_function"}),
        "mask": 2,
        "key_id": "key-1",
    }
    fields.update(kwargs)
    return hp.Principal(**fields)


def test_principal_attributes(hp: ModuleType) -> None:
    principal = hp.Principal(
        P.KIND_API_KEY,
        "user-1",
        "nca-1",
        frozenset({"apikey:invoke_function"}),
        2,
        key_id="key-1",
        expires_at=1234.5,
        account_functions=True,
        authorized_functions=True,
        function_grants={FID: None, FID2: frozenset({VID})},
        account_tasks=True,
    )
    assert principal.kind == P.KIND_API_KEY
    assert principal.subject == "user-1"
    assert principal.nca_id == "nca-1"
    assert principal.authorities == frozenset({"apikey:invoke_function"})
    assert principal.mask == 2
    assert principal.key_id == "key-1"
    assert principal.expires_at == 1234.5
    assert principal.account_functions is True
    assert principal.authorized_functions is True
    assert principal.account_tasks is True
    assert dict(principal.function_grants) == {FID: None, FID2: frozenset({VID})}
    assert "user-1" in repr(principal)


def test_principal_defaults(hp: ModuleType) -> None:
    principal = hp.Principal(P.KIND_JWT, "sub", "nca", frozenset(), 0)
    assert principal.key_id is None
    assert principal.expires_at == math.inf
    assert type(principal.expires_at) is float
    assert principal.account_functions is False
    assert principal.authorized_functions is False
    assert principal.account_tasks is False
    assert dict(principal.function_grants) == {}


def test_principal_is_read_only(hp: ModuleType) -> None:
    principal = api_key(hp, function_grants={FID: frozenset({VID})})
    for name in ("kind", "subject", "nca_id", "authorities", "mask", "key_id", "expires_at"):
        with pytest.raises(AttributeError):
            setattr(principal, name, getattr(principal, name))
    with pytest.raises(TypeError):
        principal.function_grants[FID2] = None
    assert principal.authorities == frozenset({"apikey:invoke_function"})


def test_grants_are_copied_and_lowercased(hp: ModuleType) -> None:
    grants: dict[str, frozenset[str] | None] = {FID.upper(): frozenset({VID.upper()})}
    principal = api_key(hp, function_grants=grants)
    grants[FID2] = None
    assert dict(principal.function_grants) == {FID: frozenset({VID})}


def test_full_64_bit_mask(hp: ModuleType) -> None:
    principal = api_key(hp, mask=(1 << 64) - 1)
    assert principal.mask == (1 << 64) - 1
    assert principal.has_any(1 << 63)
    assert principal.has_any(1)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"kind": 0}, ValueError),
        ({"kind": 3}, ValueError),
        ({"kind": 1.0}, ValueError),
        ({"mask": -1}, ValueError),
        ({"mask": 1 << 64}, ValueError),
        ({"mask": 1.0}, TypeError),
        ({"mask": "1"}, TypeError),
        ({"subject": None}, TypeError),
        ({"subject": b"user"}, TypeError),
        ({"nca_id": None}, TypeError),
        ({"key_id": 7}, TypeError),
        ({"expires_at": math.nan}, ValueError),
        ({"expires_at": "1"}, TypeError),
        ({"function_grants": {FID: VID}}, TypeError),
        ({"function_grants": {FID: frozenset({7})}}, TypeError),
        ({"function_grants": {7: None}}, TypeError),
    ],
)
def test_principal_validation(hp: ModuleType, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        api_key(hp, **kwargs)


def test_has_any(hp: ModuleType) -> None:
    principal = api_key(hp, mask=0b1010)
    assert principal.has_any(0b0010)
    assert principal.has_any(0b1111)
    assert not principal.has_any(0b0101)
    assert not principal.has_any(0)  # an empty requirement (all authorities unknown) matches nothing
    with pytest.raises(ValueError):
        principal.has_any(-1)
    with pytest.raises(ValueError):
        principal.has_any(1 << 64)
    with pytest.raises(TypeError):
        principal.has_any("2")


def test_has_any_with_table(hp: ModuleType) -> None:
    table = hp.AuthorityTable(AUTHORITIES)
    required = table.any_of("invoke_function", "apikey:invoke_function")
    key = api_key(hp, mask=table.mask(["apikey:invoke_function"]))
    jwt = hp.Principal(P.KIND_JWT, "u", "n", frozenset({"invoke_function"}), table.mask(["invoke_function"]))
    lister = api_key(hp, mask=table.mask(["apikey:list_functions"]))
    assert key.has_any(required)
    assert jwt.has_any(required)
    assert not lister.has_any(required)


# (principal kwargs, (function_id, version_id, owner_nca_id, shared_with_caller), expected)
ALLOWS_CASES: list[tuple[dict[str, Any], tuple[str, str | None, str, bool], bool]] = [
    # JWT principals: always (account checks happen elsewhere)
    ({"kind": P.KIND_JWT}, (FID, VID, "other-nca", False), True),
    ({"kind": P.KIND_JWT, "nca_id": ""}, (FID, None, "", False), True),
    # nothing granted
    ({}, (FID, VID, "other-nca", False), False),
    ({}, (FID, None, "nca-1", False), False),
    ({}, (FID, None, "nca-1", True), False),
    # account functions: owner must be the key's account
    ({"account_functions": True}, (FID, VID, "nca-1", False), True),
    ({"account_functions": True}, (FID, None, "nca-1", False), True),
    ({"account_functions": True}, (FID, VID, "other-nca", False), False),
    ({"account_functions": True}, (FID, VID, "other-nca", True), False),
    ({"account_functions": True, "nca_id": ""}, (FID, VID, "", False), False),
    # authorized (shared) functions
    ({"authorized_functions": True}, (FID, VID, "other-nca", True), True),
    ({"authorized_functions": True}, (FID, VID, "other-nca", False), False),
    ({"authorized_functions": True}, (FID, VID, "nca-1", False), False),
    # explicit grants: all versions
    ({"function_grants": {FID: None}}, (FID, VID, "other-nca", False), True),
    ({"function_grants": {FID: None}}, (FID, None, "other-nca", False), True),
    ({"function_grants": {FID: None}}, (FID2, None, "other-nca", False), False),
    # explicit grants: some versions
    ({"function_grants": {FID: frozenset({VID})}}, (FID, VID, "other-nca", False), True),
    ({"function_grants": {FID: frozenset({VID})}}, (FID, VID2, "other-nca", False), False),
    ({"function_grants": {FID: frozenset({VID})}}, (FID, None, "other-nca", False), True),
    ({"function_grants": {FID: frozenset({VID})}}, (FID2, VID, "other-nca", False), False),
    ({"function_grants": {FID: frozenset()}}, (FID, VID, "other-nca", False), False),
    ({"function_grants": {FID: frozenset()}}, (FID, None, "other-nca", False), True),
    ({"function_grants": {FID: frozenset({VID, VID2})}}, (FID, VID2, "x", False), True),
    # grants combine with the account flags
    ({"account_functions": True, "function_grants": {FID2: None}}, (FID2, VID, "x", False), True),
    ({"account_functions": True, "function_grants": {FID2: None}}, (FID, VID, "x", False), False),
    ({"authorized_functions": True, "function_grants": {FID: frozenset()}}, (FID, VID, "x", True), True),
]


@pytest.mark.parametrize(("kwargs", "args", "expected"), ALLOWS_CASES)
def test_allows_function(
    hp: ModuleType, kwargs: dict[str, Any], args: tuple[str, str | None, str, bool], expected: bool
) -> None:
    principal = api_key(hp, **kwargs)
    assert principal.allows_function(*args) is expected
