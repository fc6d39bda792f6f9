"""``cfgate init`` (state file), ``cfgate api-key generate|list|delete`` and expired or missing state."""

from __future__ import annotations

import json
import stat

import jwt
import pytest

from tests.cli.conftest import CliGateway, start_gateway, state_of, stop


def test_init_writes_an_owner_only_state_file_with_the_gateway_and_a_live_admin_token(cli_gateway: CliGateway) -> None:
    ran = cli_gateway.cli("--json", "init", "--gateway", cli_gateway.base + "/", "--domain", "localhost")
    assert ran.code == 0, ran.err
    summary = ran.json()
    assert summary["gateway"] == cli_gateway.base and summary["domain"] == "localhost"
    assert summary["ncaId"] == "nvcf-default" and summary["stateFile"] == str(cli_gateway.state_file)
    assert "register_function" in summary["scopes"]
    assert stat.S_IMODE(cli_gateway.state_file.stat().st_mode) == 0o600
    state = state_of(cli_gateway)
    assert state["gateway"] == cli_gateway.base and state["domain"] == "localhost"
    claims = jwt.decode(state["admin_token"], options={"verify_signature": False})
    assert claims["exp"] == int(state["admin_token_expires_at"])
    assert state["admin_token"] not in ran.out  # the token is kept, not printed

    human = cli_gateway.cli("init", "--gateway", cli_gateway.base)
    assert human.code == 0 and cli_gateway.base in human.out and "admin token expires" in human.out


def test_api_key_generate_list_delete(cli_gateway: CliGateway) -> None:
    generated = cli_gateway.cli("api-key", "generate", "--expires-in", "2h", "--json")
    assert generated.code == 0, generated.err
    key = generated.json()
    assert key["value"].startswith("nvapi-") and key["status"] == "ACTIVE"
    state = state_of(cli_gateway)
    assert (state["api_key"], state["api_key_id"]) == (key["value"], key["id"])

    task = cli_gateway.cli("api-key", "generate", "--for", "task", "--scopes", "launch_task,list_tasks")
    assert task.code == 0, task.err
    assert "nvapi-" in task.out and "launch_task, list_tasks" in task.out
    task_id = state_of(cli_gateway)["task_api_key_id"]

    listed = cli_gateway.cli("api-key", "list", "--json")
    assert listed.code == 0, listed.err
    rows = {row["id"]: row for row in listed.json()}
    assert rows[key["id"]]["for"] == "function" and rows[task_id]["for"] == "task"
    assert all("value" not in row for row in rows.values())
    human = cli_gateway.cli("api-key", "list")
    assert key["id"] in human.out and task_id in human.out and key["value"] not in human.out

    deleted = cli_gateway.cli("api-key", "delete", key["id"])
    assert deleted.code == 0 and f"deleted API key {key['id']}" in deleted.out
    assert state_of(cli_gateway)["api_key"] is None
    assert key["id"] not in {row["id"] for row in cli_gateway.cli("api-key", "list", "--json").json()}

    again = cli_gateway.cli("api-key", "delete", key["id"])
    assert again.code == 4
    assert again.error_lines == [f"cfgate: error: API key {key['id']} not found"]


def test_bad_key_flags_are_usage_errors(cli_gateway: CliGateway) -> None:
    ran = cli_gateway.cli("api-key", "generate", "--scopes", "fly_to_the_moon")
    assert ran.code == 2
    assert ran.error_lines == [
        "cfgate: error: Invalid value for --scopes: unknown scope 'fly_to_the_moon'"
        " (see cfgate api-key generate --help)"
    ]
    assert cli_gateway.cli("api-key", "generate", "--expires-in", "soon").code == 2


def test_an_expired_admin_token_is_refreshed_and_kept(cli_gateway: CliGateway) -> None:
    state = state_of(cli_gateway)
    state["admin_token_expires_at"] = 1.0
    cli_gateway.state_file.write_text(json.dumps(state))
    ran = cli_gateway.cli("function", "list", "--json")
    assert ran.code == 0, ran.err
    assert "admin token refreshed" in ran.err
    refreshed = state_of(cli_gateway)
    assert refreshed["admin_token"] != state["admin_token"] and refreshed["admin_token_expires_at"] > 1.0
    assert stat.S_IMODE(cli_gateway.state_file.stat().st_mode) == 0o600


def test_an_expired_token_the_gateway_will_not_refresh_is_one_line_and_exit_3(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("closed")
    gateway, proc = start_gateway(work, "--no-bootstrap-loopback", "--bootstrap-secret", "s3cret-door")
    try:
        assert gateway.cli("init", "--gateway", gateway.base, "--bootstrap-secret", "s3cret-door").code == 0
        state = state_of(gateway)
        state["admin_token_expires_at"], state["bootstrap_secret"] = 1.0, None
        gateway.state_file.write_text(json.dumps(state))
        ran = gateway.cli("function", "list")
        assert ran.code == 3
        assert len(ran.error_lines) == 1
        assert ran.error_lines[0].startswith("cfgate: error: the admin token expired and could not be refreshed (403")
        assert ran.error_lines[0].endswith("run cfgate init")
        refused = gateway.cli("init", "--gateway", gateway.base)
        assert refused.code == 3 and refused.error_lines[0].startswith("cfgate: error: 403 Forbidden:")
    finally:
        stop([proc])


def test_no_state_file_and_gateway_down(cli_gateway: CliGateway, tmp_path_factory: pytest.TempPathFactory) -> None:
    missing = cli_gateway.cli("--state-file", str(tmp_path_factory.mktemp("none") / "state"), "function", "list")
    assert missing.code == 3
    assert missing.error_lines[-1].endswith(": run cfgate init") and "Traceback" not in missing.err

    down = cli_gateway.cli("init", "--gateway", "http://127.0.0.1:9")
    assert down.code == 5
    assert len(down.error_lines) == 1 and down.error_lines[0].startswith("cfgate: error: gateway unreachable:")


def test_state_file_is_never_world_readable_even_when_replaced(cli_gateway: CliGateway) -> None:
    cli_gateway.state_file.chmod(0o644)
    assert cli_gateway.cli("init", "--gateway", cli_gateway.base).code == 0
    assert stat.S_IMODE(cli_gateway.state_file.stat().st_mode) == 0o600
