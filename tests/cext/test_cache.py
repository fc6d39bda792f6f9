"""CredentialCache, against both twins."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest

from cext import hotpath_py as P


def principal(hp: ModuleType, subject: str = "user-1", key_id: str | None = "key-1", **kwargs: Any) -> Any:
    kind = P.KIND_API_KEY if key_id is not None else P.KIND_JWT
    return hp.Principal(kind, subject, "nca-1", frozenset(), 1, key_id=key_id, **kwargs)


def test_put_get(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    alice = principal(hp)
    assert len(cache) == 0
    assert cache.get(b"tok", 0.0) is None
    cache.put(b"tok", alice)
    assert len(cache) == 1
    assert cache.get(b"tok", 0.0) is alice
    assert cache.get(b"tok ", 0.0) is None
    assert cache.get(b"TOK", 0.0) is None  # tokens are exact bytes
    assert cache.get("tok", 0.0) is None


def test_put_replaces(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    old, new = principal(hp, key_id="key-1"), principal(hp, key_id="key-2")
    cache.put(b"tok", old)
    cache.put(b"tok", new)
    assert len(cache) == 1
    assert cache.get(b"tok", 0.0) is new
    assert cache.revoke_key("key-1") == 0
    assert cache.revoke_key("key-2") == 1
    assert len(cache) == 0


def test_expiry(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    cache.put(b"tok", principal(hp, expires_at=100.0))
    assert cache.get(b"tok", 99.999) is not None
    assert cache.get(b"tok", 100) is None  # now >= expires_at is expired
    assert len(cache) == 0
    assert cache.get(b"tok", 0.0) is None  # dropped, not just hidden
    assert cache.revoke_key("key-1") == 0  # and gone from the key index


def test_never_expires_by_default(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    cache.put(b"tok", principal(hp))
    assert cache.get(b"tok", 1e300) is not None
    assert cache.get(b"tok", math.inf) is None


def test_revoke_key(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    for i in range(5):
        cache.put(b"k1-%d" % i, principal(hp, key_id="key-1"))
    cache.put(b"k2", principal(hp, key_id="key-2"))
    cache.put(b"jwt", principal(hp, key_id=None))
    assert cache.revoke_key("key-1") == 5
    assert cache.revoke_key("key-1") == 0
    assert cache.revoke_key("missing") == 0
    assert len(cache) == 2
    assert cache.get(b"k2", 0.0) is not None
    assert cache.get(b"k1-0", 0.0) is None


def test_revoke_subject(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    cache.put(b"a1", principal(hp, subject="alice", key_id="ka"))
    cache.put(b"a2", principal(hp, subject="alice", key_id=None))
    cache.put(b"b1", principal(hp, subject="bob", key_id="kb"))
    assert cache.revoke_subject("alice") == 2
    assert cache.revoke_subject("alice") == 0
    assert len(cache) == 1
    assert cache.revoke_key("ka") == 0
    assert cache.revoke_key("kb") == 1


def test_clear(hp: ModuleType) -> None:
    cache = hp.CredentialCache()
    cache.put(b"a", principal(hp))
    cache.put(b"b", principal(hp))
    cache.clear()
    assert len(cache) == 0
    assert cache.revoke_key("key-1") == 0
    cache.put(b"a", principal(hp))
    assert len(cache) == 1


def test_eviction_drops_the_oldest_half(hp: ModuleType) -> None:
    cache = hp.CredentialCache(max_entries=10)
    assert cache.max_entries == 10
    for i in range(10):
        cache.put(b"t%d" % i, principal(hp, key_id=f"key-{i}"))
    assert len(cache) == 10
    cache.put(b"t10", principal(hp, key_id="key-10"))
    assert len(cache) == 6  # 5 oldest dropped, then the new one
    assert [cache.get(b"t%d" % i, 0.0) is not None for i in range(11)] == [False] * 5 + [True] * 6
    assert cache.revoke_key("key-0") == 0  # the index follows evictions
    assert cache.revoke_key("key-9") == 1


def test_replacing_does_not_evict(hp: ModuleType) -> None:
    cache = hp.CredentialCache(max_entries=3)
    for token in (b"a", b"b", b"c"):
        cache.put(token, principal(hp))
    cache.put(b"a", principal(hp))  # already present: replaced and becomes the newest
    assert len(cache) == 3
    cache.put(b"d", principal(hp))
    assert len(cache) == 2
    assert cache.get(b"a", 0.0) is not None and cache.get(b"d", 0.0) is not None


@pytest.mark.parametrize("max_entries", [1, 2, 7, 100])
def test_size_never_exceeds_bound(hp: ModuleType, max_entries: int) -> None:
    cache = hp.CredentialCache(max_entries=max_entries)
    for i in range(1000):
        cache.put(b"tok-%d" % i, principal(hp, key_id=f"key-{i % 13}"))
        assert 1 <= len(cache) <= max_entries
        assert cache.get(b"tok-%d" % i, 0.0) is not None  # the newest entry always survives


def test_cache_validation(hp: ModuleType) -> None:
    with pytest.raises(ValueError):
        hp.CredentialCache(max_entries=0)
    with pytest.raises(ValueError):
        hp.CredentialCache(max_entries=-5)
    cache = hp.CredentialCache()
    with pytest.raises(TypeError):
        cache.put("tok", principal(hp))
    with pytest.raises(TypeError):
        cache.put(b"tok", object())
    with pytest.raises(TypeError):
        cache.put(b"tok", None)
    with pytest.raises(TypeError):
        cache.get([], 0.0)


def test_principal_of_the_other_twin_is_rejected(twins: tuple[ModuleType, ModuleType]) -> None:
    py, c = twins
    with pytest.raises(TypeError):
        py.CredentialCache().put(b"tok", principal(c))
    with pytest.raises(TypeError):
        c.CredentialCache().put(b"tok", principal(py))
