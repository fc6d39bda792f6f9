"""``cfgate function create|list|get|versions|update|delete``, ``function deploy ...`` and
``function invoke``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from gateway.cli.context import CliContext, json_option, pass_cli
from gateway.cli.failures import CliFailure, ExitCode
from gateway.cli.inputs import json_argument, json_file, pairs
from gateway.cli.output import Output
from gateway.client import ControlPlane, InvocationResult

FUNCTION_COLUMNS = [("id", "function id"), ("versionId", "version id"), ("name", "name"), ("status", "status")]
FUNCTION_FIELDS = [
    *FUNCTION_COLUMNS,
    ("functionType", "type"),
    ("inferenceUrl", "inference url"),
    ("inferencePort", "inference port"),
    ("containerImage", "image"),
    ("health", "health"),
    ("tags", "tags"),
    ("description", "description"),
    ("createdAt", "created"),
]
DEPLOYMENT_FIELDS = [
    ("functionId", "function id"),
    ("functionVersionId", "version id"),
    ("deploymentId", "deployment id"),
    ("functionStatus", "status"),
    ("deploymentSpecifications", "specifications"),
    ("healthInfo", "health"),
]
# Statuses a deployment wait ends on without success.
_FAILED = frozenset({"ERROR", "INACTIVE", "DELETED"})


@click.group("function")
def function_group() -> None:
    """Functions: create, deploy, invoke, update, delete."""


def resolve_version(plane: ControlPlane, function_id: str, version_id: str | None) -> str:
    """The version named, or the function's only version."""
    if version_id:
        return version_id
    versions = plane.function_versions(function_id)
    if len(versions) != 1:
        raise CliFailure(
            f"function {function_id} has {len(versions)} versions: name one (cfgate function versions {function_id})",
            ExitCode.USAGE,
        )
    return str(versions[0]["versionId"])


def _function_body(options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if options["input_file"] is not None:
        body = json_file(options["input_file"])
    flags = {
        "name": options["name"],
        "containerImage": options["image"],
        "inferenceUrl": options["inference_url"],
        "inferencePort": options["inference_port"],
        "functionType": options["function_type"],
        "apiBodyFormat": options["api_body_format"],
        "containerArgs": options["container_args"],
        "description": options["description"],
    }
    body.update({k: v for k, v in flags.items() if v is not None})
    if options["tag"]:
        body["tags"] = list(options["tag"])
    if options["env"]:
        body["containerEnvironment"] = [{"key": k, "value": v} for k, v in pairs(options["env"], "--env")]
    if options["rate_limit"]:
        body["rateLimit"] = {"rateLimit": options["rate_limit"]}
    if options["health_uri"]:
        body["health"] = {
            "protocol": "HTTP",
            "uri": options["health_uri"],
            "port": options["health_port"] or body.get("inferencePort") or 8000,
            "timeout": options["health_timeout"],
            "expectedStatusCode": 200,
        }
    for required in ("name", "inferenceUrl"):
        if not body.get(required):
            flag = "--name" if required == "name" else "--inference-url"
            raise click.UsageError(f"{flag} (or {required} in --input-file) is required")
    return body


@function_group.command("create")
@click.option("--input-file", type=click.Path(path_type=Path, dir_okay=False), help="CreateFunctionRequest JSON.")
@click.option("--name", help="Function name.")
@click.option("--image", help="containerImage.")
@click.option("--inference-url", help="Path the container serves invocations on, e.g. /echo.")
@click.option("--inference-port", type=int, help="Container port.")
@click.option("--health-uri", help="Health path, e.g. /health.")
@click.option("--health-port", type=int, help="Health port (default: the inference port).")
@click.option("--health-timeout", default="PT10S", show_default=True)
@click.option("--function-type", type=click.Choice(["DEFAULT", "STREAMING", "LLM"]))
@click.option("--api-body-format", type=click.Choice(["CUSTOM", "PREDICT_V2"]))
@click.option("--container-args")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="containerEnvironment entry (repeatable).")
@click.option("--tag", multiple=True, help="Tag (repeatable).")
@click.option("--rate-limit", help="e.g. 100-S.")
@click.option("--description")
@click.option("--function-id", "new_version_of", help="Add a version to this function instead.")
@json_option
@pass_cli
def create_function(cli: CliContext, /, new_version_of: str | None, **options: Any) -> None:
    """Register a function (or a new version) from --input-file and/or flags."""
    function = cli.session.admin().create_function(_function_body(options), new_version_of)
    cli.output.record(function, FUNCTION_FIELDS)


@function_group.command("list")
@click.option("--visibility", help="authorized,private,public (default all).")
@json_option
@pass_cli
def list_functions(cli: CliContext, visibility: str | None) -> None:
    """List functions (one row per version)."""
    cli.output.table(cli.session.admin().list_functions(visibility), FUNCTION_COLUMNS)


@function_group.command("versions")
@click.argument("function_id")
@json_option
@pass_cli
def function_versions(cli: CliContext, function_id: str) -> None:
    """List a function's versions."""
    cli.output.table(cli.session.admin().function_versions(function_id), FUNCTION_COLUMNS)


