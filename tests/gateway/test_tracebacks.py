"""Tracebacks at most once per cause and window; one-line summaries in between, without the input."""

from __future__ import annotations

import logging

from gateway.tracebacks import log_failure


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _parse(text: str) -> int:
    return int(text)


def _lookup(table: dict[str, int], name: str) -> int:
    return table[name]


def _index(items: list[int], at: int) -> int:
    return items[at]


def test_one_traceback_per_cause_then_one_liners() -> None:
    handler = Collect()
    logger = logging.getLogger("tests.tracebacks")
    logger.addHandler(handler)
    try:
        for _ in range(5):
            try:
                _parse("²")
            except ValueError as exc:
                log_failure(logger, "parsing", exc)
        try:
            _lookup({}, "secret-name")
        except KeyError as exc:
            log_failure(logger, "lookup", exc)
    finally:
        logger.removeHandler(handler)
    records = handler.records
    assert [r.exc_info[0] for r in records if r.exc_info] == [ValueError, KeyError]
    assert [r.levelno for r in records] == [logging.ERROR] + [logging.WARNING] * 4 + [logging.ERROR]
    assert all("²" not in r.getMessage() and "secret-name" not in r.getMessage() for r in records)


def test_the_traceback_comes_back_after_the_window() -> None:
    handler = Collect()
    logger = logging.getLogger("tests.tracebacks.window")
    logger.addHandler(handler)
    try:
        shown = []
        for _ in range(3):
            try:
                _parse("x")
            except ValueError as exc:
                shown.append(log_failure(logger, "parsing", exc, every=0.0))
    finally:
        logger.removeHandler(handler)
    assert shown == [True, True, True]


def test_a_server_loggers_tracebacks_are_cut_to_one_line_after_the_first() -> None:
    """What uvicorn logs for an exception escaping the app ("Exception in ASGI application")."""
    from gateway.tracebacks import install_on

    handler = Collect()
    logger = logging.getLogger("tests.tracebacks.server")
    logger.addHandler(handler)
    install_on("tests.tracebacks.server")
    install_on("tests.tracebacks.server")  # idempotent
    try:
        for _ in range(3):
            try:
                _index([], 3)
            except IndexError as exc:
                logger.error("Exception in ASGI application 100%", exc_info=exc)
        logger.error("no exception here")
    finally:
        logger.removeHandler(handler)
    records = handler.records
    assert [bool(r.exc_info) for r in records] == [True, False, False, False]
    assert records[1].getMessage().startswith("Exception in ASGI application 100%: IndexError at ")
    assert records[3].getMessage() == "no exception here"
