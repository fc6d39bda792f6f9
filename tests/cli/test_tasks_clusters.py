"""``cfgate task ...`` (with a task key) and ``cfgate cluster ...`` (admin token) against a real gateway."""

from __future__ import annotations

from tests.cli.conftest import CliGateway

TASK = ["--gpu", "H100", "--instance-type", "NCP.GPU.H100_1x", "--image", "cfgate/train:1"]


def test_task_create_list_get_cancel_events_delete(cli_gateway: CliGateway) -> None:
    no_key = cli_gateway.cli("task", "list")
    assert no_key.code == 3
    assert no_key.error_lines == [
        "cfgate: error: no task API key: run cfgate api-key generate --for task (or set NVCF_NVCT_API_KEY)"
    ]
    assert cli_gateway.cli("api-key", "generate", "--for", "task").code == 0

    created = cli_gateway.cli("task", "create", "--name", "train-1", *TASK, "--max-runtime", "PT1H", "--json")
    assert created.code == 0, created.err
    task = created.json()
    assert task["status"] == "QUEUED" and task["gpuSpecification"]["gpu"] == "H100"
    listed = cli_gateway.cli("task", "list")
    assert task["id"] in listed.out and "QUEUED" in listed.out
    got = cli_gateway.cli("task", "get", task["id"], "--json")
    assert got.code == 0 and got.json()["maxRuntimeDuration"] == "PT1H"

    canceled = cli_gateway.cli("task", "cancel", task["id"], "--json")
    assert canceled.code == 0 and canceled.json()["status"] == "CANCELED"
    again = cli_gateway.cli("task", "cancel", task["id"])
    assert again.code == 1
    assert again.error_lines == [
        f"cfgate: error: 400 Bad Request: Task '{task['id']}' cannot be canceled: its status is CANCELED"
    ]
    events = cli_gateway.cli("task", "events", task["id"], "--json")
    assert [e["message"] for e in events.json()][-1] == "Task canceled"
    assert cli_gateway.cli("task", "results", task["id"], "--json").json() == []

    deleted = cli_gateway.cli("task", "delete", task["id"])
    assert deleted.code == 0 and f"deleted task {task['id']}" in deleted.out
    gone = cli_gateway.cli("task", "get", task["id"])
    assert gone.code == 4 and len(gone.error_lines) == 1

    missing = cli_gateway.cli("task", "create", "--name", "x")
    assert missing.code == 2 and "--gpu/--instance-type" in missing.err


def test_cluster_register_list_get_delete(cli_gateway: CliGateway) -> None:
    registered = cli_gateway.cli("cluster", "register", "--name", "rack-4", "--gpu", "H100=NCP.GPU.H100_1x", "--json")
    assert registered.code == 0, registered.err
    cluster = registered.json()
    assert cluster["clusterName"] == "rack-4" and cluster["clusterCredential"].startswith("nvcc-")
    cid = cluster["clusterId"]

    duplicate = cli_gateway.cli("cluster", "register", "--name", "rack-4")
    assert duplicate.code == 1 and len(duplicate.error_lines) == 1 and "already exists" in duplicate.err
    ignored = cli_gateway.cli("cluster", "register", "--name", "rack-4", "--ignore-existing")
    assert ignored.code == 0 and "cluster rack-4 already exists" in ignored.out

    listed = cli_gateway.cli("cluster", "list")
    assert cid in listed.out and "rack-4" in listed.out and cluster["clusterCredential"] not in listed.out
    got = cli_gateway.cli("cluster", "get", cid, "--json")
    assert got.code == 0
    assert got.json()["gpus"] == [{"name": "H100", "instanceTypes": [{"name": "NCP.GPU.H100_1x", "default": True}]}]

    deleted = cli_gateway.cli("cluster", "delete", cid, "--json")
    assert deleted.code == 0 and deleted.json() == {"clusterId": cid, "deleted": True}
    assert cli_gateway.cli("cluster", "list", "--json").json() == []
    gone = cli_gateway.cli("cluster", "delete", cid)
    assert gone.code == 4 and gone.error_lines[0].startswith("cfgate: error: 404 Not Found: ")
