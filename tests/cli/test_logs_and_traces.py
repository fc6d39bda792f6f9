"""JSON logs, the access log and OpenTelemetry traces of real processes: ``cfgate serve
--log-format json --access-log`` and ``cfgate worker --log-format json`` with the standard
``OTEL_*`` variables pointing at an in-process OTLP/HTTP receiver, and the echo server as the
container (it reports the headers it saw as ``x-seen-<name>``)."""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from invoker import logs
from tests.cli.conftest import ROOT, CliGateway, clean_env, start_gateway, state_of, stop
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.servers import RedisServer, find_free_port
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

CPU = ["--gpu", "CPU", "--instance-type", "cfgate.local", "--max-request-concurrency", "4"]
BOOTSTRAP_SECRET = "bootstrap-" + secrets.token_hex(12)
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3


@dataclass
class Observed:
    gateway: CliGateway
    receiver: OtlpReceiver
    function_id: str
    version_id: str
    api_key: str
    admin_token: str

    def invoke(self, headers: dict[str, str] | None = None, key: str | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.base}/v2/nvcf/pexec/functions/{self.function_id}",
            headers={
                "Host": "invocation.localhost",
                "Authorization": f"Bearer {key or self.api_key}",
                **(headers or {}),
            },
            json={"hello": "world"},
            timeout=30,
        )

    def log_lines(self) -> list[str]:
        lines = []
        for path in sorted(self.gateway.work.glob("*.log")):
            lines += path.read_text(errors="replace").splitlines()
        return lines

    def json_lines(self, name: str) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in (self.gateway.work / name).read_text().splitlines() if line.startswith("{")
        ]


def _wait_for_status(gateway: CliGateway, function_id: str, wanted: str) -> None:
    for _ in range(300):
        got = gateway.cli("function", "get", function_id, "--json")
        if got.code == 0 and got.json()["status"] == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{function_id} never became {wanted}")


@pytest.fixture(scope="module", params=["memory", "redis"])
def observed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, echo_container: str
) -> Iterator[Observed]:
    """A gateway on the memory queue, or on Redis (the traceparent then travels through the queue)."""
    work = tmp_path_factory.mktemp("observed")
    queue: tuple[str, ...] = ()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flushall()
        queue = ("--redis", server.url)
    with otlp_receiver() as receiver:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
        flags = ("--log-format", "json", "--access-log", "--bootstrap-secret", BOOTSTRAP_SECRET, *queue)
        gateway, proc = start_gateway(work, *flags, env=otel)
        try:
            assert gateway.cli("init", "--gateway", gateway.base).code == 0
            port = echo_container.rsplit(":", 1)[1]
            created = gateway.cli(
                "function", "create", "--name", "echo", "--inference-url", "/echo", "--inference-port", port,
                "--health-uri", "/health", "--image", "cfgate/echo:1", "--json",
            )  # fmt: skip
            assert created.code == 0, created.err
            fid, vid = created.json()["id"], created.json()["versionId"]
            deploying = gateway.cli_background("function", "deploy", "create", fid, *CPU, "--wait", "--timeout", "90")
            _wait_for_status(gateway, fid, "DEPLOYING")
            admin_token = state_of(gateway)["admin_token"]
            gateway.start_worker(
                fid, echo_container, admin_token, "--log-format", "json", "--log-level", "INFO", env=otel
            )
            deploying.communicate(timeout=120)
            assert deploying.returncode == 0
            if request.param == "redis":  # the gateway keeps its presence and queues there
                assert int(str(server.command("DBSIZE"))) > 0
            generated = gateway.cli("api-key", "generate", "--json")
            assert generated.code == 0, generated.err
            yield Observed(gateway, receiver, fid, vid, generated.json()["value"], admin_token)
        finally:
            stop([*gateway.procs, proc])


def _one(spans: list[ReceivedSpan], **wanted: str) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, found)
    return found[0]


