"""The cfgate worker agent: runs beside a GPU function's inference container, attaches to the
gateway over gRPC and serves invocations by calling the container over HTTP.

It imports only ``protos``, the standard library and HTTP/gRPC libraries (never ``gateway``), so a
worker image does not carry the gateway. Entry points: ``python -m invoker.worker`` /
``invoker.worker.cli.main(argv)``; in process: ``await WorkerAgent(WorkerConfig(...)).run()``.
"""

from invoker.worker.agent import WorkerAgent
from invoker.worker.config import WorkerConfig
from invoker.worker.http_client import HttpClient

__all__ = ["HttpClient", "WorkerAgent", "WorkerConfig"]
