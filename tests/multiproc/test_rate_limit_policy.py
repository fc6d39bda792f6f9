"""Issue 14 item 6: every part of NVCF's ``RateLimitDto`` holds for the installation.

Two real gateway processes on one PostgreSQL and one Redis; calls alternate between them, so a
limit that held per process only would admit twice its rate. The tiers are NVCF's rate limiter's:
``perNcaIdRate[<account>]`` replaces the global ``rateLimit`` for that account, ``exemptedNcaIds``
lifts the global rate, ``perUserRate`` holds each caller (credential subject) on top. A 429 is a
problem with an integer ``Retry-After``. Day windows, so no window ends during the test.

The function has no worker: an admitted pexec waits its 1 s poll window and answers 202.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx

from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import KEY_HEADERS, assert_problem, key_body
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import GatewayProcess, admin_token, bearer, create_api_key, pexec, pexec_until
from tests.multiproc.test_two_processes import start_two


async def limited(gateway: GatewayProcess, token: str, rate_limit: dict[str, Any]) -> tuple[str, str, str]:
    """A function with ``rate_limit``, deployed to zero (ACTIVE at once); (function, version, account)."""
    async with gateway.client("api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(rateLimit=rate_limit), headers=bearer(token))
        assert created.status_code == 200, created.text
        dto = created.json()["function"]
        assert dto["rateLimit"] == rate_limit
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        deployed = await api.post(url, json=deployment_body(minInstances=0), headers=bearer(token))
        assert deployed.status_code == 200, deployed.text
    return dto["id"], dto["versionId"], dto["ncaId"]


def assert_limited(response: httpx.Response) -> None:
    problem = assert_problem(response, 429, "too-many-requests")
    assert "Rate limit exceeded" in problem["detail"]
    assert response.headers["nvcf-status"] == "errored"
    retry = response.headers["retry-after"]
    assert retry.isdigit(), retry
    until_midnight = math.ceil(86400 - time.time() % 86400)
    assert 1 <= int(retry) <= 86400 and abs(int(retry) - until_midnight) <= 5, (retry, until_midnight)


async def key_of(gateway: GatewayProcess, token: str, owner: str) -> str:
    """An invocation key of the token's account whose subject is ``owner``."""
    async with gateway.client("api-keys.localhost") as keys:
        headers = {**KEY_HEADERS, "Key-Owner-Id": owner, **bearer(token)}
        response = await keys.post("/v1/keys", json=key_body(), headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


async def statuses(*calls: Any) -> list[int]:
    return [r.status_code for r in await asyncio.gather(*calls)]


async def test_every_part_of_rate_limit_holds_across_processes(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    key = (await create_api_key(a, token))["value"]

    # The global rate, counted per account and version: 3 a day, whichever process is asked.
    fid, _, _ = await limited(a, token, {"rateLimit": "3-D"})
    assert (await pexec_until(b, key, fid, 202)).status_code == 202  # B knows it: 1 used
    assert await statuses(pexec(a, key, fid), pexec(b, key, fid)) == [202, 202]
    assert_limited(await pexec(a, key, fid))
    assert_limited(await pexec(b, key, fid))

    # An exempted account is not held to the global rate.
    _, _, account = await limited(a, token, {"rateLimit": "1-D", "exemptedNcaIds": ["someone-else"]})
    fid, _, _ = await limited(a, token, {"rateLimit": "1-D", "exemptedNcaIds": [account]})
    assert (await pexec_until(b, key, fid, 202)).status_code == 202
    assert await statuses(pexec(a, key, fid), pexec(b, key, fid), pexec(a, key, fid)) == [202, 202, 202]

    # The account's own rate replaces the global one (1 a day would refuse the second call).
    fid, _, _ = await limited(a, token, {"rateLimit": "1-D", "perNcaIdRate": {account: "3-D"}, "syncCheck": True})
    assert (await pexec_until(b, key, fid, 202)).status_code == 202
    assert await statuses(pexec(a, key, fid), pexec(b, key, fid)) == [202, 202]
    assert_limited(await pexec(a, key, fid))

    # Each caller on top: two keys of one account with other owners (subjects) get 1 each.
    fid, _, _ = await limited(a, token, {"rateLimit": "10-D", "perUserRate": "1-D"})
    assert (await pexec_until(b, key, fid, 202)).status_code == 202
    assert_limited(await pexec(a, key, fid))
    colleague = await key_of(a, token, "colleague@nvcf-api.local")
    assert (await pexec(a, colleague, fid)).status_code == 202
    assert_limited(await pexec(b, colleague, fid))


async def test_rate_limit_is_validated_and_returned_exactly_by_every_process(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    full = {
        "rateLimit": "5-S,100-H",
        "exemptedNcaIds": ["nca-a", "nca-b"],
        "perNcaIdRate": {"nca-c": "1-M", "nca-d": "2-S,10-D"},
        "syncCheck": False,
        "perUserRate": "2-M",
    }
    fid, vid, _ = await limited(a, token, full)
    url = f"/v2/nvcf/functions/{fid}/versions/{vid}"
    async with b.client("api.localhost") as api:
        assert (await api.get(url, headers=bearer(token))).json()["function"]["rateLimit"] == full
        listed = (await api.get(f"/v2/nvcf/functions/{fid}/versions", headers=bearer(token))).json()["functions"]
        assert [f["rateLimit"] for f in listed] == [full]
        for bad in (
            {"rateLimit": "5-S", "perNcaIdRate": True},  # the map, not a flag
            {"rateLimit": "5-S", "perNcaIdRate": {"nca-c": "1 per minute"}},
            {"rateLimit": "5-S", "perUserRate": True},
            {"rateLimit": None, "exemptedNcaIds": ["nca-a"]},  # limits nothing
            {"rateLimit": "5-S", "exemptedNcaIds": [""]},
            {"rateLimit": "0-S"},
        ):
            response = await api.put(url, json={"rateLimit": bad}, headers=bearer(token))
            assert_problem(response, 400, "bad-request")
            limit = f"/v2/nvcf/ratelimit/functions/{fid}/versions/{vid}"
            assert_problem(await api.put(limit, json={"rateLimit": bad}, headers=bearer(token)), 400, "bad-request")
        assert (await api.get(url, headers=bearer(token))).json()["function"]["rateLimit"] == full
        # rateLimit may be null: a per-account rate alone.
        alone = {"perNcaIdRate": {"nca-c": "1-M"}}
        updated = await api.put(url, json={"rateLimit": {"rateLimit": None, **alone}}, headers=bearer(token))
        assert updated.status_code == 200, updated.text
        assert updated.json()["function"]["rateLimit"] == alone
    async with a.client("api.localhost") as api:
        assert (await api.get(url, headers=bearer(token))).json()["function"]["rateLimit"] == alone
