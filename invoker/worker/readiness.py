"""Waiting for the inference container before registering (NVCF: up to 30 minutes).

With a health URL the container is ready when ``GET <health URL>`` answers 200; without one, when a
TCP connection to the inference port succeeds. Progress is logged every 10 seconds.
"""

from __future__ import annotations

import asyncio
import enum
import logging

from invoker.worker.config import WorkerConfig, parse_http_url
from invoker.worker.http_client import HttpClient, HttpClientError

__all__ = ["Readiness", "probe_health", "probe_tcp", "wait_until_ready"]

log = logging.getLogger("invoker.worker.readiness")

_PROBE_TIMEOUT = 5.0
_LOG_EVERY = 10.0


class Readiness(enum.Enum):
    READY = "ready"
    TIMED_OUT = "timed out"
    STOPPED = "stopped"


async def probe_health(url: str) -> str | None:
    """None when ``GET url`` answers 200, else why not."""
    endpoint = parse_http_url(url)
    client = HttpClient(endpoint.host, endpoint.port, max_connections=1, connect_timeout=_PROBE_TIMEOUT)
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            headers = [("Host", f"{endpoint.host}:{endpoint.port}"), ("Connection", "close")]
            async with await client.request("GET", endpoint.path, headers) as response:
                await response.read(limit=1 << 16)
                return None if response.status == 200 else f"health answered {response.status}"
    except TimeoutError:
        return "health check timed out"
    except (HttpClientError, OSError) as exc:
        return str(exc)
    finally:
        client.close()


async def probe_tcp(host: str, port: int) -> str | None:
    """None when a TCP connection to host:port succeeds, else why not."""
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return "connect timed out"
    except OSError as exc:
        return exc.strerror or str(exc)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def wait_until_ready(config: WorkerConfig, stop: asyncio.Event) -> Readiness:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + config.ready_timeout
    last_log = started
    endpoint = config.inference
    target = config.health_url or f"tcp://{endpoint.host}:{endpoint.port}"
    while True:
        if config.health_url:
            why = await probe_health(config.health_url)
        else:
            why = await probe_tcp(endpoint.host, endpoint.port)
        if why is None:
            log.info("inference container ready (%s) after %.1fs", target, loop.time() - started)
            return Readiness.READY
        now = loop.time()
        if stop.is_set():
            return Readiness.STOPPED
        if now >= deadline:
            log.error("inference container not ready after %.0fs (%s): %s", config.ready_timeout, target, why)
            return Readiness.TIMED_OUT
        if now - last_log >= _LOG_EVERY:
            log.info("waiting for the inference container (%s): %s", target, why)
            last_log = now
        try:
            async with asyncio.timeout(min(config.ready_interval, deadline - now)):
                await stop.wait()
            return Readiness.STOPPED
        except TimeoutError:
            pass
