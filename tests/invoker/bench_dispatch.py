"""CPU per invocation of the gateway's dispatch path alone (not collected by pytest).

    python -m tests.invoker.bench_dispatch [--invocations 20000]

One process, uvloop, a ``MemoryQueue`` and one worker session with unlimited credits: each
invocation is submitted, pumped into the session's outbox, batched into a ``GatewayMessage``, and
ended by a ``WorkerMessage`` carrying its end — no gRPC, no HTTP. Measured with one submit per
loop pass (low load) and eight (batches form).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import uvloop

from invoker.dispatch import Dispatcher
from invoker.instances import MemoryInstanceRegistry
from invoker.invocations import Invocation, InvocationRequest, InvocationTable
from invoker.queues.memory import MemoryQueue
from invoker.sessions import WorkerGrant, WorkerSession
from protos.cfgate.worker.v1 import worker_pb2 as pb


async def bench(invocations: int, per_pass: int) -> float:
    dispatcher = Dispatcher(MemoryQueue(), InvocationTable(60), MemoryInstanceRegistry())
    session = WorkerSession("s1", "i1", WorkerGrant("fid", "vid", "name", "nca", "/echo", 8000), 128)
    await dispatcher.attach(session)
    session.credits = 10**9

    async def worker() -> None:
        while (message := await session.next_message()) is not None:
            answer = pb.WorkerMessage()
            for item in message.invocations:
                answer.ends.add(request_id=item.request_id)
            await dispatcher.on_worker_message(session, answer)

    serving = asyncio.ensure_future(worker())
    body = b"x" * 1024
    headers = [("content-type", "application/json")]
    started = time.process_time()
    for first in range(0, invocations, per_pass):
        for i in range(first, first + per_pass):
            request = InvocationRequest(f"req-{i}", "fid", "vid", "POST", "/echo", headers, body, True, 0)
            await dispatcher.submit(Invocation(request))
        for _ in range(3):  # let the pump, the outbox and the answer run
            await asyncio.sleep(0)
    spent = time.process_time() - started
    session.close()
    await serving
    return spent / invocations * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invocations", type=int, default=20000)
    args = parser.parse_args()
    for per_pass in (1, 8):
        us = uvloop.run(bench(args.invocations, per_pass))
        print(f"{per_pass} submit(s) per loop pass: {us:5.1f} us of CPU per invocation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
