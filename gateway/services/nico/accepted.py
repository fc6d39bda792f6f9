"""The answer NICo REST gives an accepted delete.

The real handlers (instance, VPC, IP block, allocation, operating system, subnet, VPC prefix) end
with ``c.String(http.StatusAccepted, "Deletion request was accepted")``: 202 with that line as
text/plain, which nicocli prints. The official document lists 204 for subnets and VPC prefixes;
the real behaviour wins (gateway/services/nico/README.md lists the difference).
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse

DELETION_ACCEPTED = "Deletion request was accepted"


def deletion_accepted() -> PlainTextResponse:
    return PlainTextResponse(DELETION_ACCEPTED, status_code=202)
