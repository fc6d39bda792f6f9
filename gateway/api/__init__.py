"""Declarative control-plane endpoints: one table drives routing, auth, validation and OpenAPI."""

from gateway.api.endpoint import Call, Endpoint, build_routes
from gateway.api.models import ApiModel

__all__ = ["ApiModel", "Call", "Endpoint", "build_routes"]
