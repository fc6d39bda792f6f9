"""A key granted one version (``{"type":"function","id":"<fid>/<vid>"}``) reaches that version only."""

from __future__ import annotations

import httpx

from tests.control.helpers import create_function, function_body
from tests.gateway.helpers import assert_problem, create_key, key_body


async def test_version_grant_binds_reads_writes_and_listings(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_function(api, admin)
    fid, v1 = first["id"], first["versionId"]
    second = await api.post(f"/v2/nvcf/functions/{fid}/versions", json=function_body(), headers=admin)
    assert second.status_code == 200, second.text
    v2 = second.json()["function"]["versionId"]
    body = key_body(scopes=["list_functions", "update_function"], resources=[{"type": "function", "id": f"{fid}/{v1}"}])
    key = {"Authorization": f"Bearer {(await create_key(keys_client, admin['Authorization'][7:], body))['value']}"}

    assert (await api.get(f"/v2/nvcf/functions/{fid}/versions/{v1}", headers=key)).status_code == 200
    refused = await api.put(f"/v2/nvcf/functions/{fid}/versions/{v2}", json={"tags": ["x"]}, headers=key)
    assert assert_problem(refused, 403, "forbidden")["detail"] == "Missing resource entry in ApiKey for the function"
    untouched = await api.get(f"/v2/nvcf/functions/{fid}/versions/{v2}", headers=admin)
    assert not untouched.json()["function"].get("tags")
    listed = await api.get(f"/v2/nvcf/functions/{fid}/versions", headers=key)
    assert [f["versionId"] for f in listed.json()["functions"]] == [v1]
    everything = await api.get("/v2/nvcf/functions", headers=key)
    assert [(f["id"], f["versionId"]) for f in everything.json()["functions"]] == [(fid, v1)]