def _tree_complete(trace_id: str) -> Any:
    def complete(spans: list[ReceivedSpan]) -> bool:
        names = {(s.service, s.name) for s in spans if s.trace_id == trace_id}
        wanted = {("cfgate-gateway", n) for n in ("invocation", "queue wait", "worker")}
        return wanted | {("cfgate-worker", "container call")} <= names

    return complete


def test_an_invocation_is_one_trace_from_the_callers_traceparent_to_the_container(observed: Observed) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    answer = observed.invoke({"traceparent": f"00-{trace_id}-{caller_span}-01"})
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["nvcf-reqid"]
    version, seen_trace, seen_span, flags = answer.headers["x-seen-traceparent"].split("-")
    assert (version, seen_trace, flags) == ("00", trace_id, "01")
    assert seen_span != caller_span

    spans = observed.receiver.wait_for(_tree_complete(trace_id))
    invocation = _one(spans, trace_id=trace_id, name="invocation")
    assert invocation.service == "cfgate-gateway" and invocation.kind == SPAN_KIND_SERVER
    assert invocation.parent_span_id == caller_span
    assert invocation.attributes["nvcf.request_id"] == request_id
    assert invocation.attributes["nvcf.function_id"] == observed.function_id
    assert invocation.attributes["nvcf.function_version_id"] == observed.version_id
    assert invocation.attributes["nvcf.nca_id"] == "nvcf-default"
    assert invocation.attributes["nvcf.status"] == "FULFILLED"
    assert invocation.attributes["http.response.status_code"] == 200
    queue = _one(spans, trace_id=trace_id, name="queue wait")
    worker = _one(spans, trace_id=trace_id, name="worker")
    assert queue.parent_span_id == invocation.span_id and worker.parent_span_id == invocation.span_id
    assert invocation.start_ns <= queue.start_ns <= queue.end_ns == worker.start_ns <= worker.end_ns
    assert worker.end_ns <= invocation.end_ns
    # The worker agent's own span: a child of the gateway's worker span, and what the container saw.
    container = _one(spans, trace_id=trace_id, name="container call")
    assert container.service == "cfgate-worker" and container.kind == SPAN_KIND_CLIENT
    assert container.parent_span_id == worker.span_id
    assert container.span_id == seen_span
    assert container.attributes["nvcf.request_id"] == request_id
    assert container.attributes["http.response.status_code"] == 200


def test_without_a_traceparent_the_gateway_starts_the_trace(observed: Observed) -> None:
    answer = observed.invoke()
    assert answer.status_code == 200, answer.text
    _, trace_id, seen_span, _ = answer.headers["x-seen-traceparent"].split("-")
    spans = observed.receiver.wait_for(_tree_complete(trace_id))
    invocation = _one(spans, trace_id=trace_id, name="invocation")
    assert invocation.parent_span_id == ""
    assert invocation.attributes["nvcf.request_id"] == answer.headers["nvcf-reqid"]
    assert _one(spans, trace_id=trace_id, name="container call").span_id == seen_span


