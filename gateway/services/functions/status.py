"""Function version status from its deployment and its live workers (no I/O).

INACTIVE without a deployment. With one: ACTIVE while at least ``minInstances`` healthy workers
are registered (a scale-to-zero deployment, ``minInstances: 0``, is ACTIVE at once and its requests
wait for a worker); below that DEPLOYING until it first got there, DEGRADED after.
"""

from __future__ import annotations

from gateway.services.functions.models import FunctionStatus


def next_status(current: str, deployed: bool, min_instances: int, live: int) -> FunctionStatus:
    if not deployed:
        return FunctionStatus.INACTIVE
    if live >= min_instances:
        return FunctionStatus.ACTIVE
    if current in (FunctionStatus.ACTIVE, FunctionStatus.DEGRADED):
        return FunctionStatus.DEGRADED
    return FunctionStatus.DEPLOYING
