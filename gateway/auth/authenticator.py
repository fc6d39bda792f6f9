"""Bearer credential → ``Principal``: the credential cache first, the store or signature second.

A cache hit costs one dict lookup (done on the compiled hot path). On a miss the API key is
looked up by its hash, or the JWT's signature is verified, and the result is cached until the
credential expires. Deleting a key or changing its authorizations evicts it at once.
"""

from __future__ import annotations

import logging
import time

from cext.hotpath import AuthorityTable, CredentialCache, Principal
from gateway.auth import apikey_format
from gateway.auth.principals import from_api_key, from_claims
from gateway.auth.tokens import InvalidToken, TokenVerifier
from gateway.problems import Unauthorized
from gateway.store.accounts import AccountRepository
from gateway.store.apikeys import ApiKeyRepository

log = logging.getLogger("gateway.auth")

ACTIVE = "ACTIVE"


class Authenticator:
    def __init__(
        self,
        cache: CredentialCache,
        table: AuthorityTable,
        verifier: TokenVerifier,
        keys: ApiKeyRepository,
        accounts: AccountRepository,
    ) -> None:
        self.cache = cache
        self.table = table
        self._verifier = verifier
        self._keys = keys
        self._accounts = accounts

    async def authenticate(self, token: bytes) -> Principal:
        cached = self.cache.get(token, time.time())
        if cached is not None:
            return cached
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthorized("Unauthorized access") from None
        principal = await (self._api_key(text) if text.startswith(apikey_format.PREFIX) else self._jwt(text))
        self.cache.put(token, principal)
        return principal

    async def _api_key(self, key: str) -> Principal:
        if not apikey_format.well_formed(key):
            raise Unauthorized("Invalid API key")
        record = await self._keys.by_hash(apikey_format.key_hash(key))
        if record is None or record.status != ACTIVE:
            raise Unauthorized("Invalid API key")
        if record.expires_at <= time.time() * 1000:
            raise Unauthorized("API key expired")
        return from_api_key(record, self.table)

    async def _jwt(self, token: str) -> Principal:
        try:
            claims = await self._verifier.verify(token)
        except InvalidToken as exc:
            log.info("rejected bearer token: %s", exc)
            raise Unauthorized("Invalid or expired token") from None
        account = await self._accounts.by_admin_client(claims["sub"])
        return from_claims(claims, account.nca_id if account else "", self.table)