def test_json_log_lines_carry_request_ids_and_no_secret_values(observed: Observed) -> None:
    base = observed.gateway.base
    answer = observed.invoke()
    assert answer.status_code == 200
    request_id = answer.headers["nvcf-reqid"]
    # Credential operations whose values must never reach a log: a second key minted and deleted,
    # an admin token minted with the bootstrap secret, a refused call with a made-up key.
    keys = {"Host": "api-keys.localhost", "Authorization": f"Bearer {observed.admin_token}"}
    minted = httpx.post(base + "/v1/keys", json=key_body(), headers={**keys, **KEY_HEADERS}, timeout=10)
    assert minted.status_code == 200, minted.text
    second_key, second_id = minted.json()["value"], minted.json()["id"]
    assert observed.invoke(key=second_key).status_code == 200
    assert httpx.delete(f"{base}/v1/keys/{second_id}", headers=keys, timeout=10).status_code in (200, 204)
    door = httpx.post(
        base + "/v1/admin/keys",
        headers={"Host": "api-keys.localhost", "Cfgate-Bootstrap-Secret": BOOTSTRAP_SECRET},
        timeout=10,
    )
    assert door.status_code == 200
    minted_token = door.json()["value"]
    made_up = "nvapi-" + secrets.token_urlsafe(48)
    assert observed.invoke(key=made_up).status_code == 401
    signed = observed.gateway.cli("function", "invoke", observed.function_id, "-d", "{}")
    assert signed.code == 0, signed.err
    time.sleep(0.5)  # the last lines flushed

    gateway_lines = observed.json_lines("gateway.log")
    for raw in (observed.gateway.work / "gateway.log").read_text().splitlines():
        # Every log line is JSON; only the banner is printed as text.
        assert raw.startswith(("{", "cfgate:", "  ")), raw
    access = [line for line in gateway_lines if line["logger"] == "gateway.access"]
    ours = [line for line in access if line.get("request_id") == request_id]
    assert len(ours) == 1, access[-5:]
    (line,) = ours
    assert line["level"] == "INFO" and line["time"].endswith("Z")
    assert (line["method"], line["service"], line["status"]) == ("POST", "invocation", 200)
    assert line["path"] == "/v2/nvcf/pexec/functions/{id}"
    assert line["function_id"] == observed.function_id and line["account"] == "nvcf-default"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    refused = [a for a in access if a["status"] == 401 and a["service"] == "invocation"]
    assert refused and all(a.get("request_id") for a in refused)  # NVCF-REQID of the error answer
    control = [a for a in access if a["service"] == "api-keys" and a["method"] == "DELETE"]
    assert control and control[-1]["path"] == "/v1/keys/{id}" and control[-1]["status"] in (200, 204)
    assert control[-1]["account"] == "nvcf-default"  # bound once the admin token was checked

    worker_logs = [p.name for p in observed.gateway.work.glob("worker-*.log")]
    assert worker_logs
    for name in worker_logs:
        text = (observed.gateway.work / name).read_text()
        assert text.strip(), name
        for raw in text.splitlines():
            assert json.loads(raw)["logger"].startswith(("invoker", "root", "asyncio", "grpc")), raw

    values = {
        "admin token": observed.admin_token,
        "minted admin token": minted_token,
        "API key": observed.api_key,
        "second API key": second_key,
        "made-up key": made_up,
        "bootstrap secret": BOOTSTRAP_SECRET,
    }
    everything = "\n".join(observed.log_lines())
    leaked = [what for what, value in values.items() if value in everything]
    assert not leaked


