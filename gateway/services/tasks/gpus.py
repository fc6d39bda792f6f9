"""The GPU-validation hook of task creation: ``(nca_id, gpu, instance_type) -> None``, raising to refuse.

``Runtime.task_gpu_validator`` holds it: the SIS registry's rule (``clusters.offers.check_offered``:
any GPU while no cluster exists, else one a cluster usable by the account offers). A ``GatewayError``
it raises is answered as is, any ``ValueError`` becomes a 400. It may be a plain function or a
coroutine function; ``accept_all_task_gpus`` is the registry-less default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

TaskGpuValidator = Callable[[str, str, str], Awaitable[None] | None]


def accept_all_task_gpus(nca_id: str, gpu: str, instance_type: str) -> None:
    return None
