"""``cfgate demo``: a gateway on embedded defaults, a sample echo function and its worker, one
invocation, and the curl command that repeats it; with ``--nico``, also one call of the embedded
NICo REST (bare metal) on ``nico.<domain>`` and its curl; with ``--llm``, also the sample OpenAI
container as an LLM function, one chat completion on ``llm.invocation.<domain>`` and the ``openai``
snippet that repeats it (``gateway.llm.demo``).

Everything runs on loopback: the gateway and the echo "container" in this process, the worker
agent (``python -m invoker.worker``) as a child process, exactly as it would run beside a real
inference container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from gateway import sample
from gateway.app import Gateway
from gateway.asgi import Receive, Scope, Send
from gateway.date_header import DatedServer
from gateway.llm.demo import llm_demo
from gateway.server import uvicorn_config
from gateway.settings import Settings


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The sample function: ``POST /echo`` answers its JSON body with the NVCF headers it saw."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/health":
        payload = b'{"status":"ok"}'
    else:
        seen = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower().startswith(b"nvcf-")}
        try:
            echoed: Any = json.loads(body or b"null")
        except ValueError:
            echoed = body.decode("utf-8", "replace")
        payload = json.dumps({"echo": echoed, "nvcfHeaders": seen}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class DemoError(Exception):
    """The demo cannot go on; the message is the one line the user sees."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_port_free(port: int, flag: str, what: str) -> None:
    """Fail with a hint before anything starts: a taken gRPC port otherwise ends in a gRPC traceback."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(f"{what} port {port} is in use: pass {flag} 0 to use any free port") from None


class _EmbeddedServer(DatedServer):
    """A server inside the demo's loop. Ctrl-C is the demo's (one clean-up path: the main task is
    cancelled, its ``finally`` stops everything); uvicorn's own handlers would each take it first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(config: uvicorn.Config) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise DemoError("a server failed to start (see the log above)")
        await asyncio.sleep(0.02)
    return server, task


def _say(text: str) -> None:
    print(f"cfgate demo: {text}", flush=True)


NICO_ORG = "demo"


async def _nico_call(http: httpx.AsyncClient, settings: Settings) -> bool:
    """Mint a NICo service-account token through the door on ``nico.<domain>``, read the service
    account (which sets up provider, tenant and the co-located site), print the curl that repeats it."""
    host = settings.public_urls.host_header("nico")
    minted = await http.post("/v1/admin/keys", json={"org": NICO_ORG, "serviceAccount": True}, headers={"Host": host})
    if minted.status_code != 200:
        raise DemoError(f"the NICo token door answered {minted.status_code}: {minted.text}")
    token = minted.json()["value"]
    url = f"{settings.http_url}/v2/org/{NICO_ORG}/nico/service-account/current"
    headers = {"Host": host, "Authorization": f"Bearer {token}"}
    answer = await http.get(url, headers=headers)
    _say(f"NICo service account (org {NICO_ORG}) answered {answer.status_code}:")
    print(json.dumps(answer.json(), indent=2), flush=True)
    curl = ["curl", "-sS", url, "-H", f"Host: {host}", "-H", f"Authorization: Bearer {token}"]
    _say("repeat it with:")
    print("  " + shlex.join(curl), flush=True)
    return answer.status_code == 200


@dataclass(frozen=True)
class DemoOptions:
    """``cfgate demo``'s flags (0: a free port; no data_dir: the demo's own, removed at exit)."""

    port: int = 0
    grpc_port: int = 0
    worker_port: int = 0
    data_dir: Path | None = None
    once: bool = False
    nico: bool = False
    llm: bool = False


async def run_demo(options: DemoOptions) -> int:
    if options.data_dir is not None:
        return await _run_demo(options, options.data_dir)
    # The default data directory is the demo's own: removed at exit, however the demo ends.
    with tempfile.TemporaryDirectory(prefix="cfgate-demo-") as data:
        return await _run_demo(options, Path(data))


