"""Fixtures running every hot-path behaviour test against both twins.

``hp`` is the implementation module: ``"py"`` is ``cext.hotpath_py``; ``"c"`` is the compiled
``cext.hotpath_c``. The ``"c"`` case is skipped only when ``CFGATE_NO_EXTENSIONS`` disables the
extensions; if they are enabled and the module does not import (not built, stale build), the ``"c"``
case FAILS, so a missing build can never pass as a skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from cext import hotpath_py

EXTENSIONS_DISABLED = os.environ.get("CFGATE_NO_EXTENSIONS", "") not in ("", "0")
_SKIP_C = pytest.mark.skipif(EXTENSIONS_DISABLED, reason="CFGATE_NO_EXTENSIONS is set")


def load_compiled() -> ModuleType:
    """``cext.hotpath_c``, or a test failure explaining how to build it."""
    try:
        return importlib.import_module("cext.hotpath_c")
    except ImportError as exc:
        pytest.fail(
            "extensions are enabled but cext.hotpath_c does not import "
            f"({type(exc).__name__}: {exc}); build it with "
            "`python setup.py build_ext --inplace` or set CFGATE_NO_EXTENSIONS=1",
            pytrace=False,
        )


@pytest.fixture(scope="session", params=["py", pytest.param("c", marks=_SKIP_C)])
def hp(request: pytest.FixtureRequest) -> ModuleType:
    """The hot-path implementation under test (session-scoped so hypothesis can use it)."""
    if request.param == "py":
        return hotpath_py
    return load_compiled()


@pytest.fixture(scope="session")
def twins() -> tuple[ModuleType, ModuleType]:
    """``(python twin, compiled twin)`` for differential tests; skipped without extensions."""
    if EXTENSIONS_DISABLED:
        pytest.skip("CFGATE_NO_EXTENSIONS is set: no compiled twin to compare with")
    return hotpath_py, load_compiled()
