"""pytest plugin: throwaway Redis and PostgreSQL servers (see ``tests/servers.py``).

Enable with ``pytest_plugins = ["tests.plugins.servers"]`` in the root conftest
(or ``-p tests.plugins.servers``).

Fixtures
--------
``redis_server``             session: a shared :class:`RedisServer`, started on first use.
``redis_url``                function: ``redis://127.0.0.1:<port>/0`` of the shared server,
                             FLUSHALL'ed (and SCRIPT FLUSH'ed) before the test.
``redis_server_factory``     function: ``make(**kwargs) -> RedisServer`` starting a private
                             server a test may kill()/stop()/restart(); closed after the test.
``postgres_server``          session: a shared :class:`PostgresServer`, started on first use.
``postgres_dsn``             function: ``postgresql://cfgate@127.0.0.1:<port>/<fresh db>``, a new
                             database for this test only, dropped (WITH FORCE) afterwards.
``postgres_sqlalchemy_url``  function: the same database as ``postgresql+asyncpg://...``.
``postgres_server_factory``  function: ``make(**kwargs) -> PostgresServer``, private, like above.

Skip or fail
------------
If a server cannot be installed (:class:`ServerUnavailable`), the test is skipped with the
reason, unless ``CI=true``, where it fails.  A server that is installed but does not start
always fails.  Tests using these fixtures get the ``redis`` / ``postgres`` marker
automatically, and under ``CI=true`` the session fails if any test carrying one of those
markers was skipped, whatever the reason, so that no server test is silently skipped in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.servers import (
    Kind,
    PostgresServer,
    RedisServer,
    ServerError,
    ServerUnavailable,
    ensure_installed,
    sqlalchemy_url,
)

RedisServerFactory = Callable[..., RedisServer]
PostgresServerFactory = Callable[..., PostgresServer]

SERVER_FIXTURES: dict[Kind, frozenset[str]] = {
    "redis": frozenset({"redis_server", "redis_url", "redis_server_factory"}),
    "postgres": frozenset({"postgres_server", "postgres_dsn", "postgres_sqlalchemy_url", "postgres_server_factory"}),
}

_S = TypeVar("_S", RedisServer, PostgresServer)
# Carried on the test reports (also across pytest-xdist workers) to recognise server tests.
SERVER_TEST_PROPERTY = "cfgate_server_test"
_db_counter = itertools.count(1)


def in_ci() -> bool:
    """True when running in CI (``CI=true``; ``1``/``yes`` are accepted too)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


# --------------------------------------------------------------------------- guard


class _ServerTestGuard:
    """Remembers server tests and, under CI, fails the session if any of them was skipped."""

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}

    @staticmethod
    def note(item: pytest.Item | pytest.Collector | pytest.Session, kind: Kind) -> None:
        """Give a test the ``kind`` marker and tag its reports as a server test."""
        if isinstance(item, pytest.Item):
            if item.get_closest_marker(kind) is None:
                item.add_marker(kind)
            if (SERVER_TEST_PROPERTY, kind) not in item.user_properties:
                item.user_properties.append((SERVER_TEST_PROPERTY, kind))

    @pytest.hookimpl(tryfirst=True)  # before -m deselection sees the items
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            names = set(getattr(item, "fixturenames", ()))
            for kind, fixtures in SERVER_FIXTURES.items():
                if names & fixtures or item.get_closest_marker(kind) is not None:
                    self.note(item, kind)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        is_server_test = any(name == SERVER_TEST_PROPERTY for name, _ in report.user_properties)
        if report.skipped and is_server_test and not hasattr(report, "wasxfail"):
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.skipped.setdefault(report.nodeid, reason)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.skipped and in_ci():
            terminalreporter.section("server tests skipped under CI=true", red=True, bold=True)
            for nodeid, reason in self.skipped.items():
                terminalreporter.line(f"SKIPPED (not allowed in CI) {nodeid}: {reason}", red=True)
            terminalreporter.line(
                "Tests marked redis/postgres must run in CI: install the server (see tests/servers.py).",
                red=True,
            )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skipped and in_ci() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


_GUARD_NAME = "cfgate-server-test-guard"