async def _run_demo(options: DemoOptions, data: Path) -> int:
    port, grpc_port, worker_port = options.port, options.grpc_port, options.worker_port
    once, nico, llm = options.once, options.nico, options.llm
    if port:
        _check_port_free(port, "--port", "HTTP")
    if grpc_port:
        _check_port_free(grpc_port, "--grpc-port", "gRPC")
    if worker_port:
        _check_port_free(worker_port, "--worker-port", "worker")
    settings = Settings.load(
        {
            "port": port or _free_port(),
            "grpc_port": grpc_port or _free_port(),
            "worker_port": worker_port or _free_port(),
            "data_dir": data,
            "log_level": "warning",
        },
        env={},
    )
    gateway_config = uvicorn_config(settings)
    gateway_server, gateway_task = await _serve(gateway_config)
    gateway = gateway_config.app
    assert isinstance(gateway, Gateway)
    base = settings.http_url
    _say(f"gateway on {base} (gRPC invocation {gateway.grpc_port}, workers {gateway.worker_port}), data in {data}")
    echo_port = _free_port()
    echo_server, echo_task = await _serve(
        uvicorn.Config(echo_app, host="127.0.0.1", port=echo_port, log_level="warning", lifespan="off")
    )
    _say(f"sample echo container on http://127.0.0.1:{echo_port}")
    worker: subprocess.Popen[bytes] | None = None
    extras = contextlib.AsyncExitStack()  # --llm: its container and worker
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            token = await sample.admin_token(http)
            function = await sample.create_function(http, token, echo_port)
            fid = function.function_id
            _say(f"function echo registered and deployed: {fid} (version {function.version_id})")
            worker = subprocess.Popen(
                sample.worker_command(f"127.0.0.1:{gateway.worker_port}", function, echo_port),
                env=sample.worker_env(function),
            )
            try:
                await sample.wait_active(http, function)
            except sample.SampleError:
                raise DemoError("the worker did not attach within 60 s") from None
            _say("worker attached; function is ACTIVE")
            key = await sample.invoke_key(http, token)
            request = {"message": "hello from cfgate"}
            url = f"{base}/v2/nvcf/pexec/functions/{fid}"
            invocation_host = settings.public_urls.host_header("invocation")  # configured, not a Host seen
            invoke_headers = {"Host": invocation_host, "Authorization": f"Bearer {key}"}
            started = time.perf_counter()
            answer = await http.post(url, json=request, headers=invoke_headers)
            elapsed = (time.perf_counter() - started) * 1000
            _say(
                f"invocation answered {answer.status_code} in {elapsed:.1f} ms "
                f"(NVCF-REQID {answer.headers.get('nvcf-reqid')}):"
            )
            print(json.dumps(answer.json(), indent=2), flush=True)
            curl = [
                "curl", "-sS", "-X", "POST", url,
                "-H", f"Host: {invocation_host}",
                "-H", f"Authorization: Bearer {key}",
                "-H", "Content-Type: application/json",
                "-d", json.dumps(request),
            ]  # fmt: skip
            _say("repeat it with:")
            print("  " + shlex.join(curl), flush=True)
            if answer.status_code != 200:
                return 1
            if nico and not await _nico_call(http, settings):
                return 1
            worker_target = f"127.0.0.1:{gateway.worker_port}"
            if llm and not await extras.enter_async_context(
                llm_demo(http, settings, token, worker_target, _free_port())
            ):
                return 1
            if not once:
                _say("running until Ctrl-C")
                await asyncio.Event().wait()
    finally:
        await extras.aclose()
        if worker is not None:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
        echo_server.should_exit = True
        gateway_server.should_exit = True
        await asyncio.gather(echo_task, gateway_task, return_exceptions=True)
    return 0


def main(options: DemoOptions) -> int:
    import uvloop

    try:
        return uvloop.run(run_demo(options))
    except DemoError as exc:
        print(f"cfgate demo: {exc}", file=sys.stderr, flush=True)
        return 1
    except SystemExit:
        # uvicorn's exit when the application's start-up failed; it logged the reason.
        print("cfgate demo: the gateway failed to start (see the log above)", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
