"""Results for polling, kept in Redis with a time-to-live so any process answers a status poll.

Written when the answer cannot go straight to a waiting client: by the origin process once it
answered 202 (the invocation is *published*: pending, then its progress, then its final answer),
or by the process holding the worker when the origin process is dead. Delivery is exactly once
across processes: the poller that deletes the record (``claim``) is the one that sends it; the
final answer is only written while the record exists, so a claimed result never comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from invoker.errors import BackendUnavailable
from invoker.invocations import Answer, Invocation, InvocationRequest, ResultKind
from invoker.lifecycle import FINAL, State
from invoker.metrics.backend import BACKEND_ERRORS

# KEYS result ; ARGV ttl, only-if-exists, final (0/1), field, value, …
WRITE = """
local state = redis.call('HGET', KEYS[1], 's')
if ARGV[2] == '1' and not state then return 0 end
if state == 'f' and ARGV[3] == '0' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def result_key(request_id: str) -> str:
    return f"cfgate:result:{request_id}"


@dataclass(slots=True)
class StoredResult:
    request_id: str
    nca_id: str
    state: State
    status: int
    headers: list[tuple[str, str]]
    kind: ResultKind
    body: bytes
    error: str | None
    percent: int | None
    partial: bytes | None
    progress_seq: int
    reported_seq: int
    # The invocation's function and version ("" in records written before they were stored):
    # a status poll with a resource-limited API key must be allowed on that function.
    function_id: str = ""
    version_id: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def invocation(self) -> Invocation:
        """A detached ``Invocation`` carrying the stored answer, for the answer loop to send."""
        request = InvocationRequest(self.request_id, "", "", "", "", [], b"", False, 0, nca_id=self.nca_id)
        invocation = Invocation(request)
        invocation.state = self.state
        if self.status:
            invocation.answer = Answer(self.status, self.headers, self.kind)
            if self.body:
                invocation.chunks.append(self.body)
        invocation.error = self.error
        invocation.percent = self.percent
        invocation.partial = self.partial
        invocation.progress_seq = self.progress_seq
        invocation.ended = self.final
        return invocation


class ResultStore:
    def __init__(self, redis: Redis, ttl: float) -> None:
        self.redis = redis
        self.ttl = int(ttl)
        self._write = redis.register_script(WRITE)

    async def publish(self, invocation: Invocation, *, create: bool = True) -> None:
        """Pending (or its progress): known to every process from now on. ``create=False``: only
        update a record that still exists (not one a poller claimed meanwhile)."""
        fields: list[bytes | str | int] = [b"n", invocation.request.nca_id, b"s", b"p", *_function_fields(invocation)]
        fields += [b"ps", invocation.progress_seq, b"rs", invocation.reported_seq]
        if invocation.percent is not None:
            fields += [b"pc", invocation.percent, b"pr", invocation.partial or b""]
        await self._run(result_key(invocation.request_id), 0, fields, only_if_exists=not create)

    async def store_final(self, invocation: Invocation, body: bytes, *, only_if_exists: bool) -> None:
        fields: list[bytes | str | int] = [b"n", invocation.request.nca_id, b"s", b"f", b"fs", invocation.state.value]
        fields += _function_fields(invocation)
        answer = invocation.answer
        if answer is not None:
            fields += [b"st", answer.status, b"h", orjson.dumps(answer.headers), b"k", int(answer.kind), b"b", body]
        if invocation.error:
            fields += [b"e", invocation.error]
        await self._run(result_key(invocation.request_id), 1, fields, only_if_exists=only_if_exists)

    async def reported(self, request_id: str, seq: int) -> None:
        await self._run(result_key(request_id), 0, [b"rs", seq], only_if_exists=True)

    async def load(self, request_id: str) -> StoredResult | None:
        try:
            raw: dict[bytes, bytes] = await self.redis.hgetall(result_key(request_id))  # type: ignore[assignment]
        except (RedisError, OSError) as exc:
            BACKEND_ERRORS.redis += 1
            raise BackendUnavailable(f"redis unavailable: {exc}") from exc
        if not raw or b"s" not in raw:
            return None
        final = raw[b"s"] == b"f"
        state = State(raw[b"fs"].decode()) if final else State.RUNNING
        return StoredResult(
            request_id=request_id,
            nca_id=raw.get(b"n", b"").decode(),
            state=state,
            status=int(raw.get(b"st", 0)),
            headers=[(k, v) for k, v in orjson.loads(raw.get(b"h", b"[]"))],
            kind=ResultKind(int(raw.get(b"k", 0))),
            body=raw.get(b"b", b""),
            error=raw[b"e"].decode() if b"e" in raw else None,
            percent=int(raw[b"pc"]) if b"pc" in raw else None,
            partial=raw.get(b"pr"),
            progress_seq=int(raw.get(b"ps", 0)),
            function_id=raw.get(b"fi", b"").decode(),
            version_id=raw.get(b"vi", b"").decode(),
            reported_seq=int(raw.get(b"rs", 0)),
        )

    async def claim(self, request_id: str) -> bool:
        """Take the result for delivery: True for exactly one caller."""
        try:
            return bool(await self.redis.delete(result_key(request_id)))
        except (RedisError, OSError) as exc:
            BACKEND_ERRORS.redis += 1
            raise BackendUnavailable(f"redis unavailable: {exc}") from exc

    async def _run(self, key: str, final: int, fields: list[bytes | str | int], *, only_if_exists: bool) -> None:
        args = [self.ttl, 1 if only_if_exists else 0, final, *fields]
        try:
            await self._write([key], args)
        except (RedisError, OSError) as exc:
            BACKEND_ERRORS.redis += 1
            raise BackendUnavailable(f"redis unavailable: {exc}") from exc


def _function_fields(invocation: Invocation) -> list[bytes | str | int]:
    return [b"fi", invocation.request.function_id, b"vi", invocation.request.version_id]
