"""Invocations/s through one worker process (not collected by pytest).

    python -m tests.worker.bench_worker [--seconds 5] [--concurrency 64] [--body 1024] [--compat]

The worker runs as ``python -m invoker.worker`` pinned to CPU 1; the gateway double and the echo
container run in this process on CPU 0 (uvloop). The double keeps ``concurrency`` invocations
outstanding (``POST /echo?plain=1`` with a JSON body; pexec's compat mode with ``--compat``) and
pushes new ones as ends come back, several per message when several are due. Reported:
invocations/s, the worker's CPU time per invocation (from /proc; kernel share in parentheses), and
the average number of items per worker message.
``BENCH_WORKER_PREFIX="-m cProfile -o /tmp/worker.prof"`` profiles the worker process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import uvloop

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.support.echo_server import EchoServer
from tests.worker.conftest import FUNCTION_ID, TOKEN, GatewayDouble

ROOT = Path(__file__).resolve().parents[2]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def bench(seconds: float, concurrency: int, body: bytes, compat: bool = False) -> None:
    double = GatewayDouble()
    await double.start()
    async with EchoServer() as echo:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.update(
            CFGATE_WORKER_GATEWAY=double.target, CFGATE_WORKER_TOKEN=TOKEN, CFGATE_WORKER_FUNCTION_ID=FUNCTION_ID
        )
        command = [
            sys.executable,
            *os.environ.get("BENCH_WORKER_PREFIX", "").split(),
            "-m",
            "invoker.worker",
            "--inference-url",
            f"{echo.url}/echo",
        ]
        command += ["--max-concurrency", str(concurrency), "--log-level", "WARNING"]
        if (os.cpu_count() or 1) > 1:
            command = ["taskset", "-c", "1", *command]
        worker = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env)
        try:
            session = await double.session(timeout=30)
            await session.wait_for(lambda: session.credits >= concurrency)
            sent = 0
            counted = [0, 0]  # messages scanned, ends seen

            def ends() -> int:
                messages = session.messages
                for message in messages[counted[0] :]:
                    counted[1] += len(message.ends)
                counted[0] = len(messages)
                return counted[1]

            async def drive(until: float) -> None:
                nonlocal sent

                def has_room() -> bool:
                    return sent - ends() < concurrency

                while time.perf_counter() < until:
                    due = concurrency - (sent - ends())
                    if due > 0:
                        batch = [
                            pb.Invocation(
                                request_id=f"r{sent + i}", method="POST", path="/echo?plain=1", body=body, compat=compat
                            )
                            for i in range(due)
                        ]
                        sent += due
                        session.invoke(*batch)
                    await session.wait_for(has_room)

            await drive(time.perf_counter() + 1.0)  # warm up
            done0, messages0, cpu0, wall0 = ends(), len(session.messages), cpu_seconds(worker.pid), time.perf_counter()
            await drive(wall0 + seconds)
            done, wall = ends() - done0, time.perf_counter() - wall0
            user, system = (b - a for a, b in zip(cpu0, cpu_seconds(worker.pid), strict=True))
            cpu = user + system
            window = session.messages[messages0:]
            items = sum(len(m.starts) + len(m.chunks) + len(m.ends) for m in window)
            print(
                f"concurrency={concurrency}{' compat' if compat else ''}  {done / wall:8.0f} invocations/s  "
                f"worker CPU {cpu / done * 1e6:6.1f} µs/invocation ({system / done * 1e6:.0f} system)  "
                f"{items / max(1, len(window)):5.1f} items/message"
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            await worker.wait()
    await double.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--body", type=int, default=1024)
    parser.add_argument("--compat", action="store_true", help="pexec's compat mode (large outputs, progress)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    body = b'{"input": "' + b"x" * max(0, args.body - 13) + b'"}'
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        uvloop.run(bench(args.seconds, concurrency, body, args.compat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
