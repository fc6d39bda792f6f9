"""Token estimates where the container's ``usage`` is not (yet) known.

Two uses, both for ``llmConfig.tokenRateLimit`` (``gateway.llm.budget``):

- the *reservation* taken when a request is admitted: its prompt's estimate plus the tokens it
  may generate (``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens``; without one
  ``DEFAULT_COMPLETION_RESERVE``), settled against the real usage once the answer ends;
- the *charge* of a stream that ends without a usage chunk (the client left, the container
  failed, the invocation was cancelled): the prompt's estimate plus the content relayed so far.

The rule is OpenAI's rule of thumb, about four characters a token: ``ceil(chars / 4)`` over
every string value of the prompt field (so a chat message's role counts too, close to the few
tokens a message costs), and for each relayed chunk carrying content at least one token (a
stream sends about one token a chunk).
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
DEFAULT_COMPLETION_RESERVE = 256
# The request field holding the prompt, per OpenAI path.
_PROMPT_FIELDS = {
    "/v1/chat/completions": "messages",
    "/v1/completions": "prompt",
    "/v1/embeddings": "input",
    "/v1/responses": "input",
}
_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_MAX_DEPTH = 32


def tokens_for(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def _chars(value: object, depth: int = 0) -> int:
    if isinstance(value, str):
        return len(value)
    if depth >= _MAX_DEPTH:
        return 0
    if isinstance(value, list):
        return sum(_chars(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(_chars(item, depth + 1) for item in value.values())
    return 0


def prompt_tokens(path: str, payload: dict[str, Any]) -> int:
    field = _PROMPT_FIELDS.get(path)
    return tokens_for(_chars(payload.get(field))) if field else 0


def reservation(path: str, payload: dict[str, Any]) -> int:
    """Tokens held at admission: the prompt's estimate plus what the answer may generate."""
    prompt = prompt_tokens(path, payload)
    if path == "/v1/embeddings":
        return prompt
    for name in _LIMIT_FIELDS:
        limit = payload.get(name)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            return prompt + limit
    return prompt + DEFAULT_COMPLETION_RESERVE


def chunk_tokens(document: object) -> int:
    """Completion tokens a streamed event carries: chat/completions chunks or Responses deltas."""
    if not isinstance(document, dict):
        return 0
    chars = 0
    choices = document.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            chars += _chars(choice.get("text"))  # completions
            delta = choice.get("delta")  # chat: content, reasoning, tool call arguments
            if isinstance(delta, dict):
                chars += sum(_chars(v) for k, v in delta.items() if k != "role")
    elif isinstance(document.get("type"), str) and document["type"].endswith(".delta"):
        chars += _chars(document.get("delta"))  # Responses: response.output_text.delta, ...
    return max(1, tokens_for(chars)) if chars else 0
