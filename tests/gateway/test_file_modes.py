"""Everything ``cfgate serve`` writes is private (issue 12 item 10): files 0600, directories 0700.

A real process under the usual umask (022) writes its store (with WAL files), keys, an uploaded
asset and a large result; then every file and directory under the data directory is checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from tests.e2e.driver import ScriptedWorker
from tests.support.serve_process import (
    client,
    deployed_function,
    invoke_key,
    large_result,
    serve_process,
    wait_active,
)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


async def test_store_results_assets_and_keys_are_private(tmp_path: Path) -> None:
    with serve_process(tmp_path, umask=0o022) as gateway:
        token = gateway.admin_token()
        fid, vid = await deployed_function(gateway, token)
        worker = ScriptedWorker(gateway.grpc_target, token, fid, large_result(b"PK\x03\x04zip"))
        await worker.start()
        try:
            await wait_active(gateway, token, fid, vid)
            key = await invoke_key(gateway, token)
            auth = {"Authorization": f"Bearer {key}"}
            async with client(gateway, "invocation.localhost") as invocation:
                response = await invocation.post(f"/v2/nvcf/pexec/functions/{fid}", json={}, headers=auth)
                assert response.status_code == 302, response.text
            async with client(gateway, "api.localhost") as api:
                asset = (
                    await api.post("/v2/nvcf/assets", json={"contentType": "a/b", "description": "d"}, headers=auth)
                ).json()
                sent = {"Content-Type": "a/b", "x-amz-meta-nvcf-asset-description": "d"}
                put = await api.put(httpx.URL(asset["uploadUrl"]).raw_path.decode(), content=b"bytes", headers=sent)
                assert put.status_code == 200, put.text
        finally:
            await worker.stop()
        modes = _modes(gateway.data_dir)  # while running: the SQLite -wal and -shm files exist
    written = {
        "cfgate.db",
        "cfgate.db-wal",
        "cfgate.db-shm",
        "signing-keys.json",
        "secret-key",
        f"results/{response.headers['nvcf-reqid']}.zip",
        f"assets/nvcf-default/{asset['assetId']}",
    }
    assert written <= set(modes), sorted(modes)
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert loose == {}
    directories = {name for name in modes if (gateway.data_dir / name).is_dir()}
    assert {".", "results", "assets", "assets/nvcf-default"} <= directories
    assert {name: oct(modes[name]) for name in directories if modes[name] != 0o700} == {}
    assert {name: oct(modes[name]) for name in set(modes) - directories if modes[name] != 0o600} == {}
