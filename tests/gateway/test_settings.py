"""Settings: defaults, CFGATE_* environment variables, CLI overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_the_http_grpc_and_worker_ports_must_differ() -> None:
    with pytest.raises(SettingsError, match="must differ"):
        Settings.load({"grpc_port": 7000, "worker_port": 7000}, env={})
    assert Settings.load({"grpc_port": 0, "worker_port": 0}, env={}).worker_port == 0


def test_defaults_match_design() -> None:
    s = Settings.load(env={})
    assert (s.host, s.port, s.grpc_port, s.worker_port, s.domain) == ("127.0.0.1", 8080, 10081, 10082, "localhost")
    assert s.data_dir == Path("./.cfgate") and s.redis is None and s.processes == 1
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("cfgate.db")


def test_environment_then_overrides() -> None:
    env = {"CFGATE_PORT": "9000", "CFGATE_DOMAIN": "nvcf.example.com", "CFGATE_BOOTSTRAP_LOOPBACK": "false"}
    s = Settings.load({"port": 9100}, env=env)
    assert s.port == 9100 and s.domain == "nvcf.example.com" and s.bootstrap_loopback is False
    assert Settings.load(env={"CFGATE_TRUSTED_ISSUERS": "a=https://a/jwks, b=http://b/jwks"}).trusted_issuer_map() == {
        "a": "https://a/jwks",
        "b": "http://b/jwks",
    }


@pytest.mark.parametrize(
    "env",
    [
        {"CFGATE_PORT": "eighty"},
        {"CFGATE_PORT": "70000"},
        {"CFGATE_PROCESSES": "0"},
        {"CFGATE_BOOTSTRAP_LOOPBACK": "maybe"},
        {"CFGATE_TRUSTED_ISSUERS": "no-url"},
        {"CFGATE_DOMAIN": ".bad"},
    ],
)
def test_invalid_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.load(env=env)


def test_environment_round_trips_every_setting(tmp_path: Path) -> None:
    """What ``--processes N`` hands its children: the same settings, through CFGATE_* variables."""
    settings = Settings.load(
        {
            "port": 9001,
            "data_dir": tmp_path / "d",
            "redis": "redis://127.0.0.1:1/0",
            "processes": 3,
            "reuse_port": True,
            "bootstrap_loopback": False,
            "trusted_issuers": ("a=https://a.example/jwks", "b=https://b.example/jwks"),
        },
        env={},
    )
    env = settings.environment()
    assert all(name.startswith("CFGATE_") for name in env) and "CFGATE_DATABASE" not in env  # None: left out
    assert Settings.load(env=env) == settings


def test_a_bad_upstream_flag_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["serve", "--upstream", "tasks=ftp://x", "--upstream", "sis=http://127.0.0.1:1"]) == 2
    assert "upstream must be 'SERVICE=http://host:port'" in capsys.readouterr().err
