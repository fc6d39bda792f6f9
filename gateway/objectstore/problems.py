"""Object-store failures as the problem a client sees: 503 while the store is unreachable (retry),
502 when it refuses a request (misconfigured bucket or credentials). Never a 500."""

from __future__ import annotations

from gateway.objectstore.errors import ObjectStoreError, StoreFailure
from gateway.problems import GatewayError, ServiceUnavailable


class BadGateway(GatewayError):
    status, name = 502, "bad-gateway"


def object_store_problem(exc: ObjectStoreError) -> GatewayError:
    if exc.kind is StoreFailure.UNAVAILABLE:
        return ServiceUnavailable("The object store is unavailable; retry later")
    return BadGateway("The object store refused the request")
