"""The GPU-validation hook of task creation: ``(nca_id, gpuSpecification) -> None``, raising to refuse.

``Runtime.task_gpu_validator`` holds it: the SIS placement rule (``clusters.placement.check_task_gpu``:
any GPU while no cluster is usable by the account, else one such cluster must run it). It gets the
task's ``gpuSpecification`` as JSON (``gpu``, ``instanceType``, ``clusters``, ``backend`` …). A
``GatewayError`` it raises is answered as is, any ``ValueError`` becomes a 400. It may be a plain
function or a coroutine function; ``accept_all_task_gpus`` is the registry-less default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

TaskGpuValidator = Callable[[str, Mapping[str, Any]], Awaitable[None] | None]


def accept_all_task_gpus(nca_id: str, spec: Mapping[str, Any]) -> None:
    return None
