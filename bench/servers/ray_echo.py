"""The echo function on Ray Serve (one replica), its HTTP proxy on 127.0.0.1 only.

RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 python -m bench.servers.ray_echo --port P

Ray Serve 2.60's replica binds its inter-deployment gRPC server to ``[::]:0`` unconditionally
(``ray/serve/_private/replica.py``); a worker-process setup hook rebinds it to 127.0.0.1 so the
whole cluster stays on loopback (``bench.rayserve`` checks with ``ss`` before any load).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from typing import Any


def loopback_only() -> None:
    """Ray worker setup hook: every gRPC port a Serve replica opens goes on 127.0.0.1."""
    replica: Any = importlib.import_module("ray.serve._private.replica")
    bind = replica.add_port_to_grpc_server

    def bind_loopback(server: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        if host in ("[::]", "0.0.0.0", ""):
            address = f"127.0.0.1:{port}"
        return bind(server, address)

    replica.add_port_to_grpc_server = bind_loopback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ray: Any = importlib.import_module("ray")
    serve: Any = importlib.import_module("ray.serve")
    from starlette.requests import Request
    from starlette.responses import Response

    ray.init(
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=1,
        log_to_driver=False,
        # A callable of __main__ travels by value (cloudpickle): the workers need not import bench.
        runtime_env={"worker_process_setup_hook": loopback_only},
    )

    class Echo:
        async def __call__(self, request: Request) -> Response:
            return Response(await request.body(), media_type="application/json")

    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(serve.deployment(num_replicas=1)(Echo).bind(), route_prefix="/echo")
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
