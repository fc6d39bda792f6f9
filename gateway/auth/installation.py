"""Keys shared by every gateway of one installation: token-signing keys and the sealing key.

Both live in the database, sealed (AES-256-GCM, ``SecretBox``) by the installation's **master key**,
so gateways on different hosts that share the database and the master key sign and verify each
other's tokens and open each other's sealed secrets. The master key never enters the database:

- ``CFGATE_MASTER_KEY`` (base64 of 32 bytes), else
- ``--master-key-file`` / ``CFGATE_MASTER_KEY_FILE`` (a file holding that base64), else
- ``<data_dir>/master-key``, generated on first start (mode 0600): one host needs no set-up.
  A second host must be given this key (copy the file, or set one of the above on both).

First start against a database without keys imports the data directory's keys of earlier
versions (``signing-keys.json``, ``secret-key``), so live tokens and stored secrets keep working.
``CFGATE_SECRET_KEY``, when set, stays the sealing key as before and is not stored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth.keyring import KEYRING_FILE, FileKeySource, KeyRing, SigningKey
from gateway.auth.secretbox import KEY_FILE, SecretBox, SecretBoxError, create_key_file
from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.installation_keys import SEALING_NAME, InstallationKeyRepository, SealedKey

log = logging.getLogger("gateway.auth.installation")

MASTER_KEY_FILE = "master-key"
# Running gateways re-read the signing keys this often (a rotation elsewhere: new signer, JWKS);
# a token naming a kid they do not know yet makes them re-read at once.
REFRESH_SECONDS = 5.0


class InstallationKeyError(Exception):
    """The installation's keys cannot be used with this host's configuration."""


def master_box(settings: Settings) -> SecretBox:
    """The master key, from the environment, the configured file or the data directory."""
    if settings.master_key:
        return _box(settings.master_key, "CFGATE_MASTER_KEY")
    if settings.master_key_file:
        path = Path(settings.master_key_file)
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise InstallationKeyError(f"cannot read the master key file {path}: {exc.strerror}") from None
        return _box(text, str(path))
    path = settings.data_dir / MASTER_KEY_FILE
    if not path.exists():
        create_key_file(path)
    return _box(path.read_text().strip(), str(path))


def _box(encoded: str, origin: str) -> SecretBox:
    try:
        return SecretBox(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise InstallationKeyError(f"the master key ({origin}) must be base64 of 32 bytes") from None


class DatabaseKeySource:
    """Signing keys in the installation's store, each PEM sealed by the master key."""

    def __init__(self, repository: InstallationKeyRepository, master: SecretBox) -> None:
        self._repository = repository
        self._master = master

    async def load(self) -> list[SigningKey]:
        keys = []
        for row in await self._repository.signing_keys():
            pem = _unseal(self._master, row.sealed, f"signing-key:{row.name}")
            keys.append(SigningKey.from_pem(row.name, row.created_at_ms / 1000, pem))
        return keys

    async def add(self, key: SigningKey) -> None:
        await self._repository.add_signing_key(self._sealed(key))

    async def add_first(self, key: SigningKey) -> None:
        await self._repository.add_first_signing_key(self._sealed(key))

    async def drop(self, kids: Collection[str]) -> None:
        await self._repository.drop_signing_keys(kids)

    def _sealed(self, key: SigningKey) -> SealedKey:
        sealed = self._master.seal(key.pem(), f"signing-key:{key.kid}")
        return SealedKey(key.kid, int(key.created_at * 1000), sealed)


def _unseal(master: SecretBox, sealed: str, context: str) -> str:
    try:
        return master.open_sealed(sealed, context)
    except (SecretBoxError, ValueError):
        raise InstallationKeyError(
            "the database's keys are sealed by another master key: give this gateway the installation's "
            "master key (CFGATE_MASTER_KEY or --master-key-file; the first host's is <data-dir>/master-key)"
        ) from None


@dataclass(slots=True)
class InstallationKeys:
    keyring: KeyRing
    # The secret box key: seals stored secrets, and (HKDF) signs asset and result URLs.
    sealing_key: bytes
    _refresher: asyncio.Task[None] | None = field(default=None, init=False)

    @classmethod
    async def open(cls, settings: Settings, engine: AsyncEngine) -> InstallationKeys:
        master = master_box(settings)
        repository = InstallationKeyRepository(engine)
        source = DatabaseKeySource(repository, master)
        first_start = not await repository.signing_keys()
        if first_start:
            await _import_signing_keys(settings.data_dir, source)
        ring = await KeyRing.open(source, retain_seconds=settings.admin_token_ttl_seconds + 60)
        if not first_start:
            local = await FileKeySource.in_data_dir(settings.data_dir).load()
            if any(ring.get(key.kid) is None for key in local):
                log.warning(
                    "the signing keys in %s are not used: the installation's are in the database "
                    "(tokens they signed are refused)",
                    settings.data_dir / KEYRING_FILE,
                )
        return cls(ring, await _sealing_key(settings, repository, master))

    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(), name="signing-key-refresh")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.keyring.refresh()
            except Exception:
                log.exception("re-reading the signing keys failed")


async def _import_signing_keys(data_dir: Path, source: DatabaseKeySource) -> None:
    legacy = await FileKeySource.in_data_dir(data_dir).load()
    for key in legacy:
        await source.add(key)
    if legacy:
        log.info("imported %d signing key(s) from %s into the database", len(legacy), data_dir)


async def _sealing_key(settings: Settings, repository: InstallationKeyRepository, master: SecretBox) -> bytes:
    if settings.secret_key:
        return base64.b64decode(settings.secret_key)
    stored = await repository.sealing_key()
    if stored is None:
        legacy = settings.data_dir / KEY_FILE
        encoded = legacy.read_text().strip() if legacy.exists() else base64.b64encode(secrets.token_bytes(32)).decode()
        offered = SealedKey(SEALING_NAME, int(time.time() * 1000), master.seal(encoded, SEALING_NAME))
        stored = await repository.offer_sealing_key(offered)
        if stored.sealed == offered.sealed and legacy.exists():
            log.info("imported the sealing key of %s into the database", legacy)
    return base64.b64decode(_unseal(master, stored.sealed, SEALING_NAME))


async def prepare_installation_keys(settings: Settings) -> None:
    """Migrate the store and create (or import) the keys, before processes start together."""
    store = await open_store(settings.database_url)
    try:
        await InstallationKeys.open(settings, store.engine)
    finally:
        await store.close()


async def rotate_signing_key(settings: Settings) -> tuple[SigningKey, int]:
    """``cfgate rotate-signing-key``: a new signer for the whole installation; (key, keys published)."""
    store = await open_store(settings.database_url)
    try:
        keys = await InstallationKeys.open(settings, store.engine)
        key = await keys.keyring.rotate()
        return key, len(keys.keyring.jwks()["keys"])
    finally:
        await store.close()
