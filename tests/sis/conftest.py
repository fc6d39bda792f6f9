"""Fixtures for SIS tests: a client on the sis host, admin JWTs of two accounts, a minter."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from tests.conftest import ClientFactory
from tests.gateway.helpers import admin_token
from tests.sis.helpers import bearer

OTHER_NCA_ID = "other-account"
OTHER_CLIENT_ID = "other-admin-client"

Minter = Callable[[str, Sequence[str]], str]


@pytest.fixture
def sis(client_factory: ClientFactory) -> httpx.AsyncClient:
    return client_factory("sis.localhost")


@pytest.fixture
def api(client_factory: ClientFactory) -> httpx.AsyncClient:
    return client_factory("api.localhost")


@pytest.fixture
async def admin(keys_client: httpx.AsyncClient) -> dict[str, str]:
    """The default admin JWT (``POST /v1/admin/keys``): it carries ``cluster-management``."""
    return bearer(await admin_token(keys_client))


@pytest.fixture
def mint(gateway: Gateway) -> Minter:
    def make(client_id: str, scopes: Sequence[str]) -> str:
        return gateway.runtime.issuer.mint(client_id, tuple(scopes)).value

    return make


@pytest.fixture
async def other_admin(gateway: Gateway, mint: Minter) -> dict[str, str]:
    """Default admin scopes, in a second account."""
    await gateway.runtime.accounts.ensure(OTHER_NCA_ID, OTHER_NCA_ID, OTHER_CLIENT_ID)
    return bearer(mint(OTHER_CLIENT_ID, (*ADMIN_DEFAULT_SCOPES, "list_cluster_groups")))
