"""The scenarios: what runs where, and the request each load generator repeats.

A scenario is a context manager that starts its processes (server side pinned to the server
cores; load generator, worker agent, echo container and helpers on the client cores) and yields
the *subjects* to measure — usually one, two when a peer is measured on the same layout (``proxy``
yields cfgate's proxy and nginx). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import nginx, rayserve, redis, tls
from bench.llm_stack import start_llm_stack
from bench.loadgen.grpc_unary import GrpcTarget
from bench.loadgen.target import Target, body_1k
from bench.procs import LOOPBACK, Proc, free_port, python, wait_port
from bench.servers.grpc_echo import METHOD as GRPC_ECHO_METHOD
from bench.stack import Stack, start_gateway, start_grpc_stack, start_stack
from gateway import sample


@dataclass
class Context:
    work_dir: Path
    server_cpus: set[int]
    client_cpus: set[int]
    notes: list[str] = field(default_factory=list)

    def pair_cpus(self) -> set[int]:
        """Cores for two server processes: the server core and one more (the client's on 2 cores)."""
        import os

        usable = sorted(os.sched_getaffinity(0))
        spare = [c for c in usable if c not in self.server_cpus | self.client_cpus]
        return self.server_cpus | {(spare or sorted(self.client_cpus))[0]}


@dataclass
class Subject:
    name: str
    target: Target | GrpcTarget
    server: list[Proc]
    kind: str = "http"  # "http": wrk + open loop; "sse": streams; "grpc": gRPC unary calls
    # Run after the warm-up; raises NotAvailable when the build does not do what the scenario measures.
    check: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)
    # Worker agents serving the subject: their CPU per request is reported beside the server's.
    agents: list[Proc] = field(default_factory=list)
    # Subjects of one scenario that all set it are also measured at this absolute rate, in turns
    # (``runner.alternate``): compared at equal load, where CPU per request does not depend on how
    # much each batched at its own peak, and with the machine's drift spread over both.
    fixed_rate: float | None = None


Scenario = Callable[[Context], contextlib.AbstractContextManager[list[Subject]]]


def _echo_body_target(port: int, path: str = "/echo", host: str = "", headers: dict[str, str] | None = None) -> Target:
    return Target(port, path, "POST", host, headers or {}, body_1k())


@contextlib.contextmanager
def ceiling(ctx: Context) -> Iterator[list[Subject]]:
    port = free_port()
    proc = Proc("ceiling", python("bench.servers.ceiling", "--port", str(port)), ctx.server_cpus, ctx.work_dir)
    try:
        wait_port(port, proc)
        yield [Subject("ceiling", Target(port, "/", "GET"), [proc], notes=["13-byte GET, as DESIGN §8"])]
    finally:
        proc.stop()


@contextlib.contextmanager
def direct(ctx: Context) -> Iterator[list[Subject]]:
    port = free_port()
    proc = Proc("direct-echo", python("bench.servers.echo", "--port", str(port)), ctx.server_cpus, ctx.work_dir)
    try:
        wait_port(port, proc)
        yield [Subject("direct", _echo_body_target(port), [proc])]
    finally:
        proc.stop()


def _pexec(stack: Stack) -> Target:
    headers = {"Authorization": f"Bearer {stack.key}"}
    path = f"/v2/nvcf/pexec/functions/{stack.function.function_id}"
    target = _echo_body_target(stack.port, path, "invocation.localhost", headers)
    return dataclasses.replace(target, scheme=stack.scheme)


def _tlb(stack: Stack, path: str = "/echo", method: str = "POST") -> Target:
    headers = {"Authorization": f"Bearer {stack.key}"}
    host = f"{stack.function.function_id}.invocation.localhost"
    if method == "GET":
        return Target(stack.port, path, "GET", host, {**headers, "Accept": "text/event-stream"})
    return _echo_body_target(stack.port, path, host, headers)


