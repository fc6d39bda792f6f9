"""Placeholder: endpoints of this area are being written (issue 3)."""

from __future__ import annotations

from gateway.api import Endpoint

ENDPOINTS: list[Endpoint] = []
