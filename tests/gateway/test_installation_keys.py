"""The installation's keys in the store: imported from an older data directory on first start,
sealed by the master key (never stored in clear), refused under another master key."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.auth.installation import InstallationKeyError, InstallationKeys, master_box
from gateway.auth.keyring import FileKeySource, KeyRing
from gateway.auth.secretbox import KEY_FILE, SecretBox
from gateway.auth.tokens import TokenIssuer
from gateway.store import open_store
from gateway.store.schema import installation_keys
from tests.conftest import make_settings


async def test_keys_of_an_older_data_dir_are_imported_on_first_start(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "data"
    legacy_ring = await KeyRing.open(FileKeySource.in_data_dir(data_dir), retain_seconds=3600)
    legacy_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (data_dir / KEY_FILE).write_text(legacy_secret)
    settings = make_settings(tmp_path, database=database_url)
    live = TokenIssuer(legacy_ring, settings.issuer, 600).mint(settings.admin_client_id, ("list_functions",))
    sealed = SecretBox(base64.b64decode(legacy_secret)).seal("stored-before", "secret:v:NAME")

    gateway = Gateway(settings)
    await gateway.startup()
    try:
        runtime = gateway.runtime
        assert (await runtime.verifier.verify(live.value))["sub"] == settings.admin_client_id
        assert runtime.keyring.active.kid == legacy_ring.active.kid
        assert runtime.secretbox.open_sealed(sealed, "secret:v:NAME") == "stored-before"
        async with runtime.store.engine.connect() as conn:
            rows = (await conn.execute(select(installation_keys))).all()
        assert sorted(r.kind for r in rows) == ["sealing", "signing"]
        for row in rows:  # sealed: neither the PEM nor the sealing key is in the store
            assert "PRIVATE KEY" not in row.sealed and legacy_secret not in row.sealed
    finally:
        await gateway.shutdown()


async def test_another_master_key_cannot_open_the_stored_keys(tmp_path: Path, database_url: str) -> None:
    first = make_settings(tmp_path / "a", database=database_url)
    other = make_settings(tmp_path / "b", database=database_url, master_key=base64.b64encode(bytes(32)).decode())
    store = await open_store(database_url)
    try:
        await InstallationKeys.open(first, store.engine)
        with pytest.raises(InstallationKeyError, match="sealed by another master key"):
            await InstallationKeys.open(other, store.engine)
        again = await InstallationKeys.open(first, store.engine)  # the right key still opens them
        assert again.sealing_key
    finally:
        await store.close()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_is_a_clear_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(InstallationKeyError, match="base64 of 32 bytes"):
        master_box(make_settings(tmp_path, master_key=value))


def _cfgate(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    command = [sys.executable, "-m", "gateway", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)


def test_the_cli_reports_an_unusable_master_key_in_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    missing = str(tmp_path / "no-such-key")
    served = _cfgate(
        "serve",
        "--data-dir",
        data,
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--worker-port",
        "0",
        "--master-key-file",
        missing,
    )
    assert served.returncode == 2
    assert served.stderr.strip().splitlines() == [
        f"cfgate: error: cannot read the master key file {missing}: No such file or directory"
    ]
    assert _cfgate("rotate-signing-key", "--data-dir", data).returncode == 0  # keys sealed by <data>/master-key
    other = tmp_path / "other-key"
    other.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    rotated = _cfgate("rotate-signing-key", "--data-dir", data, "--master-key-file", str(other))
    assert rotated.returncode == 2
    lines = rotated.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "cfgate: error: the database's keys are sealed by another master key"
    )
