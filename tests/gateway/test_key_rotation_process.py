"""``cfgate rotate-signing-key`` beside a running ``cfgate serve``: the new key is accepted at once,
even right after a storm of tokens naming unknown kids (which never re-parse the key file)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.keyring import KeyRing
from gateway.auth.tokens import TokenIssuer
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID, DEFAULT_ISSUER
from tests.support.serve_process import serve_process


def _functions(base: str, token: str) -> httpx.Response:
    headers = {"Host": "api.localhost", "Authorization": f"Bearer {token}"}
    return httpx.get(base + "/v2/nvcf/functions", headers=headers, timeout=30)


def test_rotated_key_is_accepted_by_the_running_gateway(tmp_path: Path) -> None:
    with serve_process(tmp_path) as gateway:
        assert _functions(gateway.base, gateway.admin_token()).status_code == 200
        for i in range(3):
            claims = {"iss": DEFAULT_ISSUER, "sub": DEFAULT_ADMIN_CLIENT_ID, "iat": 1, "exp": int(time.time()) + 600}
            stranger = ec.generate_private_key(ec.SECP256R1())
            token = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": f"cfgate-{i:016x}"})
            assert _functions(gateway.base, token).status_code == 401
        rotated = subprocess.run(
            [sys.executable, "-m", "gateway", "rotate-signing-key", "--data-dir", str(gateway.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "new signing key" in rotated.stdout
        ring = KeyRing.open(gateway.data_dir, retain_seconds=3600)
        fresh = TokenIssuer(ring, DEFAULT_ISSUER, 600).mint(DEFAULT_ADMIN_CLIENT_ID, ["list_functions"])
        assert jwt.get_unverified_header(fresh.value)["kid"] == ring.active.kid
        response = _functions(gateway.base, fresh.value)
        assert response.status_code == 200, response.text
        assert "Traceback" not in gateway.log()
