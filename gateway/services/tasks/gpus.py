"""The GPU-validation hook of task creation: ``(gpu, instance_type) -> None``, raising to refuse.

The default accepts every name (no cluster registry yet). SIS plugs its validator in through
``Runtime.task_gpu_validator``; a ``GatewayError`` it raises is answered as is, any ``ValueError``
becomes a 400. It may be a plain function or a coroutine function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

TaskGpuValidator = Callable[[str, str], Awaitable[None] | None]


def accept_all_task_gpus(gpu: str, instance_type: str) -> None:
    return None
