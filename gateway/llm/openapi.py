"""``GET /v3/openapi`` of the LLM host: its OpenAI-compatible endpoints as an OpenAPI 3.1 document.

Built by hand (the host is not a Starlette endpoint table): request bodies are OpenAI's, passed
to the container unchanged but for ``model``, so only the fields the gateway reads are described
(``model``, ``stream``, ``stream_options``, the token limits) and every other field is allowed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

OPENAPI_PATH = "/v3/openapi"
API_TITLE = "cfgate LLM gateway (OpenAI-compatible)"
API_VERSION = "1.0.0"

_MODEL_ID = {
    "type": "string",
    "pattern": "^[0-9a-fA-F-]{36}/.+$",
    "description": "<function-id>/<model-name> (as GET /v1/models lists it); the container gets <model-name>",
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": _MODEL_ID,
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string", "description": "the function's account (NCA id)"},
    },
}
_INVOKED = {
    "/v1/chat/completions": ("Chat completion", ["messages"]),
    "/v1/completions": ("Text completion", ["prompt"]),
    "/v1/embeddings": ("Embeddings", ["input"]),
    "/v1/responses": ("Responses API", ["input"]),
}
_ERRORS = {
    "400": "invalid_request_error: no JSON object, no model",
    "401": "invalid_api_key",
    "403": "permission_denied: no invoke_function, or an API key without the function",
    "404": "model_not_found or unknown_url",
    "413": "request body too large",
    "429": "rate_limit_exceeded: tokens (llmConfig.tokenRateLimit) or requests (rateLimit, queue full)",
    "502": "the worker could not reach the container",
    "504": "no answer started within NVCF-POLL-SECONDS",
}


def _error_responses() -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {status: {"description": text, "content": content} for status, text in _ERRORS.items()}


def _invoked(summary: str, fields: list[str], path: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"model": _MODEL_ID, **{f: {} for f in fields}}
    if path != "/v1/embeddings":
        properties["stream"] = {"type": "boolean", "description": "server-sent events, relayed chunk by chunk"}
        properties["max_tokens"] = {"type": "integer", "minimum": 0}
    if path in ("/v1/chat/completions", "/v1/completions"):
        properties["stream_options"] = {"type": "object", "properties": {"include_usage": {"type": "boolean"}}}
    if path == "/v1/responses":
        properties["max_output_tokens"] = {"type": "integer", "minimum": 0}
    body = {"type": "object", "required": ["model", *fields], "properties": properties, "additionalProperties": True}
    answer = {"type": "object", "description": "the container's answer; its model is the model sent"}
    content: dict[str, Any] = {"application/json": {"schema": answer}}
    if path != "/v1/embeddings":
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "operationId": path.removeprefix("/v1/").replace("/", "_"),
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "OK", "content": content}, **_error_responses()},
        }
    }


def openapi() -> dict[str, Any]:
    listed = {
        "type": "object",
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _MODEL}},
    }
    paths: dict[str, Any] = {
        "/v1/models": {
            "get": {
                "summary": "The models of the LLM functions the caller may invoke",
                "operationId": "models_list",
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": listed}}},
                    **_error_responses(),
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "summary": "One model the caller may invoke",
                "operationId": "models_retrieve",
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": _MODEL_ID}],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": _MODEL}}},
                    **_error_responses(),
                },
            }
        },
    }
    for path, (summary, fields) in _INVOKED.items():
        paths[path] = _invoked(summary, fields, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": API_TITLE, "version": API_VERSION},
        "servers": [{"url": "/", "description": "Host llm.invocation.<domain> or llm.<domain>"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key or JWT with invoke_function"}
            },
        },
    }


@cache
def openapi_body() -> bytes:
    return orjson.dumps(openapi())
