"""OpenAPI 3.1 document generated from the endpoint tables and their pydantic models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api.endpoint import UUID_PARAMS, Endpoint
from gateway.api.models import Problem

REF = "#/components/schemas/{model}"
JsonMode = Literal["validation", "serialization"]


def _models(endpoints: Sequence[Endpoint]) -> list[tuple[type[BaseModel], JsonMode]]:
    seen: dict[tuple[type[BaseModel], str], None] = {(Problem, "serialization"): None}
    for e in endpoints:
        if e.body is not None:
            seen[(e.body, "validation")] = None
        if e.response is not None:
            seen[(e.response, "serialization")] = None
    return list(seen)  # type: ignore[arg-type]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _operation(e: Endpoint, refs: Mapping[tuple[Any, JsonMode], Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"} if name in UUID_PARAMS else {"type": "string"},
        }
        for name in e.path_params
    ]
    if e.query is not None:
        params.extend(_query_parameters(e.query))
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    responses: dict[str, Any] = {}
    if e.response is not None:
        responses[str(e.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": refs[(e.response, "serialization")]}},
        }
    else:
        responses["204" if e.status == 200 else str(e.status)] = {"description": "No Content"}
    responses["default"] = {"description": "Problem details (RFC 9457)", "content": problem}
    operation: dict[str, Any] = {
        "operationId": e.operation_id,
        "summary": e.summary,
        "tags": [e.tag],
        "parameters": params,
        "responses": responses,
    }
    if e.body is not None:
        operation["requestBody"] = {
            "required": not e.optional_body,
            "content": {"application/json": {"schema": refs[(e.body, "validation")]}},
        }
    if e.scopes:
        operation["security"] = [{"bearer": []}]
        kind = "admin token scope" if e.jwt_only else "scope"
        operation["description"] = f"Requires {kind} " + " or ".join(e.scopes) + "."
    if e.deprecated:
        operation["deprecated"] = True
    return operation


def openapi_document(endpoints: Iterable[Endpoint], title: str, version: str) -> dict[str, Any]:
    table = list(endpoints)
    refs, defs = models_json_schema(_models(table), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for e in table:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
