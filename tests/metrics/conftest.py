"""The multi-process fixtures (real ``cfgate serve --processes N``), shared with tests/multiproc."""

from tests.multiproc.conftest import gateways

__all__ = ["gateways"]
