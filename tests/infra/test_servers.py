"""Real tests of the throwaway-server infrastructure (tests/servers.py, tests/plugins/servers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests import servers
from tests.plugins.servers import SERVER_TEST_PROPERTY, PostgresServerFactory, RedisServerFactory
from tests.servers import PostgresServer, RedisServer, ServerUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
MACHINE_PORTS = (6379, 5432)  # hand-started servers on this machine: never ours


def redis_client(url: str) -> aioredis.Redis:
    # No retries: a dead server must show up as ConnectionError at once.
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2)


def test_find_free_port() -> None:
    port = servers.find_free_port()
    assert 1024 < port < 65536
    assert port not in MACHINE_PORTS


# --------------------------------------------------------------------------- Redis


async def test_redis_set_get(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.port not in MACHINE_PORTS
    client = redis_client(redis_url)
    try:
        assert await client.set("greeting", "hello")
        assert await client.get("greeting") == b"hello"
    finally:
        await client.aclose()


async def test_redis_url_is_flushed_before_each_test(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        assert await client.dbsize() == 0  # the previous test's key is gone
    finally:
        await client.aclose()


async def test_redis_kill_then_restart_on_same_port(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory()
    port, pid = server.port, server.pid
    client = redis_client(server.url)
    try:
        await client.set("k", "v")
        server.kill()
        assert not server.is_running()
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        server.restart()
        assert server.is_running()
        assert (server.port, server.url) == (port, f"redis://127.0.0.1:{port}/0")
        assert server.pid != pid
        assert await client.ping() is True  # the same client reconnects
        assert await client.get("k") is None  # nothing persisted without appendonly
    finally:
        await client.aclose()


async def test_redis_appendonly_survives_kill(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    client = redis_client(server.url)
    try:
        await client.set("durable", "yes")
    finally:
        await client.aclose()
    server.kill()
    server.restart()
    client = redis_client(server.url)
    try:
        assert await client.get("durable") == b"yes"
    finally:
        await client.aclose()


def test_redis_context_manager_stop_start_and_cleanup(redis_server: RedisServer) -> None:
    # (redis_server only applies the plugin's skip/fail policy when Redis is unavailable.)
    with RedisServer() as server:
        base, port, pid = server.base_dir, server.port, server.pid
        assert pid is not None and base.is_dir()
        assert server.command("SET", "a", "1") == "OK"
        server.stop()  # graceful
        assert not server.is_running()
        with pytest.raises(ConnectionRefusedError):
            server.command("PING")
        server.start()
        assert server.port == port
        assert server.command("PING") == "PONG"
    assert not server.is_running()
    assert not base.exists()
    assert not servers._pid_alive(pid)


# --------------------------------------------------------------------------- PostgreSQL


async def test_postgres_asyncpg_roundtrip(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    assert postgres_dsn.startswith(f"postgresql://cfgate@127.0.0.1:{postgres_server.port}/test_")
    assert postgres_server.port not in MACHINE_PORTS
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        await conn.executemany("INSERT INTO items VALUES ($1, $2)", [(1, "a"), (2, "b")])
        rows = await conn.fetch("SELECT id, name FROM items ORDER BY id")
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]
    finally:
        await conn.close()


async def test_postgres_each_test_gets_a_fresh_database(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('items')") is None  # previous test's table
        assert await conn.fetchval("SELECT current_database()") == postgres_dsn.rsplit("/", 1)[1]
    finally:
        await conn.close()


async def test_postgres_databases_are_isolated(postgres_server: PostgresServer) -> None:
    dsn_a = postgres_server.create_database("iso_a")
    dsn_b = postgres_server.create_database("iso_b")
    try:
        conn_a = await asyncpg.connect(dsn_a)
        conn_b = await asyncpg.connect(dsn_b)
        try:
            await conn_a.execute("CREATE TABLE only_in_a (v int)")
            assert await conn_a.fetchval("SELECT to_regclass('only_in_a')::text") == "only_in_a"
            assert await conn_b.fetchval("SELECT to_regclass('only_in_a')") is None
        finally:
            await conn_a.close()
            await conn_b.close()
    finally:
        postgres_server.drop_database("iso_a")
        postgres_server.drop_database("iso_b")
    names = {row[0] for row in postgres_server.execute("SELECT datname FROM pg_database")}
    assert not names & {"iso_a", "iso_b"}


async def test_postgres_sqlalchemy_async_engine(
    postgres_server: PostgresServer, postgres_sqlalchemy_url: str, postgres_dsn: str
) -> None:
    assert postgres_sqlalchemy_url == "postgresql+asyncpg://" + postgres_dsn.split("://", 1)[1]
    assert postgres_server.sqlalchemy_url == "postgresql+asyncpg://" + postgres_server.dsn.split("://", 1)[1]
    engine = create_async_engine(postgres_sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE notes (body text)"))
            await conn.execute(text("INSERT INTO notes VALUES (:body)"), {"body": "hi"})
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT body FROM notes"))).scalar_one() == "hi"
    finally:
        await engine.dispose()


async def test_postgres_kill_restart_keeps_committed_data(
    postgres_server_factory: PostgresServerFactory,
) -> None:
    server = postgres_server_factory()
    port = server.port
    assert server.dsn == f"postgresql://cfgate@127.0.0.1:{port}/cfgate_test"
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute("CREATE TABLE t (v int)")
        await conn.execute("INSERT INTO t VALUES (42)")
        server.kill()
        assert not server.is_running()
        with pytest.raises((asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()
    with pytest.raises(OSError):
        await asyncpg.connect(server.dsn, timeout=2)

    server.restart()  # crash recovery on the same port and data dir
    assert server.port == port
    conn = await asyncpg.connect(server.dsn)
    try:
        assert await conn.fetchval("SELECT v FROM t") == 42
        await conn.execute("INSERT INTO t VALUES (43)")
    finally:
        await conn.close()

    server.restart()  # graceful stop + start
    assert server.execute("SELECT count(*) FROM t") == [("2",)]


def test_fixtures_add_markers(request: pytest.FixtureRequest, redis_url: str) -> None:
    assert request.node.get_closest_marker("redis") is not None
    assert request.node.get_closest_marker("postgres") is None
    request.getfixturevalue("postgres_dsn")  # requested dynamically: marked at set-up time
    assert request.node.get_closest_marker("postgres") is not None
    assert (SERVER_TEST_PROPERTY, "postgres") in request.node.user_properties


# --------------------------------------------------------------------------- unavailable servers


def test_ensure_installed_raises_when_install_impossible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_discover", lambda kind: None)
    monkeypatch.setattr(servers, "_discovered", {})
    monkeypatch.setenv("CFGATE_TEST_INSTALL", "never")
    with pytest.raises(ServerUnavailable, match="installation disabled"):
        servers.ensure_installed("postgres")
    monkeypatch.setenv("CFGATE_TEST_INSTALL", "apt")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ServerUnavailable, match="not running as root"):
        servers.ensure_installed("redis")


INNER_CONFTEST = """
import pytest