@contextlib.contextmanager
def _stack(ctx: Context, name: str, **kwargs: object) -> Iterator[Stack]:
    stack = start_stack(name, ctx.server_cpus, ctx.client_cpus, ctx.work_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def pexec_embedded(ctx: Context) -> Iterator[list[Subject]]:
    with _stack(ctx, "pexec-embedded") as stack:
        yield [Subject("pexec-embedded", _pexec(stack), [stack.gateway], agents=[stack.worker])]


@contextlib.contextmanager
def pexec_tls(ctx: Context) -> Iterator[list[Subject]]:
    """pexec over HTTPS (``--tls-cert/--tls-key``, a self-signed P-256 certificate)."""
    with _stack(ctx, "pexec-tls", tls=tls.self_signed(ctx.work_dir / "pexec-tls-certs")) as stack:
        yield [Subject("pexec-tls", _pexec(stack), [stack.gateway], notes=["TLS 1.3, keep-alive"])]


@contextlib.contextmanager
def tlb_embedded(ctx: Context) -> Iterator[list[Subject]]:
    with _stack(ctx, "tlb-embedded") as stack:
        yield [Subject("tlb-embedded", _tlb(stack), [stack.gateway], agents=[stack.worker])]


# The pair's common load: well under either's peak on the slow shared machine.
METRICS_FIXED_RATE = 600.0


@contextlib.contextmanager
def pexec_metrics(ctx: Context) -> Iterator[list[Subject]]:
    """pexec-embedded twice, side by side: ``/metrics`` off, and on (function labels too, scraped
    every second). Besides each one's sweep, the runner alternates fixed-rate points between the
    two (``fixed_rate``), so a noisy machine's drift hits both alike: their CPU per invocation at
    equal load is the metrics' cost (issue 17)."""
    port = free_port()
    on = ["--metrics-port", str(port), "--metrics-function-labels"]
    with _stack(ctx, "pexec-metrics-off") as off_stack, _stack(ctx, "pexec-metrics-on", extra=on) as on_stack:
        with _scraping(port):
            subjects = [
                Subject("pexec-metrics-off", _pexec(off_stack), [off_stack.gateway], notes=["/metrics off"],
                        agents=[off_stack.worker], fixed_rate=METRICS_FIXED_RATE),
                Subject("pexec-metrics-on", _pexec(on_stack), [on_stack.gateway],
                        notes=["/metrics on, function labels, scraped every 1 s"], agents=[on_stack.worker],
                        fixed_rate=METRICS_FIXED_RATE),
            ]  # fmt: skip
            yield subjects


@contextlib.contextmanager
def _scraping(port: int | None, every: float = 1.0) -> Iterator[None]:
    """A Prometheus stand-in: GET /metrics every ``every`` seconds until the block ends."""
    if port is None:
        yield
        return
    import threading
    import urllib.request

    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(every):
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as r,
            ):
                r.read()

    thread = threading.Thread(target=scrape, name="bench-scraper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _redis_scenario(processes: int) -> Scenario:
    name = f"pexec-redis-{processes}p"

    @contextlib.contextmanager
    def scenario(ctx: Context) -> Iterator[list[Subject]]:
        server = redis.start(ctx.client_cpus, ctx.work_dir, name)
        try:
            extra = ["--redis", server.url]
            cpus = ctx.server_cpus
            notes = []
            if processes > 1:
                extra += ["--processes", str(processes)]
                cpus = ctx.pair_cpus()
                if cpus & ctx.client_cpus:
                    notes.append("second gateway process shares a core with the load generator (2-core machine)")
            ctx_cpus = Context(ctx.work_dir, cpus, ctx.client_cpus)
            with _stack(ctx_cpus, name, extra=extra) as stack:
                check = lambda: redis.require_streams(server, name)  # noqa: E731
                subject = Subject(
                    name, _pexec(stack), [stack.gateway, server.proc], check=check, notes=notes, agents=[stack.worker]
                )
                yield [subject]
        finally:
            server.proc.stop()

    return scenario


@contextlib.contextmanager
def sse(ctx: Context) -> Iterator[list[Subject]]:
    with _stack(ctx, "sse") as stack:
        path = "/sse?events=100"
        direct_target = Target(stack.echo_port, path, "GET", headers={"Accept": "text/event-stream"})
        yield [
            Subject("sse", _tlb(stack, path, "GET"), [stack.gateway], kind="sse", notes=["TLB, 100 events/stream"]),
            Subject("sse-direct", direct_target, [stack.procs[0]], kind="sse", notes=["the container, no gateway"]),
        ]


LLM_TOKENS = 64  # tokens per stream: each a chunk, plus the finish chunk and [DONE]


def _chat_stream(port: int, model: str, host: str = "", headers: dict[str, str] | None = None) -> Target:
    messages = [{"role": "user", "content": "bench tokens please"}]
    body = {"model": model, "messages": messages, "max_tokens": LLM_TOKENS, "stream": True}
    wire = json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **(headers or {})}
    return Target(port, "/v1/chat/completions", "POST", host, all_headers, wire)


