"""The edge's settings: limits that cannot work are refused at start-up, not discovered later."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError
from invoker.limits import MAX_INVOCATION_BODY_BYTES, WORKER_MESSAGE_BYTES


def test_body_limit_defaults_to_what_fits_a_worker_message() -> None:
    settings = Settings.load(env={})
    assert settings.max_invocation_body_bytes == MAX_INVOCATION_BODY_BYTES < WORKER_MESSAGE_BYTES


def test_body_limit_over_the_worker_message_is_refused() -> None:
    with pytest.raises(SettingsError, match="worker's message limit"):
        Settings.load(env={"CFGATE_MAX_INVOCATION_BODY_BYTES": str(64 << 20)})


@pytest.mark.parametrize(
    "env",
    [
        {"CFGATE_TLS_CERT": "/tmp/cert.pem"},
        {"CFGATE_TLS_KEY": "/tmp/key.pem"},
        {"CFGATE_HEADER_TIMEOUT_SECONDS": "0"},
        {"CFGATE_KEEPALIVE_TIMEOUT_SECONDS": "0"},
        {"CFGATE_MAX_HEADER_BYTES": "100"},
        {"CFGATE_MAX_CONNECTIONS": "0"},
    ],
)
def test_unusable_edge_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.load(env=env)


def test_edge_settings_read_from_the_environment() -> None:
    settings = Settings.load(
        env={"CFGATE_HEADER_TIMEOUT_SECONDS": "3", "CFGATE_MAX_QUEUED_BODY_BYTES": "1048576", "CFGATE_TLS_CERT": "c",
             "CFGATE_TLS_KEY": "k"}
    )  # fmt: skip
    assert (settings.header_timeout_seconds, settings.max_queued_body_bytes) == (3, 1 << 20)
    assert (settings.tls_cert, settings.tls_key) == ("c", "k")
