"""The OpenAI-compatible LLM gateway on ``llm.invocation.<domain>`` and ``llm.<domain>``.

``model`` is ``<function-id>/<model-name>``: the caller is authorized for the function as pexec
authorizes it, ``model`` becomes ``<model-name>`` for the container, and the request travels the
queue and worker stream of every invocation to the container's own OpenAI path.
"""