@contextlib.contextmanager
def llm_stream(ctx: Context) -> Iterator[list[Subject]]:
    """Streaming chat completions of the sample OpenAI container, through the LLM host and direct."""
    stack = start_llm_stack("llm-stream", ctx.server_cpus, ctx.client_cpus, ctx.work_dir)
    try:
        model = f"{stack.function.function_id}/{sample.LLM_MODEL}"
        auth = {"Authorization": f"Bearer {stack.key}"}
        notes = [f"{LLM_TOKENS} tokens/stream, OpenAI SSE"]
        yield [
            Subject(
                "llm-stream",
                _chat_stream(stack.port, model, "llm.invocation.localhost", auth),
                [stack.gateway],
                kind="sse",
                notes=[*notes, "llm.invocation host"],
            ),
            Subject(
                "llm-stream-direct",
                _chat_stream(stack.container_port, sample.LLM_MODEL),
                [stack.container],
                kind="sse",
                notes=[*notes, "the container, no gateway"],
            ),
        ]
    finally:
        stack.stop()


@contextlib.contextmanager
def grpc_unary(ctx: Context) -> Iterator[list[Subject]]:
    """gRPC unary calls (1 KiB) through cfgate's gRPC port, then straight to the container."""
    stack, grpc_port = start_grpc_stack("grpc-unary", ctx.server_cpus, ctx.client_cpus, ctx.work_dir)
    try:
        metadata = [("authorization", f"Bearer {stack.key}"), ("function-id", stack.function.function_id)]
        through = GrpcTarget(f"{LOOPBACK}:{grpc_port}", GRPC_ECHO_METHOD, metadata)
        direct_target = GrpcTarget(f"{LOOPBACK}:{stack.echo_port}", GRPC_ECHO_METHOD, [])
        yield [
            Subject("grpc-unary", through, [stack.gateway], kind="grpc", agents=[stack.worker]),
            Subject("grpc-unary-direct", direct_target, [stack.procs[0]], kind="grpc", notes=["the container"]),
        ]
    finally:
        stack.stop()


@contextlib.contextmanager
def proxy(ctx: Context) -> Iterator[list[Subject]]:
    upstream_port = free_port()
    upstream = Proc(
        "proxy-upstream", python("bench.servers.echo", "--port", str(upstream_port)), ctx.client_cpus, ctx.work_dir
    )
    procs = [upstream]
    try:
        wait_port(upstream_port, upstream)
        env = {"CFGATE_UPSTREAMS": f"api-keys=http://{LOOPBACK}:{upstream_port}"}
        gateway, port, _ = start_gateway("proxy", ctx.server_cpus, ctx.work_dir, env=env)
        procs.append(gateway)
        subjects = [Subject("proxy", _echo_body_target(port, "/v1/echo", "api-keys.localhost"), [gateway])]
        if nginx.available():
            server, nginx_port = nginx.start(ctx.server_cpus, ctx.work_dir, upstream_port)
            procs.append(server)
            subjects.append(Subject("nginx", _echo_body_target(nginx_port, "/v1/echo"), [server]))
        else:
            ctx.notes.append(f"nginx: {nginx.missing_reason()}")
        yield subjects
    finally:
        for proc in reversed(procs):
            proc.stop()


@contextlib.contextmanager
def ray_serve(ctx: Context) -> Iterator[list[Subject]]:
    with rayserve.start(ctx.server_cpus, ctx.work_dir) as (proc, port, checked):
        yield [Subject("rayserve", _echo_body_target(port, "/echo"), [proc], notes=["Ray Serve, 1 replica", checked])]


# In run order: ``direct`` after ``pexec-embedded`` so that it can be measured at half of pexec's peak.
SCENARIOS: dict[str, Scenario] = {
    "ceiling": ceiling,
    "pexec-embedded": pexec_embedded,
    "pexec-tls": pexec_tls,
    "direct": direct,
    "tlb-embedded": tlb_embedded,
    "pexec-metrics": pexec_metrics,
    "pexec-redis-1p": _redis_scenario(1),
    "pexec-redis-2p": _redis_scenario(2),
    "sse": sse,
    "llm-stream": llm_stream,
    "grpc-unary": grpc_unary,
    "proxy": proxy,
    "rayserve": ray_serve,
}
ALL = [*SCENARIOS, "hotpath"]


def in_run_order(names: list[str]) -> list[str]:
    """``names`` in the order of ``ALL``, whatever order ``--scenarios`` gave them in: a ``direct``
    listed before ``pexec-embedded`` would otherwise miss its half-pexec-peak point, and the report
    would say the added latency was not measured (the merged-build run of 2026-12-04)."""
    return sorted(dict.fromkeys(names), key=ALL.index)
