"""A worker process that takes invocations and never answers (to be killed with -9 by a test).

``python -m tests.cluster.hold_worker <grpc target> <token> <function id> <concurrency>``: prints
``got <request id>`` for every invocation it receives.
"""

from __future__ import annotations

import asyncio
import sys

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.driver import ScriptedWorker


async def main(target: str, token: str, function_id: str, concurrency: int) -> None:
    async def hold(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        print("got", invocation.request_id, flush=True)
        await asyncio.Event().wait()

    worker = ScriptedWorker(target, token, function_id, hold, concurrency)
    await worker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
