"""The invocation state machine, as data. No I/O: the dispatcher applies events, this module
says whether they are legal and where they lead.

    QUEUED ──dispatch──▶ DISPATCHED ──start──▶ RUNNING ──complete──▶ FULFILLED
      ▲                     │  │                  │ │
      └──────requeue────────┘  └──fail/cancel──┐  │ └──fail──▶ ERRORED
      (worker lost before any answer)          ▼  └──cancel──▶ CANCELLED
                                    ERRORED / CANCELLED

``REQUEUED`` is QUEUED again after a lost worker; the attempt counter lives on the invocation.
An invocation that nobody takes within its queue lifetime ``expire``s to ERRORED.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "QUEUED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    REQUEUED = "REQUEUED"
    FULFILLED = "FULFILLED"
    ERRORED = "ERRORED"
    CANCELLED = "CANCELLED"


class Event(StrEnum):
    DISPATCH = "dispatch"  # handed to a worker with a free credit
    START = "start"  # the worker sent the response status and headers
    PROGRESS = "progress"  # the container reported progress (state unchanged)
    COMPLETE = "complete"  # the worker sent the end of a complete answer
    FAIL = "fail"  # the answer cannot be completed (or attempts are used up)
    CANCEL = "cancel"  # the client went away or undeploy without grace
    REQUEUE = "requeue"  # the worker was lost before answering
    EXPIRE = "expire"  # nobody took it within the queue lifetime


FINAL = frozenset({State.FULFILLED, State.ERRORED, State.CANCELLED})

TRANSITIONS: dict[State, dict[Event, State]] = {
    State.QUEUED: {
        Event.DISPATCH: State.DISPATCHED,
        Event.CANCEL: State.CANCELLED,
        Event.EXPIRE: State.ERRORED,
        Event.FAIL: State.ERRORED,
    },
    State.REQUEUED: {
        Event.DISPATCH: State.DISPATCHED,
        Event.CANCEL: State.CANCELLED,
        Event.EXPIRE: State.ERRORED,
        Event.FAIL: State.ERRORED,
    },
    State.DISPATCHED: {
        Event.START: State.RUNNING,
        Event.PROGRESS: State.DISPATCHED,
        Event.REQUEUE: State.REQUEUED,
        Event.FAIL: State.ERRORED,
        Event.CANCEL: State.CANCELLED,
    },
    State.RUNNING: {
        Event.PROGRESS: State.RUNNING,
        Event.COMPLETE: State.FULFILLED,
        Event.FAIL: State.ERRORED,
        Event.CANCEL: State.CANCELLED,
    },
    State.FULFILLED: {},
    State.ERRORED: {},
    State.CANCELLED: {},
}


class IllegalTransition(Exception):
    """An event that the invocation's current state does not allow."""

    def __init__(self, request_id: str, state: State, event: Event) -> None:
        super().__init__(f"invocation {request_id}: event {event.value!r} not allowed in state {state.value}")
        self.request_id = request_id
        self.state = state
        self.event = event


def next_state(request_id: str, state: State, event: Event) -> State:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(request_id, state, event) from None
