"""Fixtures for control-plane (api host) tests: clients, admin tokens of two accounts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from tests.conftest import ClientFactory
from tests.gateway.helpers import admin_token

OTHER_NCA_ID = "other-account"
OTHER_CLIENT_ID = "other-admin-client"
# Scopes an operator adds to the default admin token for sharing and account administration.
OPERATOR_SCOPES = (*ADMIN_DEFAULT_SCOPES, "authorize_clients", "queue_details", "list_cluster_groups", "account_setup")

Minter = Callable[[str, Sequence[str]], str]


@pytest.fixture
def api(client_factory: ClientFactory) -> httpx.AsyncClient:
    """A loopback client on the api host (``api.localhost``)."""
    return client_factory("api.localhost")


@pytest.fixture
async def admin(keys_client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization header with a default admin JWT (POST /v1/admin/keys) of the default account."""
    return {"Authorization": f"Bearer {await admin_token(keys_client)}"}


@pytest.fixture
def mint(gateway: Gateway) -> Minter:
    """``mint(client_id, scopes)`` → a JWT signed by the gateway (the client must map to an account)."""

    def make(client_id: str, scopes: Sequence[str]) -> str:
        return gateway.runtime.issuer.mint(client_id, tuple(scopes)).value

    return make


@pytest.fixture
def operator(mint: Minter, gateway: Gateway) -> dict[str, str]:
    """Default account, default admin scopes plus authorize_clients/queue_details/… ."""
    return {"Authorization": f"Bearer {mint(gateway.settings.admin_client_id, OPERATOR_SCOPES)}"}


@pytest.fixture
async def other_admin(gateway: Gateway, mint: Minter) -> dict[str, str]:
    """Authorization header of an operator JWT of a second account (``other-account``)."""
    await gateway.runtime.accounts.ensure(OTHER_NCA_ID, OTHER_NCA_ID, OTHER_CLIENT_ID)
    return {"Authorization": f"Bearer {mint(OTHER_CLIENT_ID, OPERATOR_SCOPES)}"}