@function_group.command("get")
@click.argument("function_id")
@click.argument("version_id", required=False)
@json_option
@pass_cli
def get_function(cli: CliContext, function_id: str, version_id: str | None) -> None:
    """Show one version (VERSION_ID may be left out when there is one)."""
    plane = cli.session.admin()
    cli.output.record(plane.get_function(function_id, resolve_version(plane, function_id, version_id)), FUNCTION_FIELDS)


@function_group.command("update")
@click.argument("function_id")
@click.argument("version_id", required=False)
@click.option("--input-file", type=click.Path(path_type=Path, dir_okay=False), help="UpdateFunctionRequest JSON.")
@click.option("--tag", multiple=True, help="Replace the tags (repeatable).")
@click.option("--rate-limit", help="e.g. 100-S.")
@json_option
@pass_cli
def update_function(
    cli: CliContext,
    function_id: str,
    version_id: str | None,
    input_file: Path | None,
    tag: tuple[str, ...],
    rate_limit: str | None,
) -> None:
    """Change a version's tags or rate limit."""
    body = json_file(input_file) if input_file else {}
    if tag:
        body["tags"] = list(tag)
    if rate_limit:
        body["rateLimit"] = {"rateLimit": rate_limit}
    if not body:
        raise click.UsageError("nothing to update: give --tag, --rate-limit or --input-file")
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    cli.output.record(plane.update_function(function_id, version, body), FUNCTION_FIELDS)


@function_group.command("delete")
@click.argument("function_id")
@click.argument("version_id", required=False)
@json_option
@pass_cli
def delete_function(cli: CliContext, function_id: str, version_id: str | None) -> None:
    """Delete a version (its deployment is removed first)."""
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    plane.delete_function(function_id, version)
    if cli.output.as_json:
        cli.output.data({"functionId": function_id, "functionVersionId": version, "deleted": True})
    cli.output.say(f"deleted function {function_id} version {version}")


# Deployments


@function_group.group("deploy")
def deploy_group() -> None:
    """Deploy a version on GPUs, change, show or remove its deployment."""


def _specifications(options: dict[str, Any]) -> list[dict[str, Any]]:
    if options["input_file"] is not None:
        specs = json_file(options["input_file"]).get("deploymentSpecifications")
        if not isinstance(specs, list):
            raise click.BadParameter("must hold deploymentSpecifications: [...]", param_hint="--input-file")
        return specs
    if not options["gpu"] or not options["instance_type"]:
        raise click.UsageError("--gpu and --instance-type (or --input-file) are required")
    return [
        {
            "gpu": options["gpu"],
            "instanceType": options["instance_type"],
            "minInstances": options["min_instances"],
            "maxInstances": options["max_instances"],
            "maxRequestConcurrency": options["max_request_concurrency"],
        }
    ]


def _spec_options(command: Any) -> Any:
    for decorator in reversed(
        [
            click.option("--input-file", type=click.Path(path_type=Path, dir_okay=False), help="Deployment JSON."),
            click.option("--gpu", help="GPU name, e.g. H100 (CPU on an embedded gateway)."),
            click.option("--instance-type", help="e.g. NCP.GPU.H100_1x."),
            click.option("--min-instances", type=int, default=1, show_default=True),
            click.option("--max-instances", type=int, default=1, show_default=True),
            click.option("--max-request-concurrency", type=int, default=1, show_default=True),
        ]
    ):
        command = decorator(command)
    return command


def _wait_options(command: Any) -> Any:
    command = click.option("--wait", is_flag=True, help="Wait until the version is ACTIVE (a worker attached).")(
        command
    )
    return click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds --wait waits.")(
        command
    )


def wait_active(output: Output, plane: ControlPlane, function_id: str, version_id: str, timeout: float) -> str:
    """Poll the version's status until ACTIVE, with a live status line."""
    started = time.monotonic()
    status = ""
    with output.status(f"waiting for {function_id} to become ACTIVE") as line:
        while True:
            status = str(plane.get_function(function_id, version_id)["status"])
            elapsed = time.monotonic() - started
            line.update(f"function {function_id} version {version_id}: {status} ({elapsed:.0f} s)")
            if status == "ACTIVE":
                return status
            if status in _FAILED:
                raise CliFailure(f"function {function_id} version {version_id} is {status}, not ACTIVE")
            if elapsed > timeout:
                raise CliFailure(
                    f"function {function_id} version {version_id} still {status} after {timeout:.0f} s",
                    ExitCode.TIMED_OUT,
                )
            time.sleep(0.5)


def _show_deployment(
    cli: CliContext, plane: ControlPlane, deployment: dict[str, Any], wait: bool, timeout: float
) -> None:
    if wait:
        status = wait_active(cli.output, plane, deployment["functionId"], deployment["functionVersionId"], timeout)
        deployment = {**deployment, "functionStatus": status}
    cli.output.record(deployment, DEPLOYMENT_FIELDS)


