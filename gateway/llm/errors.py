"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status.

OpenAI clients read these (``openai.NotFoundError`` and friends carry the body), so the LLM host
answers every failure so, including the gateway's own problems and the problem+json a worker
sends for an unreachable container (``from_problem``, ``from_problem_json``).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.problems import GatewayError

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"

# Status → (type, code) when the failure has no more specific code of its own.
_BY_STATUS: Mapping[int, tuple[str, str]] = {
    400: (INVALID_REQUEST, "invalid_request"),
    401: (INVALID_REQUEST, "invalid_api_key"),
    403: (INVALID_REQUEST, "permission_denied"),
    404: (INVALID_REQUEST, "not_found"),
    405: (INVALID_REQUEST, "method_not_allowed"),
    413: (INVALID_REQUEST, "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
}


class LlmError(Exception):
    """A failure the LLM host answers in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # OpenAI's field name
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        default_type, default_code = _BY_STATUS.get(status, (SERVER_ERROR, "server_error"))
        self.status = status
        self.message = message
        self.type = type or default_type
        self.code = code or default_code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )

    def response(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = self.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        return self.status, headers, body


def model_not_found(model: str) -> LlmError:
    return LlmError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def from_problem(error: GatewayError) -> LlmError:
    """A gateway problem (401 from the credential check, 429 from the queue bound, 504 …) for an OpenAI client."""
    code = error.name.replace("-", "_") if error.status >= 500 else None
    return LlmError(error.status, error.detail, code=code, headers=error.headers)


def from_problem_json(status: int, body: bytes) -> LlmError:
    """A problem+json answer (the gateway's, or a worker's for an unreachable container)."""
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        problem = None
    if not isinstance(problem, dict):
        return LlmError(status, body.decode("utf-8", "replace")[:1000] or "Upstream error")
    detail = problem.get("detail") or problem.get("title") or "Upstream error"
    kind = str(problem.get("type") or "").rpartition(":")[2].replace("-", "_")
    return LlmError(status, str(detail), code=(kind or None) if status >= 500 else None)
