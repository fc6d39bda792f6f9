"""Bearer credential → ``Principal``: the credential cache first, the store or signature second.

A cache hit costs one dict lookup (done on the compiled hot path). On a miss the API key is
looked up by its hash, or the JWT's signature is verified, and the result is cached until the
credential expires. Deleting a key or changing its authorizations evicts it at once, here through
``revoke_key`` / ``revoke_subject`` and in other processes through ``listeners`` (the invalidation
bus). While another process's revocation could be missed (``caching()`` false: the bus is
disconnected), nothing is cached and every request is checked against the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from cext.hotpath import AuthorityTable, CredentialCache, Principal
from gateway.auth import apikey_format
from gateway.auth.principals import from_api_key, from_claims
from gateway.auth.tokens import InvalidToken, TokenVerifier
from gateway.problems import Unauthorized
from gateway.store.accounts import AccountRepository
from gateway.store.apikeys import ApiKeyRepository

log = logging.getLogger("gateway.auth")

ACTIVE = "ACTIVE"

# Called with (kind, id) after a revocation here: kind "apikey" (a key id) or "subject" (a client id).
RevocationListener = Callable[[str, str], Awaitable[None]]


class Authenticator:
    def __init__(
        self,
        cache: CredentialCache,
        table: AuthorityTable,
        verifier: TokenVerifier,
        keys: ApiKeyRepository,
        accounts: AccountRepository,
        *,
        local_issuer: str = "",
        operator_client: str = "",
    ) -> None:
        self.cache = cache
        self.table = table
        self._verifier = verifier
        self._keys = keys
        self._accounts = accounts
        # The operator (``gateway.auth.authority``): this issuer's tokens for this client.
        self._local_issuer = local_issuer
        self._operator_client = operator_client
        self.listeners: list[RevocationListener] = []
        self.caching: Callable[[], bool] = lambda: True

    async def authenticate(self, token: bytes) -> Principal:
        cached = self.cache.get(token, time.time())
        if cached is not None:
            return cached
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthorized("Unauthorized access") from None
        principal = await (self._api_key(text) if text.startswith(apikey_format.PREFIX) else self._jwt(text))
        if self.caching():
            self.cache.put(token, principal)
        return principal

    async def revoke_key(self, key_id: str) -> None:
        """An API key was deleted or changed: forget it here and in every other process."""
        self.cache.revoke_key(key_id)
        await self._tell("apikey", key_id)

    async def revoke_subject(self, subject: str) -> None:
        """An account's admin client changed: forget its tokens here and in every other process."""
        self.cache.revoke_subject(subject)
        await self._tell("subject", subject)

    async def _tell(self, kind: str, item_id: str) -> None:
        for listener in self.listeners:
            try:
                await listener(kind, item_id)
            except Exception:
                log.exception("revocation listener failed for %s", kind)

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
        # An account is matched on (issuer, subject): the local issuer is stored as None.
        subject, issuer = claims["sub"], claims["iss"]
        local = issuer == self._local_issuer
        account = await self._accounts.by_client(subject, None if local else issuer)
        operator = local and bool(self._operator_client) and subject == self._operator_client
        return from_claims(claims, account.nca_id if account else "", self.table, operator=operator)
