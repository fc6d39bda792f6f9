"""Drive NVIDIA's ``ngcsdk`` against a gateway the way a user configures it, one call at a time.

Run as ``python -m tests.support.ngc_driver`` with ``NGC_CLI_API_URL`` (the gateway; ngcsdk speaks
HTTPS only and sends the URL's host as Host), ``REQUESTS_CA_BUNDLE`` (its certificate), ``HOME``
(a fresh directory: ngcsdk writes ``~/.ngc``), ``NGC_DRIVER_JWT`` (an admin JWT),
``NGC_DRIVER_KEY`` (a function API key, ``nvapi-…``), ``NGC_DRIVER_TASK_JWT`` (a JWT with the task
scopes) and ``NGC_DRIVER_ORG``. Prints one JSON object: ``{call: {"ok": true, "result": …} |
{"ok": false, "error": "<exception class>: <message>"}}``. Its own process, because ngcsdk reads
its environment at import and keeps its token cache in class attributes.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any


def main() -> int:
    warnings.simplefilter("ignore")
    from ngcsdk import Client  # type: ignore[import-untyped]
    from nvcf.api.deployment_spec import DeploymentSpecification  # type: ignore[import-untyped]

    org = os.environ["NGC_DRIVER_ORG"]
    outcomes: dict[str, Any] = {}

    def step(name: str, call: Callable[[], Any]) -> Any:
        try:
            result = call()
            if result is not None and not isinstance(result, (dict, list, str, int, float, bool)):
                result = list(result) if hasattr(result, "__iter__") else repr(result)
            outcomes[name] = {"ok": True, "result": result}
            return result
        except Exception as exc:
            outcomes[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return None

    admin = Client()
    step("configure(jwt, org)", lambda: admin.configure(api_key=os.environ["NGC_DRIVER_JWT"], org_name=org))
    functions = admin.cloud_function.functions
    step("functions.list", functions.list)
    created = step(
        "functions.create",
        lambda: functions.create(
            name="ngc-echo",
            inference_url="/echo",
            inference_port=8000,
            container_image="docker.io/library/echo:1.0",
            health_uri="/health",
        ),
    )
    if created:
        fid, vid = created["function"]["id"], created["function"]["versionId"]
        step("functions.info", lambda: functions.info(fid, vid))
        step("functions.list(function_id)", lambda: functions.list(function_id=fid))
        # NVCF takes a version's first secrets only while it is INACTIVE, so before the deploy.
        step("functions.update_secrets", lambda: functions.update_secrets(fid, vid, secrets=["API_TOKEN:ngc-set"]))
        spec = DeploymentSpecification(
            backend="cfgate", gpu="H100", instance_type="NCP.GPU.H100_1x", min_instances=0, max_instances=1,
            max_request_concurrency=2,
        )  # fmt: skip
        deployments = functions.deployments
        step("deployments.create", lambda: deployments.create(fid, vid, deployment_specifications=[spec]))
        step("deployments.info", lambda: deployments.info(fid, vid))
        step("deployments.list", deployments.list)
        step("deployments.delete", lambda: deployments.delete(fid, vid))
        step("functions.delete", lambda: functions.delete(fid, vid))
        step("functions.info(deleted)", lambda: functions.info(fid, vid))
    step("configure(jwt, other org)", lambda: Client().configure(api_key=os.environ["NGC_DRIVER_JWT"], org_name="x-9"))
    step(
        "configure(jwt, org, team)",
        lambda: Client().configure(api_key=os.environ["NGC_DRIVER_JWT"], org_name=org, team_name="ml"),
    )

    keyed = Client()
    step("configure(nvapi key)", lambda: keyed.configure(api_key=os.environ["NGC_DRIVER_KEY"]))
    step("org of the nvapi key", lambda: keyed.config.org_name)
    step("functions.list(nvapi key)", keyed.cloud_function.functions.list)

    tasks = Client()
    step("configure(task jwt, org)", lambda: tasks.configure(api_key=os.environ["NGC_DRIVER_TASK_JWT"], org_name=org))
    step("tasks.list", lambda: list(tasks.cloud_function.tasks.list()))
    json.dump(outcomes, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
