"""The invocation state table: every legal path, and illegal events refused by name."""

from __future__ import annotations

import pytest

from invoker.lifecycle import FINAL, TRANSITIONS, Event, IllegalTransition, State, next_state


def walk(*events: Event) -> State:
    state = State.QUEUED
    for event in events:
        state = next_state("r1", state, event)
    return state


def test_happy_path() -> None:
    assert walk(Event.DISPATCH, Event.START, Event.PROGRESS, Event.COMPLETE) == State.FULFILLED


def test_lost_worker_requeues_then_succeeds() -> None:
    assert walk(Event.DISPATCH, Event.REQUEUE) == State.REQUEUED
    assert walk(Event.DISPATCH, Event.REQUEUE, Event.DISPATCH, Event.START, Event.COMPLETE) == State.FULFILLED


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ((Event.CANCEL,), State.CANCELLED),
        ((Event.EXPIRE,), State.ERRORED),
        ((Event.DISPATCH, Event.FAIL), State.ERRORED),
        ((Event.DISPATCH, Event.START, Event.FAIL), State.ERRORED),
        ((Event.DISPATCH, Event.START, Event.CANCEL), State.CANCELLED),
    ],
)
def test_endings(events: tuple[Event, ...], final: State) -> None:
    assert walk(*events) == final


def test_final_states_accept_nothing() -> None:
    for state in FINAL:
        assert TRANSITIONS[state] == {}
        with pytest.raises(IllegalTransition, match=f"not allowed in state {state.value}"):
            next_state("r9", state, Event.CANCEL)


def test_running_invocation_cannot_be_requeued() -> None:
    # Once the client has status and headers, a redelivery would answer twice.
    with pytest.raises(IllegalTransition) as info:
        walk(Event.DISPATCH, Event.START, Event.REQUEUE)
    assert (info.value.state, info.value.event) == (State.RUNNING, Event.REQUEUE)


def test_every_state_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(State)