from tests import servers

pytest_plugins = ["tests.plugins.servers"]


def pytest_configure(config):
    # Simulate a machine with no server binaries and no way to install them.
    servers._discover = lambda kind: None
"""

INNER_TESTS = """
import pytest


def test_needs_redis(redis_url):
    pass


def test_needs_postgres(postgres_dsn):
    pass


def test_needs_factory(postgres_server_factory):
    postgres_server_factory()


def test_needs_redis_dynamically(request):
    request.getfixturevalue("redis_url")


@pytest.mark.redis
def test_marked_and_skipped():
    pytest.skip("skipped on purpose")


def test_plain():
    pass
"""


def run_inner_pytest(tmp_path: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CI"))}
    # No third-party plugins (faster, and the result depends only on our plugin).
    env.update(PYTHONPATH=str(REPO_ROOT), CFGATE_TEST_INSTALL="never", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    if ci:
        env["CI"] = "true"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args, str(tmp_path)]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_unavailable_servers_fail_under_ci(tmp_path: Path) -> None:
    result = run_inner_pytest(tmp_path, ci=True)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    # fixture set-up errors, and the factory called in the test body fails the test
    for outcome, name in (
        ("ERROR", "needs_redis"),
        ("ERROR", "needs_postgres"),
        ("FAILED", "needs_factory"),
        ("FAILED", "needs_redis_dynamically"),
    ):
        assert f"{outcome} test_inner.py::test_{name} - Failed: " in out, out
    assert out.count("SKIPPED") == 2  # only the explicit skip (short summary + guard section)
    assert "CI=true: tests that need redis must run, not be skipped." in out
    assert "CI=true: tests that need postgres must run, not be skipped." in out
    assert "installation disabled by CFGATE_TEST_INSTALL=never" in out
    assert "server tests skipped under CI=true" in out  # the guard caught the explicit skip
    assert "2 failed, 1 passed, 1 skipped, 2 errors" in out


def test_skipped_server_test_fails_the_session_under_ci(tmp_path: Path) -> None:
    result = run_inner_pytest(tmp_path, "-k", "marked_and_skipped or plain", ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SKIPPED (not allowed in CI) test_inner.py::test_marked_and_skipped" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_unavailable_servers_skip_outside_ci(tmp_path: Path) -> None:
    result = run_inner_pytest(tmp_path, ci=False)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "1 passed, 5 skipped" in out, out
    assert "redis test server unavailable" in out
    assert "postgres test server unavailable" in out
