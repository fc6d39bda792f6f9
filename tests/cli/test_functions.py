"""create → deploy --wait → invoke (202 polling with progress; a 302 large result; SSE) → queue
status → remove → delete, all through ``cfgate`` subprocesses against a real gateway, real worker
agents and a real container."""

from __future__ import annotations

import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from tests.cli.conftest import CliGateway, Ran, state_of

CPU = ["--gpu", "CPU", "--instance-type", "cfgate.local", "--max-request-concurrency", "4"]


def _create(gateway: CliGateway, container: str, name: str, path: str) -> dict[str, Any]:
    port = container.rsplit(":", 1)[1]
    ran = gateway.cli(
        "function", "create", "--name", name, "--inference-url", path, "--inference-port", port,
        "--health-uri", "/health", "--image", f"cfgate/{name}:1", "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    function: dict[str, Any] = ran.json()
    assert function["status"] == "INACTIVE" and function["name"] == name
    return function


def _wait_for_status(gateway: CliGateway, function_id: str, wanted: str) -> None:
    for _ in range(300):
        got = gateway.cli("function", "get", function_id, "--json")
        if got.code == 0 and got.json()["status"] == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{function_id} never became {wanted}")


def _deploy_with_worker(gateway: CliGateway, container: str, function_id: str) -> Ran:
    """``deploy create --wait`` running while the worker attaches; returns the deploy command's run."""
    deploying = gateway.cli_background("function", "deploy", "create", function_id, *CPU, "--wait", "--timeout", "90")
    _wait_for_status(gateway, function_id, "DEPLOYING")
    gateway.start_worker(function_id, container, state_of(gateway)["admin_token"])
    try:
        out, err = deploying.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        deploying.kill()
        raise
    return Ran(deploying.returncode, out, err)


def test_create_deploy_wait_invoke_with_polling_queue_status_and_delete(
    cli_gateway: CliGateway, echo_container: str, tmp_path: Path
) -> None:
    spec = tmp_path / "function.json"
    port = int(echo_container.rsplit(":", 1)[1])
    spec.write_text(
        json.dumps(
            {
                "name": "progress",
                "inferenceUrl": "/progress",
                "inferencePort": port,
                "containerImage": "cfgate/progress:1",
                "health": {
                    "protocol": "HTTP",
                    "uri": "/health",
                    "port": port,
                    "timeout": "PT10S",
                    "expectedStatusCode": 200,
                },
            }
        )
    )
    created = cli_gateway.cli("function", "create", "--input-file", str(spec), "--description", "from a file")
    assert created.code == 0, created.err
    assert "progress" in created.out and "INACTIVE" in created.out and "from a file" in created.out
    listed = cli_gateway.cli("function", "list", "--json").json()
    function = next(f for f in listed if f["name"] == "progress")
    fid, vid = function["id"], function["versionId"]

    deployed = _deploy_with_worker(cli_gateway, echo_container, fid)
    assert deployed.code == 0, deployed.err
    assert f"{fid} version {vid}: DEPLOYING" in deployed.err and f"{fid} version {vid}: ACTIVE" in deployed.err
    assert "deployment id" in deployed.out and "ACTIVE" in deployed.out

    no_key = cli_gateway.cli("function", "invoke", fid, "--request-body", "{}")
    assert no_key.code == 3 and no_key.error_lines[-1].startswith("cfgate: error: no API key: run cfgate api-key")
    assert cli_gateway.cli("api-key", "generate").code == 0

    # /progress writes its progress file three times: each is a 202 with NVCF-PERCENT-COMPLETE.
    polled = cli_gateway.cli("function", "invoke", fid, "--request-body", '{"n": 1}', "--poll-duration", "1", "--json")
    assert polled.code == 0, polled.err
    answer = polled.json()
    assert answer["status"] == 200 and answer["body"] == {"done": True, "steps": 3}
    assert answer["polls"] >= 1 and answer["downloaded"] is False
    assert f"request {answer['requestId']}: " in polled.err and "% complete" in polled.err

    human = cli_gateway.cli("function", "invoke", fid, "-d", "{}", "--poll-duration", "1")
    assert human.code == 0, human.err
    assert json.loads(human.out) == {"done": True, "steps": 3}
    assert "cfgate: 200 NVCF-REQID " in human.err

    queue = cli_gateway.cli("queue", "status", fid, "--json")
    assert queue.code == 0, queue.err
    assert queue.json() == {
        "functionId": fid,
        "queues": [{"functionVersionId": vid, "functionName": "progress", "functionStatus": "ACTIVE", "queueDepth": 0}],
    }
    table = cli_gateway.cli("queue", "status", fid, vid)
    assert "queue depth" in table.out and vid in table.out

    unknown_request = "5c5c2c1e-0000-4000-8000-00000000beef"
    position = cli_gateway.cli("queue", "position", unknown_request)
    assert position.code == 4
    assert len(position.error_lines) == 1 and position.error_lines[0].startswith("cfgate: error: 404 Not Found: ")

    changed = cli_gateway.cli(
        "function", "deploy", "update", fid, "--gpu", "CPU", "--instance-type", "cfgate.local",
        "--max-request-concurrency", "8", "--wait", "--json",
    )  # fmt: skip
    assert changed.code == 0, changed.err
    assert changed.json()["functionStatus"] == "ACTIVE"
    assert changed.json()["deploymentSpecifications"][0]["maxRequestConcurrency"] == 8

    versions = cli_gateway.cli("function", "versions", fid, "--json")
    assert [v["versionId"] for v in versions.json()] == [vid]
    updated = cli_gateway.cli("function", "update", fid, "--tag", "team:cli", "--json")
    assert updated.code == 0 and updated.json()["tags"] == ["team:cli"]

    removed = cli_gateway.cli("function", "deploy", "remove", fid, vid, "--json")
    assert removed.code == 0 and removed.json()["status"] == "INACTIVE"
    deleted = cli_gateway.cli("function", "delete", fid, vid)
    assert deleted.code == 0 and f"deleted function {fid} version {vid}" in deleted.out
    gone = cli_gateway.cli("function", "get", fid, vid)
    assert gone.code == 4
    assert len(gone.error_lines) == 1 and gone.error_lines[0].startswith("cfgate: error: 404 Not Found: ")


def test_a_302_large_result_is_downloaded_to_a_file(cli_gateway: CliGateway, echo_container: str) -> None:
    function = _create(cli_gateway, echo_container, "files", "/files")
    fid = function["id"]
    assert _deploy_with_worker(cli_gateway, echo_container, fid).code == 0
    assert cli_gateway.cli("api-key", "generate").code == 0

    ran = cli_gateway.cli("function", "invoke", fid, "--request-body", "{}", "--json")
    assert ran.code == 0, ran.err
    answer = ran.json()
    assert answer["downloaded"] is True and answer["status"] == 200
    saved = cli_gateway.work / answer["file"]
    assert saved.name == f"{answer['requestId']}.zip" and saved.stat().st_size == answer["bytes"]
    with zipfile.ZipFile(saved) as archive:
        assert f"{answer['requestId']}.response" in archive.namelist() and "a.txt" in archive.namelist()

    chosen = cli_gateway.work / "out" / "result.zip"
    chosen.parent.mkdir()
    human = cli_gateway.cli("function", "invoke", fid, "-d", "{}", "--output", str(chosen))
    assert human.code == 0, human.err
    assert f"saved to {chosen}" in human.out and zipfile.is_zipfile(chosen)


def test_stream_prints_server_sent_events(cli_gateway: CliGateway, echo_container: str) -> None:
    function = _create(cli_gateway, echo_container, "events", "/sse")
    assert _deploy_with_worker(cli_gateway, echo_container, function["id"]).code == 0
    assert cli_gateway.cli("api-key", "generate").code == 0
    ran = cli_gateway.cli("function", "invoke", function["id"], "-d", "{}", "--stream")
    assert ran.code == 0, ran.err
    assert [line for line in ran.out.splitlines() if line.startswith("data:")] == [
        'data: {"i": 0}',
        'data: {"i": 1}',
        'data: {"i": 2}',
    ]


def test_unknown_function_and_bad_input_are_one_line_errors(cli_gateway: CliGateway) -> None:
    assert cli_gateway.cli("api-key", "generate").code == 0
    unknown = "5c5c2c1e-0000-4000-8000-000000000000"
    invoked = cli_gateway.cli("function", "invoke", unknown, "--request-body", "{}")
    assert invoked.code == 4
    assert invoked.error_lines[-1] == f"cfgate: error: 404 Not Found: Function '{unknown}' not found"
    assert "Traceback" not in invoked.err
    deploy = cli_gateway.cli("function", "deploy", "get", unknown, unknown)
    assert deploy.code == 4 and len(deploy.error_lines) == 1
    bad_json = cli_gateway.cli("function", "invoke", unknown, "--request-body", "{nope")
    assert bad_json.code == 2 and bad_json.error_lines[0].startswith("cfgate: error: Invalid value for --request-body")
    no_name = cli_gateway.cli("function", "create", "--inference-url", "/x")
    assert no_name.code == 2 and "--name" in no_name.err
    refused = cli_gateway.cli("function", "create", "--name", "bad name!", "--inference-url", "/x", "--image", "a/b")
    assert refused.code == 1
    assert len(refused.error_lines) == 1 and refused.error_lines[0].startswith("cfgate: error: 400 Bad Request: ")
