"""What the dispatcher counts: the invocations' latencies, redeliveries, cancellations, credits.

Plain ints and ``Histogram`` objects bound once: a hook on the hot path is an attribute
increment or one ``observe`` (the bench's ``pexec-metrics`` pair measures what they cost).
Latencies are measured from the enqueue (the invocation's creation in the gateway process that
holds the client):

- queue wait: until a worker session is handed the invocation (in the process that took it from
  the queue: with Redis, possibly another one);
- first byte: until the worker's response start reaches the client's gateway process;
- total: until the invocation is final there (fulfilled, errored or cancelled).

Function ids label the histograms and the outcome counter only when ``function_labels`` is on
(``--metrics-function-labels``): an installation with thousands of functions would otherwise
multiply every series by thousands.
"""

from __future__ import annotations

from invoker.invocations import Invocation
from invoker.lifecycle import State
from invoker.metrics.histogram import LabeledHistograms

OUTCOMES = (State.FULFILLED, State.ERRORED, State.CANCELLED)


class DispatchMetrics:
    __slots__ = (
        "attempts_exhausted",
        "cancellations",
        "credits_granted",
        "credits_used",
        "expirations",
        "first_byte",
        "function_labels",
        "outcomes",
        "queue_wait",
        "redeliveries",
        "total",
    )

    def __init__(self, function_labels: bool = False) -> None:
        self.function_labels = function_labels
        self.queue_wait = LabeledHistograms(function_labels)
        self.first_byte = LabeledHistograms(function_labels)
        self.total = LabeledHistograms(function_labels)
        # (function id or "", final state) -> invocations that ended so
        self.outcomes: dict[tuple[str, State], int] = {}
        self.redeliveries = 0  # back to the head of the queue after a lost worker
        self.attempts_exhausted = 0  # ended errored after max_attempts lost workers
        self.cancellations = 0  # cancelled before they were final (client gone, window over, undeploy)
        self.expirations = 0  # nobody took them within the queue lifetime
        self.credits_granted = 0  # credits workers granted (each: room for one more invocation)
        self.credits_used = 0  # invocations handed to worker sessions

    def dispatched(self, invocation: Invocation, now: float) -> None:
        """Handed to a worker: the queue wait (``now`` and ``enqueued_at_ms`` are wall-clock)."""
        self.credits_used += 1
        request = invocation.request
        waited = now - request.enqueued_at_ms / 1000
        histograms = self.queue_wait
        histogram = histograms.get(request.function_id) if self.function_labels else histograms.single
        histogram.observe(waited if waited > 0 else 0.0)

    def finished(self, invocation: Invocation) -> None:
        """The invocation is final in the process holding its client (``Invocation.final_hook``)."""
        created = invocation.created
        end = invocation.finished_at or created
        if self.function_labels:
            function_id = invocation.request.function_id
            first, total = self.first_byte.get(function_id), self.total.get(function_id)
        else:
            function_id, first, total = "", self.first_byte.single, self.total.single
        started = invocation.started_at
        if started:
            first.observe(started - created if started > created else 0.0)
        total.observe(end - created if end > created else 0.0)
        key = (function_id, invocation.state)
        outcomes = self.outcomes
        outcomes[key] = outcomes.get(key, 0) + 1
