"""``/v2/nvcf/queues…``: queue depth per deployed version and a pending request's position.

Reference §8 and §17; depth and position are read through ``runtime.queues``
(``invoker.queues.InvocationQueue``). Choices where the contract is silent:

* **Who may read**: the owner and the accounts the function (or that version) is shared with —
  those who can invoke it. Anyone else gets 404, as if the function did not exist.
* **Public functions** are refused with 403 ("If the specified function is public, then Account
  Admin cannot perform this operation"), after the 404 check, for the owner too.
* **Which versions**: NVCF lists ACTIVE and DEPLOYING ones. We also list DEGRADING and DEGRADED:
  they keep their deployment and requests may still wait in their queue. Without such a version
  (or for a version in another status) the answer is 404.
* **Position**: 404 unless the queue knows the request (waiting: 1 = next; with a worker: 0) and
  the caller may read its function's queue; a finished, cancelled or unknown request is 404.
"""

from __future__ import annotations

from gateway.access import key_may_use
from gateway.api import ApiModel, Call, Endpoint
from gateway.problems import Forbidden, NotFound
from gateway.services.functions.models import FunctionStatus
from gateway.store.functions import FunctionVersion

SCOPES = ("queue_details",)
QUEUED_STATUSES = frozenset(
    {FunctionStatus.ACTIVE, FunctionStatus.DEPLOYING, FunctionStatus.DEGRADING, FunctionStatus.DEGRADED}
)


class QueueDto(ApiModel):
    functionVersionId: str
    functionName: str
    functionStatus: FunctionStatus
    queueDepth: int


class GetQueuesResponse(ApiModel):
    functionId: str
    queues: list[QueueDto]


class GetPositionInQueueResponse(ApiModel):
    functionId: str
    functionVersionId: str
    positionInQueue: int


async def _readable(call: Call, function_id: str) -> list[FunctionVersion]:
    """The versions of the function the caller may read queues of (404 / 403 otherwise)."""
    # Visible = owned, shared (whole function or per version) or public; public ones are refused next.
    visible = await call.runtime.catalog.visible_versions(call.nca_id, function_id)
    if not visible:
        raise NotFound(f"Function '{function_id}' not found")
    if any(v.public for v in visible):
        raise Forbidden(f"Function '{function_id}': queue details are not available for public functions")
    return visible


async def _queues(call: Call, function_id: str, versions: list[FunctionVersion]) -> GetQueuesResponse:
    queues = call.runtime.queues
    entries = [
        QueueDto(
            functionVersionId=v.version_id,
            functionName=v.name,
            functionStatus=FunctionStatus(v.status),
            queueDepth=await queues.depth(v.version_id),
        )
        for v in versions
        if v.status in QUEUED_STATUSES
    ]
    if not entries:
        raise NotFound(f"Function '{function_id}': no version is deployed")
    return GetQueuesResponse(functionId=function_id, queues=entries)


async def get_function_queues(call: Call) -> GetQueuesResponse:
    function_id = call.path["functionId"]
    return await _queues(call, function_id, await _readable(call, function_id))


async def get_version_queue(call: Call) -> GetQueuesResponse:
    function_id, version_id = call.path["functionId"], call.path["versionId"]
    versions = [v for v in await _readable(call, function_id) if v.version_id == version_id]
    if not versions:
        raise NotFound(f"Function '{function_id}' version '{version_id}' not found")
    if versions[0].status not in QUEUED_STATUSES:
        raise NotFound(f"Function '{function_id}' version '{version_id}' is not deployed")
    return await _queues(call, function_id, versions)


async def get_position(call: Call) -> GetPositionInQueueResponse:
    request_id = call.path["requestId"]
    missing = NotFound(f"Request '{request_id}' is not in pending or in-progress state")
    position = await call.runtime.queues.position(request_id)
    if position is None:
        raise missing
    try:
        versions = await _readable(call, position.function_id)
    except NotFound:
        raise missing from None
    if not any(v.version_id == position.version_id for v in versions):
        raise missing
    # A resource-limited key sees only requests of the functions it is allowed on.
    if not key_may_use(call.caller, call.runtime, position.function_id, position.version_id):
        raise missing
    return GetPositionInQueueResponse(
        functionId=position.function_id, functionVersionId=position.version_id, positionInQueue=position.position
    )


ENDPOINTS = [
    Endpoint(
        "GET", "/v2/nvcf/queues/functions/{functionId}", get_function_queues, "Queue details of a function",
        SCOPES, response=GetQueuesResponse, tag="queues",
    ),
    Endpoint(
        "GET", "/v2/nvcf/queues/functions/{functionId}/versions/{versionId}", get_version_queue,
        "Queue details of a function version", SCOPES, response=GetQueuesResponse, tag="queues",
    ),
    Endpoint(
        "GET", "/v2/nvcf/queues/{requestId}/position", get_position, "Position of a request in its queue",
        SCOPES, response=GetPositionInQueueResponse, tag="queues",
    ),
]  # fmt: skip
