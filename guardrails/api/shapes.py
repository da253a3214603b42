"""OpenAI response shapes: chat completions, stream chunks, server-sent events."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from shieldkit.guardrails.pipeline.engine import CheckOutcome


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def filter_results(outcomes: list[CheckOutcome]) -> dict[str, Any]:
    """Azure-style ``content_filter_results``: per check, whether it filtered and its score."""
    return {o.name: {"filtered": o.blocks, "score": None if o.score is None else round(o.score, 4),
                     **({"error": True} if o.error else {})} for o in outcomes if o.blocks or o.fired}


def completion(completion_id: str, model: str, content: str, finish_reason: str, usage: dict | None,
               outcomes: list[CheckOutcome] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": finish_reason, "logprobs": None}
    if outcomes:
        choice["content_filter_results"] = filter_results(outcomes)
    body = {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [choice]}
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(completion_id: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
          outcomes: list[CheckOutcome] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
    if outcomes:
        choice["content_filter_results"] = filter_results(outcomes)
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}


def usage_chunk(completion_id: str, model: str, created: int, usage: dict) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage}


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()
