"""Multi-process fixtures: a factory of real gateway processes, all stopped after the test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.multiproc.processes import GatewayProcess, spawn

Spawn = Callable[..., GatewayProcess]


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Spawn]:
    """``gateways(database=..., redis=..., **env)``: one more gateway process on a shared data dir."""
    started: list[GatewayProcess] = []
    names = itertools.count()

    def make(**kwargs: Any) -> GatewayProcess:
        kwargs.setdefault("data_dir", tmp_path / "data")
        gateway = spawn(tmp_path / f"gateway-{next(names)}.log", **kwargs)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()
