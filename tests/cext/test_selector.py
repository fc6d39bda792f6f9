"""The selector ``cext.hotpath`` and the twins' shared surface."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import cext.hotpath as selector
from cext import hotpath_py
from tests.cext.conftest import EXTENSIONS_DISABLED, load_compiled

ROOT = Path(__file__).resolve().parents[2]


def test_implementation_matches_the_environment() -> None:
    """Guard: with extensions enabled the compiled hot path must be the one in use."""
    if EXTENSIONS_DISABLED:
        assert selector.IMPLEMENTATION == "py"
        assert selector.EXTENSIONS_REQUESTED is False
        assert selector.hotpath_c is None
        assert selector.HotPath is hotpath_py.HotPath
    else:
        assert selector.IMPORT_ERROR is None, selector.IMPORT_ERROR
        assert selector.IMPLEMENTATION == "c"
        assert selector.EXTENSIONS_REQUESTED is True
        assert selector.hotpath_c is load_compiled()
        assert selector.HotPath is selector.hotpath_c.HotPath
    assert selector.hotpath_py is hotpath_py


def test_selector_exports_every_public_name() -> None:
    impl = hotpath_py if selector.hotpath_c is None else selector.hotpath_c
    for name in hotpath_py.__all__:
        assert name in selector.__all__
        assert getattr(selector, name) is getattr(impl, name)


def _implementation_in_subprocess(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CFGATE_NO_EXTENSIONS"}
    if value is not None:
        env["CFGATE_NO_EXTENSIONS"] = value
    code = "import cext.hotpath as h; print(h.IMPLEMENTATION, h.EXTENSIONS_REQUESTED)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_env_var_forces_python(value: str) -> None:
    assert _implementation_in_subprocess(value) == "py False"


@pytest.mark.parametrize("value", [None, "", "0"])
def test_env_var_unset_empty_or_zero_requests_extensions(value: str | None) -> None:
    if EXTENSIONS_DISABLED:
        load = _implementation_in_subprocess(value)
        assert load.endswith("True")  # requested; whether it loads depends on the build
    else:
        assert _implementation_in_subprocess(value) == "c True"


def test_twins_share_the_public_surface(hp: ModuleType) -> None:
    assert sorted(hp.__all__) == sorted(hotpath_py.__all__)
    for name in hotpath_py.__all__:
        ours, reference = getattr(hp, name), getattr(hotpath_py, name)
        if isinstance(reference, int):
            assert ours == reference and type(ours) is int, name
        else:
            assert callable(ours), name


def test_constant_values() -> None:
    p = hotpath_py
    assert (p.SERVICE_UNKNOWN, p.SERVICE_API, p.SERVICE_INVOCATION, p.SERVICE_FUNCTION) == (0, 1, 2, 3)
    assert (p.SERVICE_API_KEYS, p.SERVICE_TASKS, p.SERVICE_SIS, p.SERVICE_NICO) == (4, 5, 6, 7)
    assert (p.ROUTE_NONE, p.ROUTE_PEXEC, p.ROUTE_PEXEC_VERSION, p.ROUTE_PEXEC_STATUS) == (0, 1, 2, 3)
    assert (p.ROUTE_EXEC, p.ROUTE_EXEC_VERSION, p.ROUTE_EXEC_STATUS, p.ROUTE_BAD_ID) == (4, 5, 6, 7)
    assert (p.BEARER_MISSING, p.BEARER_MALFORMED, p.BEARER_OK) == (0, 1, 2)
    assert (p.KIND_JWT, p.KIND_API_KEY) == (1, 2)
    assert (p.DECIDE_OK, p.DECIDE_NOT_HOT, p.DECIDE_UNKNOWN_HOST, p.DECIDE_NO_BEARER) == (0, 1, 2, 3)
    assert (p.DECIDE_BAD_BEARER, p.DECIDE_CACHE_MISS, p.DECIDE_FORBIDDEN, p.DECIDE_BAD_ID) == (4, 5, 6, 7)
