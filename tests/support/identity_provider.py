"""A trusted issuer served by the test itself: its own ES256 key, its JWKS over loopback HTTP.

Give ``issuer=jwks_url`` to the gateway (``--trusted-issuer``) and mint tokens as that identity
provider would: ``idp.mint("team-b-admin", ["list_functions"])``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


class IdentityProvider:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.kid = f"idp-{uuid.uuid4().hex[:8]}"
        self._key = ec.generate_private_key(ec.SECP256R1())
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid=self.kid, alg="ES256", use="sig")
        body = json.dumps({"keys": [jwk]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    @property
    def trusted_issuer(self) -> str:
        """The ``--trusted-issuer`` value for this provider."""
        return f"{self.issuer}={self.jwks_url}"

    def mint(
        self, subject: str, scopes: Sequence[str], ttl_seconds: int = 600, extra: Mapping[str, Any] | None = None
    ) -> str:
        """``extra`` adds or replaces claims (NICo's ``realm_access``, say); a negative ttl is expired."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "azp": subject,
            "aud": [subject, "s:api"],
            "scopes": list(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            **(extra or {}),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