def pytest_configure(config: pytest.Config) -> None:
    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    for kind in SERVER_FIXTURES:
        if kind not in declared:
            config.addinivalue_line("markers", f"{kind}: needs a {kind} server (started by the tests)")
    if config.pluginmanager.get_plugin(_GUARD_NAME) is None:
        config.pluginmanager.register(_ServerTestGuard(), _GUARD_NAME)


# --------------------------------------------------------------------------- start / error policy


@contextlib.contextmanager
def _uncaptured(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let install messages reach the terminal even while pytest captures output."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
    else:
        with capman.global_and_fixture_disabled():
            yield


def _unavailable(kind: Kind, exc: BaseException) -> None:
    message = f"{kind} test server unavailable: {exc}"
    if in_ci():
        pytest.fail(f"{message}\nCI=true: tests that need {kind} must run, not be skipped.", pytrace=False)
    pytest.skip(message)


def _start(request: pytest.FixtureRequest, server: _S) -> _S:
    """Start ``server``; skip (outside CI) if it cannot be installed, fail otherwise."""
    kind = server.kind
    try:
        with _uncaptured(request):
            ensure_installed(kind)
        server.start()
    except ServerUnavailable as exc:
        server.close()
        _unavailable(kind, exc)
    except ServerError as exc:
        server.close()
        pytest.fail(f"{kind} test server failed to start: {exc}", pytrace=False)
    return server


def _ensure_running(server: _S) -> _S:
    """The shared server should never be killed by a test (use a factory), but recover if it was."""
    if not server.is_running():
        try:
            server.start()
        except ServerError as exc:
            pytest.fail(f"shared {server.kind} test server is down and did not restart: {exc}", pytrace=False)
    return server


def _note(request: pytest.FixtureRequest, kind: Kind) -> None:
    # Also covers tests that reach the fixtures only through request.getfixturevalue().
    _ServerTestGuard.note(request.node, kind)


# --------------------------------------------------------------------------- Redis fixtures


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """Session-wide throwaway Redis (started lazily, on first use)."""
    server = _start(request, RedisServer())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of the shared Redis, emptied (FLUSHALL) before the test."""
    _note(request, "redis")
    server: RedisServer = _ensure_running(request.getfixturevalue("redis_server"))
    server.flushall()
    return server.url


@pytest.fixture
def redis_server_factory(request: pytest.FixtureRequest) -> Iterator[RedisServerFactory]:
    """``make(**RedisServer kwargs)`` -> a started private Redis, closed after the test."""
    _note(request, "redis")
    made: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        made.append(server)
        return _start(request, server)

    try:
        yield make
    finally:
        for server in made:
            server.close()


# --------------------------------------------------------------------------- PostgreSQL fixtures


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """Session-wide throwaway PostgreSQL cluster (started lazily, on first use)."""
    server = _start(request, PostgresServer())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a brand-new database on the shared server, dropped after the test."""
    _note(request, "postgres")
    server: PostgresServer = _ensure_running(request.getfixturevalue("postgres_server"))
    name = f"test_{next(_db_counter)}_{uuid.uuid4().hex[:8]}"
    try:
        dsn = server.create_database(name)
    except ServerError as exc:
        pytest.fail(f"could not create test database {name}: {exc}", pytrace=False)
    try:
        yield dsn
    finally:
        if server.is_running():
            server.drop_database(name)


@pytest.fixture
def postgres_sqlalchemy_url(postgres_dsn: str) -> str:
    """``postgresql+asyncpg://`` URL of this test's fresh database (for create_async_engine)."""
    return sqlalchemy_url(postgres_dsn)


@pytest.fixture
def postgres_server_factory(request: pytest.FixtureRequest) -> Iterator[PostgresServerFactory]:
    """``make(**PostgresServer kwargs)`` -> a started private PostgreSQL, closed after the test."""
    _note(request, "postgres")
    made: list[PostgresServer] = []

    def make(**kwargs: Any) -> PostgresServer:
        server = PostgresServer(**kwargs)
        made.append(server)
        return _start(request, server)

    try:
        yield make
    finally:
        for server in made:
            server.close()
