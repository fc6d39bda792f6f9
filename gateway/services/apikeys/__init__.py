"""The API Keys service (``api-keys.<domain>``) and the admin token issuer (``/v1/admin/keys``)."""

from gateway.services.apikeys.app import build_apikeys_app

__all__ = ["build_apikeys_app"]
