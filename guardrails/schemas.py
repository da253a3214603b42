"""Request bodies, validated strictly: wrong types, unknown parameters and empty messages are 400s that name the
parameter. Parameters whose output the proxy cannot check (tools, logprobs, n > 1) are refused, not ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shieldkit.guardrails.api_errors import InvalidRequest, RequestTooLarge

UNCHECKABLE = {
    "tools": "tool calls", "tool_choice": "tool calls", "functions": "function calls", "function_call": "function calls",
    "logprobs": "log-probabilities", "top_logprobs": "log-probabilities", "audio": "audio", "modalities": "audio",
    "prediction": "predicted outputs", "logit_bias": "logit bias",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Any  # text, or a list of {"type": "text", "text": ...} parts
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _text_content(cls, value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
            parts = []
            for part in value:
                if part.get("type") != "text" or not isinstance(part.get("text"), str) or set(part) - {"type", "text"}:
                    raise ValueError("only text parts ({'type': 'text', 'text': ...}) can be checked, so only they are accepted")
                parts.append(part["text"])
            text = "\n".join(parts)
        else:
            raise ValueError("must be a string or a non-empty list of text parts")
        if not text.strip():
            raise ValueError("must not be empty")
        return text


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is not None and (len(stops) > 4 or not all(stops)):
            raise ValueError("must be up to 4 non-empty strings")
        return stops

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n = 1 is supported (each choice would need its own checks)")
        return value


def _non_empty_texts(value: str | list[str]) -> str | list[str]:
    texts = [value] if isinstance(value, str) else value
    if not texts or not all(t.strip() for t in texts):
        raise ValueError("must be a non-empty string or a non-empty list of non-empty strings")
    return value


class ModerationRequest(_Strict):
    input: str | list[str]
    model: str | None = None

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        return _non_empty_texts(value)


class CheckRequest(_Strict):
    text: str | list[str]
    direction: Literal["input", "output"] = "input"
    policy: str | None = None

    @field_validator("text")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        return _non_empty_texts(value)


def parse(model: type[_Strict], data: dict[str, Any], *, max_items: int | None = None, list_field: str = "messages") -> Any:
    for name in data:
        if name in UNCHECKABLE and data[name] not in (None, False):
            raise InvalidRequest(f"'{name}' is not supported: the guardrail proxy cannot check {UNCHECKABLE[name]}",
                                 param=name, code="unsupported_parameter")
    items = data.get(list_field)
    if max_items is not None and isinstance(items, list) and len(items) > max_items:
        raise RequestTooLarge(f"{len(items)} entries in '{list_field}' are more than this proxy's limit of {max_items}",
                              param=list_field)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param(error["loc"])
        if error["type"] == "extra_forbidden":
            raise InvalidRequest(f"unknown parameter '{param}'", param=param, code="unknown_parameter") from None
        if error["type"] == "missing":
            raise InvalidRequest(f"missing required parameter '{param}'", param=param, code="missing_parameter") from None
        message = error["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{param}: {message}", param=param) from None


def _param(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "list[str]") or "[" in str(part) or part.startswith("function-"):
            continue  # pydantic's union-branch tags
        else:
            text += f".{part}" if text else str(part)
    return text