def test_a_worker_line_about_an_invocation_names_its_request_function_version_and_account(
    observed: Observed, echo_container: str
) -> None:
    """A worker whose container cannot be reached (its health URL answers, its inference port is
    closed): the 502 and the worker's warning about it carry the same ids."""
    gateway = observed.gateway
    created = gateway.cli(
        "function", "create", "--name", "unreachable", "--inference-url", "/echo", "--inference-port", "9",
        "--image", "cfgate/unreachable:1", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    fid, vid = created.json()["id"], created.json()["versionId"]
    deploying = gateway.cli_background("function", "deploy", "create", fid, *CPU, "--wait", "--timeout", "90")
    _wait_for_status(gateway, fid, "DEPLOYING")
    argv = [
        sys.executable, "-m", "gateway", "worker", "--gateway", f"127.0.0.1:{gateway.worker_port}",
        "--function-id", fid, "--inference-url", f"http://127.0.0.1:{find_free_port()}",
        "--health-url", echo_container + "/health", "--log-format", "json",
    ]  # fmt: skip
    gateway.start(argv, {"CFGATE_WORKER_TOKEN": observed.admin_token}, "worker-unreachable")
    deploying.communicate(timeout=120)
    assert deploying.returncode == 0
    answer = httpx.post(
        f"{gateway.base}/v2/nvcf/pexec/functions/{fid}",
        headers={"Host": "invocation.localhost", "Authorization": f"Bearer {observed.api_key}"},
        json={},
        timeout=30,
    )
    assert answer.status_code == 502, answer.text
    request_id = answer.headers["nvcf-reqid"]
    wanted = {"request_id": request_id, "function_id": fid, "version_id": vid, "account": "nvcf-default"}
    for _ in range(50):  # the client may have its answer before either process wrote its line
        about = [line for line in observed.json_lines("worker-unreachable.log") if line.get("request_id") == request_id]
        access = [line for line in observed.json_lines("gateway.log") if line.get("request_id") == request_id]
        if about and access:
            break
        time.sleep(0.1)
    assert about and about[0]["level"] == "WARNING" and "container call failed" in about[0]["message"]
    assert {k: about[0][k] for k in wanted} == wanted
    assert [(a["logger"], a["status"]) for a in access] == [("gateway.access", 502)]
    # The version was not in the path: the invocation told the line which one served it.
    assert {k: access[0][k] for k in wanted} == wanted


def test_the_redaction_filter_catches_what_a_careless_line_would_leak() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RedactingFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    secret = "registered-" + secrets.token_hex(8)
    key = "nvapi-" + secrets.token_urlsafe(48)
    jwt_like = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    logs.register_secret(secret)
    try:
        logger.warning("headers %s", {"authorization": "Bearer abc.def.ghi"})
        logger.warning("key %s token %s", key, jwt_like, extra={"request_id": "r-1", "detail": f"has {secret}"})
        logger.warning("url /v2/nvcf/pexec/results/x?expires=1&signature=deadbeefcafe")
        try:
            raise ValueError(f"bootstrap_secret={secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    text = stream.getvalue()
    for value in (secret, key, jwt_like, "abc.def.ghi", "deadbeefcafe"):
        assert value not in text
    assert lines[0]["message"] == "headers {'authorization': 'Bearer [redacted]'}"
    assert lines[1]["message"] == "key [redacted] token [redacted]"
    assert lines[1]["request_id"] == "r-1" and lines[1]["detail"] == "has [redacted]"
    assert lines[2]["message"] == "url /v2/nvcf/pexec/results/x?expires=1&signature=[redacted]"
    assert "ValueError: bootstrap_secret=[redacted]" in lines[3]["exception"]


def test_without_otel_variables_no_tracer_and_no_sdk_tracing_is_loaded() -> None:
    probe = (
        "import sys\n"
        "import gateway.app, invoker.worker.invocation\n"
        "from invoker import tracing\n"
        "assert tracing.process_tracer('cfgate-gateway') is None\n"
        # (redis-py imports parts of the OpenTelemetry API by itself when it is installed)
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter'))))\n"
    )
    env = {k: v for k, v in clean_env().items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("env", "requested"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_requested_by_the_standard_variables(env: dict[str, str], requested: bool) -> None:
    from invoker.tracing import tracing_requested

    assert tracing_requested(env) is requested


def test_text_lines_end_with_the_requests_fields_before_any_traceback() -> None:
    record = logging.makeLogRecord(
        {"name": "gateway.invocation", "levelno": logging.WARNING, "levelname": "WARNING", "msg": "late %s"}
    )
    record.args = ("r-1",)
    record.request_id, record.account = "r-1", "nca"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    line = logs.TextFormatter().format(record)
    head, traceback = line.split("\n", 1)
    assert head.endswith(" WARNING gateway.invocation: late r-1 request_id=r-1 account=nca")
    assert traceback.startswith("Traceback") and traceback.endswith("RuntimeError: boom")


def test_an_unknown_log_format_is_a_settings_error_and_a_usage_error() -> None:
    from gateway.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="log format must be one of text, json"):
        Settings.load(env={"CFGATE_LOG_FORMAT": "xml"})
    assert Settings.load(env={"CFGATE_LOG_FORMAT": "json", "CFGATE_ACCESS_LOG": "true"}).access_log is True
    ran = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--log-format", "xml"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert ran.returncode == 2 and "'xml' is not one of 'text', 'json'" in ran.stderr
