"""``python -m bench.metrics_hooks``: what each /metrics hook on the pexec path costs, in µs per call.

The bench's ``pexec-metrics`` pair measures the whole cost, but on a noisy machine its rounds
scatter more than the effect; this times the hooks themselves (``timeit``, the empty call's cost
taken off): the edge's HTTP count per answer, the dispatcher's queue-wait observation per
dispatch, and the final observation (first byte, total, outcome) per invocation.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable

from gateway.metrics.http import HttpCounts
from invoker.invocations import Invocation, InvocationRequest
from invoker.lifecycle import State
from invoker.metrics.dispatch import DispatchMetrics

CALLS = 200_000


class _Decision:
    service = 2


def _per_call(call: Callable[[], object]) -> float:
    empty = min(timeit.repeat(lambda: None, number=CALLS, repeat=3))
    spent = min(timeit.repeat(call, number=CALLS, repeat=3))
    return (spent - empty) / CALLS * 1e6


def main() -> None:
    counts = HttpCounts({2: "invocation"})
    decision = _Decision()
    http = _per_call(lambda: counts.count(decision, "POST", 200))
    print(f"http count per answer: {http:.3f} us")
    for labels in (False, True):
        dispatched, finished = _dispatch_hooks(DispatchMetrics(labels))
        total = http + dispatched + finished
        print(
            f"function labels {'on ' if labels else 'off'}: dispatched {dispatched:.3f} us, "
            f"finished {finished:.3f} us; per pexec {total:.2f} us"
        )


def _dispatch_hooks(metrics: DispatchMetrics) -> tuple[float, float]:
    now = time.time()
    request = InvocationRequest("r", "f", "v", "POST", "/", [], b"", True, 0, enqueued_at_ms=int(now * 1000))
    invocation = Invocation(request)
    invocation.started_at, invocation.finished_at, invocation.state = now, now, State.FULFILLED
    return _per_call(lambda: metrics.dispatched(invocation, now)), _per_call(lambda: metrics.finished(invocation))


if __name__ == "__main__":
    main()
