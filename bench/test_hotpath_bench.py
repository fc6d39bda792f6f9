"""Micro-benchmarks of the per-request hot path, pure-Python twin vs compiled twin.

Run ``pytest bench/test_hotpath_bench.py --benchmark-only`` for timings (groups ``hotpath-decide``,
``hotpath-classify``, ``hotpath-path``, ``hotpath-bearer``; ids ``py`` and ``c``). Under
``--benchmark-disable`` (or any plain run of the test suite) each case executes once as a smoke
test. The ``c`` case is skipped when ``CFGATE_NO_EXTENSIONS`` is set, and fails when extensions are
enabled but ``cext.hotpath_c`` is not built. Nothing here asserts on timings.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from cext import hotpath_py

FID = "6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
VID = "f0e1d2c3-b4a5-4968-8776-655443322110"
HOST = b"invocation.localhost:8080"
METHOD = b"POST"
PATH = f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}".encode()
API_KEY = b"nvapi-" + b"Xk3_9QmZpT7vR2wLc8YhN4bJ6dFgS1aE5uK0oHiVxWqBrCnMtPyDlGeAsUjIfOz-2Rt4Wv"
AUTHORIZATION = b"Bearer " + API_KEY
SERVICES = {"api": 1, "invocation": 2, "api-keys": 4}
# rounds of >= 200 us so that sub-microsecond calls are looped many times per timer read
ROUNDS: dict[str, Any] = {"min_time": 0.0002, "warmup": True, "warmup_iterations": 10_000}

_EXTENSIONS_DISABLED = os.environ.get("CFGATE_NO_EXTENSIONS", "") not in ("", "0")
_TWINS = [
    "py",
    pytest.param("c", marks=pytest.mark.skipif(_EXTENSIONS_DISABLED, reason="CFGATE_NO_EXTENSIONS is set")),
]


@pytest.fixture(params=_TWINS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "py":
        return hotpath_py
    try:
        return importlib.import_module("cext.hotpath_c")
    except ImportError as exc:
        pytest.fail(f"cext.hotpath_c is not built ({exc}); run `python setup.py build_ext --inplace`")


def _hot_path(hp: ModuleType) -> Any:
    table = hp.AuthorityTable(["invoke_function", "apikey:invoke_function", "apikey:list_functions"])
    cache = hp.CredentialCache()
    for i in range(1000):  # a realistically populated cache
        cache.put(
            b"nvapi-filler-%06d" % i,
            hp.Principal(hp.KIND_API_KEY, f"u{i}", "nca", frozenset(), 4, key_id=f"k{i}"),
        )
    cache.put(
        API_KEY,
        hp.Principal(
            hp.KIND_API_KEY,
            "user-1",
            "nca-1",
            frozenset({"apikey:invoke_function"}),
            table.mask(["apikey:invoke_function"]),
            key_id="key-1",
            function_grants={FID: None},
        ),
    )
    classifier = hp.HostClassifier("localhost", SERVICES)
    return hp.HotPath(classifier, cache, table.any_of("invoke_function", "apikey:invoke_function"))


@pytest.mark.benchmark(group="hotpath-decide", **ROUNDS)
def test_decide_pexec_cached_api_key(benchmark: BenchmarkFixture, impl: ModuleType) -> None:
    hot = _hot_path(impl)
    decision = benchmark(hot.decide, HOST, METHOD, PATH, AUTHORIZATION)
    assert decision.code == impl.DECIDE_OK
    assert (decision.route, decision.function_id, decision.version_id) == (impl.ROUTE_PEXEC_VERSION, FID, VID)
    assert decision.principal is not None and decision.principal.allows_function(FID, VID, "other", False)


@pytest.mark.benchmark(group="hotpath-classify", **ROUNDS)
def test_classify_host(benchmark: BenchmarkFixture, impl: ModuleType) -> None:
    classifier = impl.HostClassifier("localhost", SERVICES)
    assert benchmark(classifier.classify, HOST) == (impl.SERVICE_INVOCATION, None, None)


@pytest.mark.benchmark(group="hotpath-path", **ROUNDS)
def test_match_invocation_path(benchmark: BenchmarkFixture, impl: ModuleType) -> None:
    assert benchmark(impl.match_invocation_path, METHOD, PATH) == (impl.ROUTE_PEXEC_VERSION, FID, VID)


@pytest.mark.benchmark(group="hotpath-bearer", **ROUNDS)
def test_extract_bearer(benchmark: BenchmarkFixture, impl: ModuleType) -> None:
    assert benchmark(impl.extract_bearer, AUTHORIZATION) == (impl.BEARER_OK, API_KEY)
