"""``--processes N``: the supervisor's ``/metrics``, the sum of its children's.

Each child serves its own metrics on a Unix socket in a private directory made for this run
(``Settings.metrics_socket``); the parent serves ``--metrics-port`` and, per scrape, reads every
child's exposition, adds the samples up (counters, histogram buckets, per-process gauges) and
writes one. The queue gauges are the exception: with Redis every child reads the same shared
queue, so they are merged by ``max``, not summed.

Why not prometheus-client's multiprocess mode: its values live in mmap'ed files, so each
increment is a locked write into a file-backed page (several µs), and its collector cannot
include gauges computed at scrape time (queue depth in Redis). Here the children count with
plain ints and the price is paid per scrape: about a millisecond per child.

A child that restarts starts its counters from zero: the host's sums fall back, which
Prometheus' ``rate()`` reads as a counter reset. A child that does not answer within the
timeout is left out of that scrape (``cfgate_gateway_processes`` says how many answered).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from invoker.metrics.exposition import CONTENT_TYPE, render_families

log = logging.getLogger("gateway.metrics")

# Families every process reads from the shared queue: the host's value is any one of them.
SHARED_FAMILIES = frozenset({"cfgate_queue_depth", "cfgate_queue_oldest_age_seconds"})
CHILD_TIMEOUT_SECONDS = 5.0


def read_child(path: str, timeout: float = CHILD_TIMEOUT_SECONDS) -> str:
    """One child's exposition over its Unix socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nhost: metrics\r\nconnection: close\r\n\r\n")
        parts = []
        while chunk := sock.recv(1 << 16):
            parts.append(chunk)
    head, _, body = b"".join(parts).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.partition(b"\r\n")[0]
        raise OSError(f"child metrics answered {status!r}")
    return body.decode()


def merge(expositions: Iterable[str]) -> list[Metric]:
    """The families of several processes as one: samples with equal names and labels added up
    (``max`` for the shared queue gauges), in the order first seen."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in expositions:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            shared = family.name in SHARED_FAMILIES
            samples = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                known = samples.get(key)
                if known is None:
                    samples[key] = sample.value
                else:
                    samples[key] = max(known, sample.value) if shared else known + sample.value
    for name, merged in families.items():
        merged.samples = [Sample(sample, dict(labels), value) for (sample, labels), value in values[name].items()]
    return list(families.values())


def render_merged(expositions: Iterable[str]) -> bytes:
    return render_families(_Merged(merge(expositions)))


def render_host(sockets: Sequence[str]) -> bytes:
    texts = []
    for path in sockets:
        try:
            texts.append(read_child(path))
        except OSError as exc:
            log.debug("metrics of %s not read: %s", path, exc)
    return render_merged(texts)


class _Merged:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class HostMetricsServer:
    """The parent's ``/metrics`` (a thread: the supervisor's own loop is a sleep-and-poll)."""

    def __init__(self, host: str, port: int, sockets: Sequence[str]) -> None:
        sockets = list(sockets)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.partition("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "scrape /metrics")
                    return
                body = render_host(sockets)
                self.send_response(200)
                self.send_header("content-type", CONTENT_TYPE)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="cfgate-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