@deploy_group.command("create")
@click.argument("function_id")
@click.argument("version_id", required=False)
@_spec_options
@_wait_options
@json_option
@pass_cli
def deploy_create(
    cli: CliContext, /, function_id: str, version_id: str | None, wait: bool, timeout: float, **options: Any
) -> None:
    """Deploy a version (--wait: until a worker serves it)."""
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    _show_deployment(cli, plane, plane.deploy(function_id, version, _specifications(options)), wait, timeout)


@deploy_group.command("update")
@click.argument("function_id")
@click.argument("version_id", required=False)
@_spec_options
@_wait_options
@json_option
@pass_cli
def deploy_update(
    cli: CliContext, /, function_id: str, version_id: str | None, wait: bool, timeout: float, **options: Any
) -> None:
    """Change a deployment's instance counts or concurrency."""
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    deployment = plane.update_deployment(function_id, version, _specifications(options))
    _show_deployment(cli, plane, deployment, wait, timeout)


@deploy_group.command("get")
@click.argument("function_id")
@click.argument("version_id", required=False)
@_wait_options
@json_option
@pass_cli
def deploy_get(cli: CliContext, function_id: str, version_id: str | None, wait: bool, timeout: float) -> None:
    """Show a deployment (--wait: once the version is ACTIVE)."""
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    _show_deployment(cli, plane, plane.get_deployment(function_id, version), wait, timeout)


@deploy_group.command("remove")
@click.argument("function_id")
@click.argument("version_id", required=False)
@click.option("--graceful", is_flag=True, help="Let in-flight invocations finish.")
@json_option
@pass_cli
def deploy_remove(cli: CliContext, function_id: str, version_id: str | None, graceful: bool) -> None:
    """Remove a deployment; the version becomes INACTIVE."""
    plane = cli.session.admin()
    version = resolve_version(plane, function_id, version_id)
    cli.output.record(plane.remove_deployment(function_id, version, graceful), FUNCTION_FIELDS)


# Invocation


def _parse_headers(items: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME: VALUE", param_hint="--header")
        headers[name.strip()] = value.strip()
    return headers


def _body_value(content: bytes) -> Any:
    import json

    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def _show_result(cli: CliContext, result: InvocationResult, output_file: Path | None) -> None:
    summary: dict[str, Any] = {
        "requestId": result.request_id,
        "status": result.status,
        "polls": result.polls,
        "downloaded": result.downloaded,
    }
    if result.downloaded:
        target = output_file or Path(f"{result.request_id or 'result'}.zip")
        target.write_bytes(result.content)
        summary["file"] = str(target)
        summary["bytes"] = len(result.content)
        if cli.output.as_json:
            cli.output.data(summary)
        cli.output.say(f"large result ({len(result.content)} bytes) saved to {target}")
        return
    if output_file is not None:
        output_file.write_bytes(result.content)
        summary["file"] = str(output_file)
    if cli.output.as_json:
        cli.output.data({**summary, "body": None if output_file else _body_value(result.content)})
        return
    cli.output.note(f"cfgate: {result.status} NVCF-REQID {result.request_id} after {result.polls} poll(s)")
    if output_file is None:
        sys.stdout.write(result.content.decode("utf-8", "replace").rstrip("\n") + "\n")
    else:
        cli.output.say(f"answer ({len(result.content)} bytes) saved to {output_file}")


@function_group.command("invoke")
@click.argument("function_id")
@click.argument("version_id", required=False)
@click.option("--request-body", "-d", required=True, help="JSON body, or @file.json.")
@click.option(
    "--poll-duration", type=click.IntRange(0, 3600), default=5, show_default=True, help="NVCF-POLL-SECONDS per wait."
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Give up after this many seconds.")
@click.option("--stream", is_flag=True, help="Accept: text/event-stream; print events as they arrive.")
@click.option("--header", "-H", multiple=True, help="Extra request header NAME: VALUE (repeatable).")
@click.option("--output", "-o", "output_file", type=click.Path(path_type=Path, dir_okay=False), help="Save the answer.")
@json_option
@pass_cli
def invoke_function(
    cli: CliContext,
    function_id: str,
    version_id: str | None,
    request_body: str,
    poll_duration: int,
    timeout: float,
    stream: bool,
    header: tuple[str, ...],
    output_file: Path | None,
) -> None:
    """Invoke (pexec): follow 202s with a progress display, save 302 large results, stream SSE."""
    payload = json_argument(request_body, "--request-body")
    headers = _parse_headers(header)
    with cli.session.invoker(poll_duration, timeout) as invoker:
        if stream:
            for chunk in invoker.stream(function_id, payload, version_id=version_id, headers=headers):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            return
        with cli.output.status(f"invoking {function_id}") as line:

            def progress(request_id: str, percent: int | None) -> None:
                done = f"{percent}% complete" if percent is not None else "in progress"
                line.update(f"request {request_id}: {done}")

            try:
                result = invoker.invoke(
                    function_id, payload, version_id=version_id, headers=headers, on_progress=progress
                )
            except TimeoutError as exc:
                raise CliFailure(str(exc), ExitCode.TIMED_OUT) from None
    _show_result(cli, result, output_file)
