"""What routing knows of an LLM function version: its models (``models[].llmConfig``) and the
queue priority of each account (``llmInvocationConfig.priority``).

``llmConfig.uris`` are read as the container paths a model serves (``/v1/chat/completions``;
``/v1`` serves every OpenAI path); a full URL counts by its path. Priorities: the lower the
number, the sooner an account's requests are served (NVIDIA's schedulers count so); accounts
without an entry get ``defaultPriority``, and without that 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

_NO_PRIORITIES: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LlmModel:
    name: str
    paths: tuple[str, ...]  # container paths (no trailing slash) the model serves
    token_rate_limit: str | None  # "N-U[,N-U]": tokens per window, as rateLimit counts requests

    def serves(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") or p == "" for p in self.paths)


@dataclass(frozen=True, slots=True)
class LlmRoute:
    models: Mapping[str, LlmModel]
    default_priority: int = 0
    account_priority: Mapping[str, int] = field(default_factory=lambda: _NO_PRIORITIES)

    def priority_of(self, nca_id: str) -> int:
        return self.account_priority.get(nca_id, self.default_priority)

    def priorities(self) -> frozenset[int]:
        return frozenset({self.default_priority, *self.account_priority.values()})


def _path_of(uri: str) -> str:
    return urlsplit(uri).path.rstrip("/")


def llm_route(spec: Mapping[str, Any]) -> LlmRoute | None:
    """The LLM view of a stored version spec; None unless ``functionType`` is ``LLM``."""
    if spec.get("functionType") != "LLM":
        return None
    models = {}
    for model in spec.get("models") or []:
        config = model.get("llmConfig") or {}
        paths = tuple(_path_of(str(uri)) for uri in config.get("uris") or [])
        models[str(model["name"])] = LlmModel(str(model["name"]), paths, config.get("tokenRateLimit") or None)
    priority = (spec.get("llmInvocationConfig") or {}).get("priority") or {}
    accounts = {str(k): int(v) for k, v in (priority.get("perAccountPriority") or {}).items()}
    return LlmRoute(
        MappingProxyType(models),
        int(priority.get("defaultPriority") or 0),
        MappingProxyType(accounts) if accounts else _NO_PRIORITIES,
    )
